using System.CommandLine;
using Spark.Native.Diagnostics;

namespace Spark.Cli;

internal static class DoctorCommand
{
    public static Command Create()
    {
        var command = new Command("doctor", "Show the hardware and native libraries the engine sees");
        command.SetAction(_ =>
        {
            var lines = SystemReport.Collect();
            int width = lines.Max(l => l.Name.Length);
            foreach (var (name, value) in lines) Console.WriteLine($"{name.PadRight(width)}  {value}");
            return 0;
        });
        return command;
    }
}
