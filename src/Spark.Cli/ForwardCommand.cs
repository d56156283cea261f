using System.CommandLine;
using Spark.Native;
using Spark.Native.IO;

namespace Spark.Cli;

internal static class ForwardCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder", Required = true };
        var ids = new Option<string[]>("--ids") { Description = "Comma-separated token ids; repeat for more sequences", Required = true };
        var output = new Option<string>("--out") { Description = "Output .safetensors file (F32 logits.0, logits.1, … of shape [T, vocab])", Required = true };
        var device = CliApp.DeviceOption();
        var command = new Command("forward", "Run each id sequence from position 0 and write its logits") { model, ids, output, device };
        command.SetAction(parse =>
        {
            var sequences = parse.GetRequiredValue(ids).Select(s => CliApp.ParseIds(s, "--ids")).ToArray();
            string outPath = parse.GetRequiredValue(output);
            using var m = SparkModel.Load(parse.GetRequiredValue(model), new ModelLoadOptions { Device = parse.GetValue(device) });
            foreach (string notice in m.LoadNotices) Console.Error.WriteLine($"note: {notice}");
            var entries = new List<SafeTensorWriteEntry>();
            for (int i = 0; i < sequences.Length; i++)
            {
                Logits logits;
                try { logits = m.Forward(sequences[i]); }
                catch (SparkException e) { throw new SparkException($"--ids #{i + 1}: {e.Message}", e); }
                entries.Add(SafeTensorWriteEntry.FromF32($"logits.{i}", [logits.Rows, logits.VocabSize], logits.Values));
            }
            SafeTensorsWriter.Write(outPath, entries);
            Console.Error.WriteLine($"wrote {entries.Count} logits tensor(s) to {outPath}");
            return 0;
        });
        return command;
    }
}
