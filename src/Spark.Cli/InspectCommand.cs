using System.CommandLine;
using Spark.Native;

namespace Spark.Cli;

internal static class InspectCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder (config.json + safetensors)", Required = true };
        var command = new Command("inspect", "Show a model's architecture, parameter count, dtypes and memory needs") { model };
        command.SetAction(parse =>
        {
            var info = SparkModel.Inspect(parse.GetRequiredValue(model));
            var c = info.Config;
            var rows = new List<(string, string)>
            {
                ("architecture", $"{c.Architecture} ({(c.Architecture == Native.Models.ModelArchitecture.Qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM")})"),
                ("layers", c.LayerCount.ToString()),
                ("hidden / intermediate", $"{c.HiddenSize} / {c.IntermediateSize}"),
                ("heads / kv heads / head dim", $"{c.HeadCount} / {c.KeyValueHeadCount} / {c.HeadDim}"),
                ("vocabulary", c.VocabSize.ToString()),
                ("rope", $"theta {c.RopeTheta}{(c.RopeScaling is { } s ? $", llama3 scaling factor {s.Factor} (original {s.OriginalMaxPositions})" : "")}"),
                ("max positions", c.MaxPositions.ToString()),
                ("tied embeddings", c.TieWordEmbeddings ? "yes" : "no"),
                ("biases", $"qkv {(c.QkvBias ? "yes" : "no")}, o_proj {(c.OutputProjectionBias ? "yes" : "no")}, mlp {(c.MlpBias ? "yes" : "no")}"),
                ("eos ids", c.EosTokenIds.Count == 0 ? "none" : string.Join(", ", c.EosTokenIds)),
                ("parameters", $"{info.ParameterCount:N0} in {info.TensorCount} tensors"),
                ("stored dtypes", string.Join(", ", info.ParametersByStoredDType.Select(kv => $"{kv.Key} {kv.Value:N0}"))),
                ("checkpoint size", CliApp.FormatBytes(info.StoredBytes)),
                ("memory (cpu, f32)", $"{CliApp.FormatBytes(info.CpuWeightBytes)} weights + {CliApp.FormatBytes(info.KvCacheBytesPerToken)} KV cache per token"),
            };
            int width = rows.Max(r => r.Item1.Length);
            foreach (var (name, value) in rows) Console.WriteLine($"{name.PadRight(width)}  {value}");
            foreach (string notice in info.Notices) Console.WriteLine($"note: {notice}");
            return 0;
        });
        return command;
    }
}
