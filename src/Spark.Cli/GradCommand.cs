using System.CommandLine;
using Spark.Native;
using Spark.Native.IO;

namespace Spark.Cli;

internal static class GradCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder", Required = true };
        var ids = new Option<string[]>("--ids") { Description = "Comma-separated token ids of one sequence; repeat for a batch (equal lengths)", Required = true };
        var output = new Option<string>("--out") { Description = "Output .safetensors: F32 loss [1] and grad.<weight name> for every weight", Required = true };
        var device = CliApp.DeviceOption();
        var command = new Command("grad", "Mean next-token cross-entropy of a batch and its gradient for every weight") { model, ids, output, device };
        command.SetAction(parse =>
        {
            var sequences = parse.GetRequiredValue(ids).Select(s => (IReadOnlyList<int>)CliApp.ParseIds(s, "--ids")).ToArray();
            if (sequences.Select(s => s.Count).Distinct().Count() > 1)
                throw new SparkException($"--ids: the sequences must have equal lengths (got {string.Join(", ", sequences.Select(s => s.Count))})");
            using var m = SparkModel.Load(parse.GetRequiredValue(model), new ModelLoadOptions { Device = parse.GetValue(device) });
            var result = m.LossAndGradients(sequences);
            var entries = new List<SafeTensorWriteEntry> { SafeTensorWriteEntry.FromF32("loss", [1], [result.Loss]) };
            foreach (var (name, values) in result.Gradients)
                entries.Add(SafeTensorWriteEntry.FromF32($"grad.{name}", m.ParameterShape(name), values));
            string outPath = parse.GetRequiredValue(output);
            SafeTensorsWriter.Write(outPath, entries);
            Console.Error.WriteLine($"loss {result.Loss:F6}; wrote {result.Gradients.Count} gradients to {outPath}");
            return 0;
        });
        return command;
    }
}
