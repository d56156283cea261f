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

    internal static (int Code, string Out, string Err) Spark(params string[] args) => Spark(new Dictionary<string, string>(), args);

    internal static (int Code, string Out, string Err) Spark(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "spark.dll");
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h
            : Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath! : "dotnet";
        var psi = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (string a in args) psi.ArgumentList.Add(a);
        foreach (var (name, value) in environment) psi.Environment[name] = value;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(300_000), "spark did not finish within 300 s"); // a hang detector: compiling every kernel cold takes ~25 s alone on 2 cores, longer beside other tests
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

    [Theory]
    [InlineData("grad|--model|MODEL|--ids|1,2,3|--out|/tmp/x.safetensors|--device|cuda")]
    [InlineData("forward|--model|MODEL|--ids|1,2,3|--out|/tmp/x.safetensors|--device|cuda")]
    public void CudaWithoutAGpuIsOneErrorLine(string args)
    {
        Assert.SkipWhen(Cuda.CudaTestEnvironment.CudaBackendAvailable(out _), "this machine has a GPU: the cuda device works here");
        var (code, output, err) = Spark(args.Replace("MODEL", _ckpt.Directory).Split('|'));
        Assert.Equal(1, code);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains("CUDA", lines[0], StringComparison.OrdinalIgnoreCase);
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

    [Fact]
    public void GenerateFromATextPromptStreamsTheDecodedText()
    {
        using var ckpt = new TinyCheckpoint(new TinySpec { Vocab = 257, Eos = [256], Seed = 9 });
        ByteTokenizer.Write(ckpt.Directory);
        var tokenizer = Native.Text.Tokenizer.Load(ckpt.Directory);
        using var model = SparkModel.Load(ckpt.Directory);

        var plain = Spark("generate", "--model", ckpt.Directory, "--prompt", "héllo", "--max-new-tokens", "12", "--decoding", "greedy");
        Assert.True(plain.Code == 0, plain.Err);
        var expected = model.Generate(tokenizer.Encode("héllo"), Generation.GenerationOptions.Greedy(12));
        Assert.Equal(tokenizer.Decode(expected.Tokens.ToArray(), Native.Text.SkipSpecialTokens.Yes) + "\n", plain.Out);

        var chat = Spark("generate", "--model", ckpt.Directory, "--prompt", "hi", "--chat", "--max-new-tokens", "6", "--temperature", "0");
        Assert.True(chat.Code == 0, chat.Err);
        var chatIds = tokenizer.Encode("[user] hi<|end|>[assistant] ", Native.Text.SpecialTokens.Omit);
        Assert.Contains(256, chatIds);
        var chatExpected = model.Generate(chatIds, Generation.GenerationOptions.Greedy(6));
        Assert.Equal(tokenizer.Decode(chatExpected.Tokens.ToArray(), Native.Text.SkipSpecialTokens.Yes) + "\n", chat.Out);

        var both = Spark("generate", "--model", ckpt.Directory, "--prompt", "hi", "--ids", "1,2");
        Assert.Equal(1, both.Code);
        Assert.Contains("either --ids or --prompt", both.Err);
    }

    [Fact]
    public void EvalOnASyntheticTaskPrintsTheSummaryAndWritesJsonl()
    {
        using var ckpt = new TinyCheckpoint(new TinySpec { Vocab = 257, Eos = [256], Seed = 9 });
        ByteTokenizer.Write(ckpt.Directory);
        string results = Path.Combine(ckpt.Directory, "eval.jsonl");
        var (code, output, err) = Spark("eval", "--model", ckpt.Directory, "--task", "arithmetic", "--count", "4", "--k", "2",
            "--max-new-tokens", "4", "--out", results);
        Assert.True(code == 0, err);
        foreach (string row in new[] { "problems", "accuracy", "pass@1", "pass@2", "maj@2", "mean length", "tokens/s" })
            Assert.Contains(row, output);
        Assert.Contains("4 problems", err);
        var lines = File.ReadAllLines(results);
        Assert.Equal(4, lines.Length);
        var first = System.Text.Json.Nodes.JsonNode.Parse(lines[0])!;
        Assert.Equal(2, first["samples"]!.AsArray().Count);
        Assert.StartsWith("arithmetic/", first["id"]!.GetValue<string>());

        string data = Path.Combine(ckpt.Directory, "qa.jsonl");
        File.WriteAllText(data, "{\"q\": \"1+1?\", \"a\": 2}\n{\"q\": \"hi\", \"a\": \"hi\"}\n");
        var json = Spark("eval", "--model", ckpt.Directory, "--data", data, "--prompt-field", "q", "--answer-field", "a", "--verifier", "exact",
            "--max-new-tokens", "3", "--json");
        Assert.True(json.Code == 0, json.Err);
        var summary = System.Text.Json.Nodes.JsonNode.Parse(json.Out)!;
        Assert.Equal(1, summary["k"]!.GetValue<int>()); // k = 1 defaults to greedy
        Assert.Equal(2, summary["problems"]!.GetValue<int>());

        var bad = Spark("eval", "--model", ckpt.Directory, "--task", "nope");
        Assert.Equal(1, bad.Code);
        var errLines = bad.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(errLines);
        Assert.StartsWith("error: ", errLines[0]);
        Assert.Contains("arithmetic, countdown", errLines[0]);
        Assert.Equal("", bad.Out);

        var neither = Spark("eval", "--model", ckpt.Directory);
        Assert.Equal(1, neither.Code);
        Assert.Contains("either --data or --task", neither.Err);
    }

    [Fact]
    public void TokenizeAndDecodeRoundTripJsonl()
    {
        string dir = Path.Combine(_ckpt.Directory, "tok");
        Directory.CreateDirectory(dir);
        ByteTokenizer.Write(dir);
        string input = Path.Combine(dir, "in.jsonl");
        File.WriteAllText(input, "\"a b\"\n{\"text\": \"ü<|end|>\"}\n");
        var encoded = Spark("tokenize", "--tokenizer", dir, "--input", input);
        Assert.True(encoded.Code == 0, encoded.Err);
        Assert.Equal("[97,32,98]\n[195,188,256]\n", encoded.Out);

        string ids = Path.Combine(dir, "ids.jsonl");
        File.WriteAllText(ids, encoded.Out);
        var decoded = Spark("decode", "--tokenizer", Path.Combine(dir, "tokenizer.json"), "--input", ids);
        Assert.Equal("\"a b\"\n\"ü<|end|>\"\n", decoded.Out);
        var skipped = Spark("decode", "--tokenizer", dir, "--ids", "195,188,256", "--skip-special-tokens");
        Assert.Equal("\"ü\"\n", skipped.Out);

        File.WriteAllBytes(input, [(byte)'"', (byte)'a', (byte)'"', (byte)'\n', (byte)'"', 0xC3, (byte)'"', (byte)'\n']);
        var bad = Spark("tokenize", "--tokenizer", dir, "--input", input);
        Assert.Equal(1, bad.Code);
        Assert.Contains("in.jsonl:2: invalid UTF-8", bad.Err);
        var outOfRange = Spark("decode", "--tokenizer", dir, "--ids", "5,300");
        Assert.Contains("token id 300 is outside the vocabulary [0, 257)", outOfRange.Err);
    }
}
