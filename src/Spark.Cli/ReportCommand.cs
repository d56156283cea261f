using System.CommandLine;
using Spark.Native.Training;

namespace Spark.Cli;

internal static class ReportCommand
{
    public static Command Create()
    {
        var run = new Argument<string>("RUN_DIR") { Description = "Run folder holding metrics.jsonl (and samples.jsonl)" };
        var output = new Option<string?>("--out") { Description = "Output HTML file (default: RUN_DIR/report.html)" };
        var command = new Command("report", "Write a self-contained HTML page with the run's curves (inline SVG) and sample completions") { run, output };
        command.SetAction(parse =>
        {
            string path = RunReport.Write(parse.GetRequiredValue(run), parse.GetValue(output));
            Console.WriteLine(path);
            return 0;
        });
        return command;
    }
}
