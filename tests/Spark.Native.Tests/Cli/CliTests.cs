using System.Diagnostics;
using Spark.Native.IO;
using Spark.Native.Models;
using Spark.Native.Tests.Fixtures;

namespace Spark.Native.Tests.Cli;

/// <summary>The <c>spark</c> executable, run as a separate process exactly as a user runs it.</summary>
public class CliTests : IClassFixture<CliTests.Model>
{
    public sealed class Model : IDisposable
    {
        internal TinyCheckpoint Checkpoint { get; } = new(new TinySpec { Architecture = ModelArchitecture.Llama, Tied = false, Seed = 4 });
        public void Dispose() => Checkpoint.Dispose();
    }

    private readonly TinyCheckpoint _ckpt;
    public CliTests(Model model) => _ckpt = model.Checkpoint;

    internal static (int Code, string Out, string Err) Spark(params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "spark.dll");
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h
            : Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath! : "dotnet";
        var psi = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(60_000), "spark did not finish within 60 s");
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void ForwardWritesOneLogitsTensorPerSequenceEqualToTheLibrary()
    {
        string output = Path.Combine(_ckpt.Directory, "logits.safetensors");
        var (code, _, err) = Spark("forward", "--model", _ckpt.Directory, "--ids", "1,2,3", "--ids", "9,8", "--out", output);
        Assert.True(code == 0, err);
        using var file = SafeTensorsFile.Open(output);
        Assert.Equal(["logits.0", "logits.1"], file.Tensors.Select(t => t.Name).Order());
        Assert.Equal([3L, 67L], file["logits.0"].Shape);
        Assert.Equal([2L, 67L], file["logits.1"].Shape);
        Assert.Equal(DType.F32, file["logits.1"].DType);
        using var model = SparkModel.Load(_ckpt.Directory);
        Assert.Equal(model.Forward([9, 8]).Values, file.ReadF32("logits.1"));
    }

    [Fact]
    public void GenerateIsReproducibleAndGreedyMatchesTheLibrary()
    {
        string[] args = ["generate", "--model", _ckpt.Directory, "--ids", "5,6,7", "--ids", "3", "--max-new-tokens", "6", "--seed", "11", "--top-p", "0.9"];
        var first = Spark(args);
        var second = Spark(args);
        Assert.True(first.Code == 0, first.Err);
        Assert.Equal(first.Out, second.Out);
        Assert.Equal(2, first.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("tokens/s", first.Err);

        var greedy = Spark("generate", "--model", _ckpt.Directory, "--ids", "5,6,7", "--max-new-tokens", "4", "--temperature", "0");
        using var model = SparkModel.Load(_ckpt.Directory);
        var expected = model.Generate([5, 6, 7], Generation.GenerationOptions.Greedy(4));
        Assert.Equal(string.Join(",", expected.Tokens), greedy.Out.Trim());
    }

    [Fact]
    public void InspectDescribesTheModel()
    {
        var (code, output, err) = Spark("inspect", "--model", _ckpt.Directory);
        Assert.True(code == 0, err);
        Assert.Contains("LlamaForCausalLM", output);
        Assert.Contains($"{new ParameterLayout(_ckpt.Config).TotalLength:N0}", output);
        Assert.Contains("F32", output);
        Assert.Contains("KV cache per token", output);
    }

    [Fact]
    public void DoctorReportsTheMachine()
    {
        var (code, output, _) = Spark("doctor");
        Assert.Equal(0, code);
        Assert.Contains("processor", output);
        Assert.Contains("cuda driver", output);
    }

    [Theory]
    [InlineData("--model|/no/such/folder|--ids|1|--out|/tmp/x.safetensors", "/no/such/folder")]
    [InlineData("--model|MODEL|--ids|1,a|--out|/tmp/x.safetensors", "'a'")]
    [InlineData("--model|MODEL|--ids|1,67|--out|/tmp/x.safetensors", "outside the vocabulary [0, 67)")]
    [InlineData("--model|MODEL|--out|/tmp/x.safetensors", "--ids")]
    public void BadInputIsOneErrorLineAndNonZeroExit(string args, string mentioned)
    {
        var argv = args.Replace("MODEL", _ckpt.Directory).Split('|');
        var (code, output, err) = Spark(["forward", .. argv]);
        Assert.NotEqual(0, code);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(mentioned, lines[0]);
        Assert.DoesNotContain("   at ", err);
        Assert.Equal("", output);
    }

    [Fact]
    public void CorruptCheckpointIsReportedWithoutAStackTrace()
    {
        using var ckpt = new TinyCheckpoint(new TinySpec());
        string weights = Path.Combine(ckpt.Directory, "model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes[..(bytes.Length - 10)]);
        var (code, _, err) = Spark("inspect", "--model", ckpt.Directory);
        Assert.Equal(1, code);
        Assert.StartsWith("error: ", err);
        Assert.Contains("model.safetensors", err);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void ChatTemplateRendersTheConfigsTemplate()
    {
        string dir = Path.Combine(_ckpt.Directory, "chat");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """
            {"eos_token": "</s>", "chat_template": "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] | trim }}{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"}
            """);
        string messages = Path.Combine(dir, "messages.json");
        File.WriteAllText(messages, """[{"role": "system", "content": " Be brief. "}, {"role": "user", "content": "2+2?"}]""");

        var (code, output, err) = Spark("chat-template", "--tokenizer", dir, "--messages", messages, "--add-generation-prompt");
        Assert.True(code == 0, err);
        Assert.Equal("<system>Be brief.</s>\n<user>2+2?</s>\n<assistant>", output);

        var plain = Spark("chat-template", "--tokenizer", Path.Combine(dir, "tokenizer_config.json"), "--messages", messages);
        Assert.Equal("<system>Be brief.</s>\n<user>2+2?</s>\n", plain.Out);

        File.WriteAllText(messages, "{\"messages\": 3}");
        var bad = Spark("chat-template", "--tokenizer", dir, "--messages", messages);
        Assert.Equal(1, bad.Code);
        Assert.StartsWith("error: ", bad.Err);
        Assert.Contains("messages.json", bad.Err);
    }
}
