using System.CommandLine;
using Spark.Native;
using Spark.Native.Benchmarks;

namespace Spark.Cli;

/// <summary>
/// <c>spark bench kernels</c>: every engine op at real Qwen2.5 shapes on the CUDA backend, against measured ceilings;
/// <c>spark bench lab</c>: the numbered lab versions of the hard kernels, validated then timed. Both write JSON and print
/// a short table last; without a usable GPU they stop with one <c>error:</c> line.
/// </summary>
internal static class BenchCommand
{
    public static Command Create() => new("bench", "GPU kernel benchmarks (CUDA backend) and the kernel lab") { Kernels(), Lab() };

    private static Option<int> Reps() => new("--reps") { Description = "Most timed runs per kernel (at least 3 are taken)", DefaultValueFactory = _ => 20 };
    private static Option<int> Warmup() => new("--warmup") { Description = "Untimed runs before timing", DefaultValueFactory = _ => 2 };
    private static Option<string?> Json() => new("--json") { Description = "Write the JSON report here (rewritten after every kernel)" };
    private static Option<string?> Commit() => new("--commit") { Description = "Commit to record (default: $SPARK_COMMIT, else git rev-parse HEAD)" };

    private static Command Kernels()
    {
        var model = new Option<string>("--model") { Description = "qwen2.5-1.5b, qwen2.5-7b or all (comma-separated)", DefaultValueFactory = _ => "all" };
        var seq = new Option<string>("--seq") { Description = "Attention sequence lengths (training batches hold ≈ 16k tokens; decode uses 64 rows)", DefaultValueFactory = _ => "512,2048,8192" };
        var tokens = new Option<int>("--tokens") { Description = "Tokens T of the matmul, norm, RoPE, SwiGLU and vocabulary cases", DefaultValueFactory = _ => 4096 };
        var reps = Reps();
        var warmup = Warmup();
        var caseSeconds = new Option<double>("--case-seconds") { Description = "GPU seconds after which a kernel takes no more runs", DefaultValueFactory = _ => 2.0 };
        var budget = new Option<double>("--budget-seconds") { Description = "Skip the remaining kernels after this many seconds (0: no limit)", DefaultValueFactory = _ => 0 };
        var filter = new Option<string?>("--filter") { Description = "Only kernels whose name contains this text" };
        var json = Json();
        var commit = Commit();
        var list = new Option<bool>("--list") { Description = "Print the kernels with their FLOP and byte models and exit (no GPU needed)" };
        var command = new Command("kernels", "Time each engine kernel at Qwen2.5 shapes with CUDA events, against the measured copy and GEMM ceilings")
        {
            model, seq, tokens, reps, warmup, caseSeconds, budget, filter, json, commit, list,
        };
        command.SetAction(parse =>
        {
            var plan = new KernelPlanSettings(BenchModel.Parse(parse.GetRequiredValue(model)), BenchModel.ParseSequenceLengths(parse.GetRequiredValue(seq)),
                Tokens: Positive(parse.GetValue(tokens), "--tokens"));
            var settings = new KernelBenchSettings(plan, Positive(parse.GetValue(reps), "--reps"), NonNegative(parse.GetValue(warmup), "--warmup"),
                PositiveSeconds(parse.GetValue(caseSeconds), "--case-seconds"), NonNegativeSeconds(parse.GetValue(budget), "--budget-seconds"),
                parse.GetValue(filter), parse.GetValue(json), parse.GetValue(commit));
            if (parse.GetValue(list))
            {
                foreach (var c in KernelPlan.Build(plan))
                    if (settings.Filter is null || c.Name.Contains(settings.Filter, StringComparison.OrdinalIgnoreCase))
                        Console.WriteLine($"{c.Name}\t{c.Bound.ToString().ToLowerInvariant()}\t{c.Flops:E3} FLOP ({c.FlopModel})\t{c.Bytes:E3} B ({c.ByteModel})");
                return 0;
            }
            var report = KernelBenchmark.Run(settings, Console.Out);
            if (settings.JsonPath is { } path) Console.WriteLine($"wrote {Path.GetFullPath(path)}");
            Console.WriteLine();
            KernelBenchmark.PrintTable(report, Console.Out);
            if (report.Entries.Count > 0 && report.Entries.All(e => e.Status != "ok"))
            {
                Console.Error.WriteLine("error: no kernel could be measured (see the errors above)");
                return CliApp.Failure;
            }
            return 0;
        });
        return command;
    }

    private static Command Lab()
    {
        var family = new Option<string>("--family") { Description = $"{string.Join(", ", KernelLab.Families)} or all (comma-separated)", DefaultValueFactory = _ => "all" };
        var reps = Reps();
        var warmup = Warmup();
        var caseSeconds = new Option<double>("--case-seconds") { Description = "GPU seconds after which a version takes no more runs", DefaultValueFactory = _ => 1.0 };
        var json = Json();
        var commit = Commit();
        var list = new Option<bool>("--list") { Description = "Print the lab versions and exit (no GPU needed)" };
        var command = new Command("lab", "Kernel lab: numbered versions of RMSNorm, attention and log-prob, each validated against float64, then timed")
        {
            family, reps, warmup, caseSeconds, json, commit, list,
        };
        command.SetAction(parse =>
        {
            var families = KernelLab.ParseFamilies(parse.GetRequiredValue(family));
            var settings = new LabSettings(families, Positive(parse.GetValue(reps), "--reps"), NonNegative(parse.GetValue(warmup), "--warmup"),
                PositiveSeconds(parse.GetValue(caseSeconds), "--case-seconds"), parse.GetValue(json), parse.GetValue(commit));
            if (parse.GetValue(list))
            {
                foreach (var v in KernelLab.Versions.Where(v => families.Contains(v.Family)))
                    Console.WriteLine($"{v.Family} v{v.Number}\t{v.Name}\t{v.Source ?? "(engine op)"}\t{v.Summary}");
                return 0;
            }
            var report = KernelLab.Run(settings, Console.Out);
            if (settings.JsonPath is { } path) Console.WriteLine($"wrote {Path.GetFullPath(path)}");
            Console.WriteLine();
            KernelLab.PrintTable(report, Console.Out);
            return 0;
        });
        return command;
    }

    private static int Positive(int value, string option) =>
        value > 0 ? value : throw new SparkException($"{option}: {value} is not a positive integer");

    private static int NonNegative(int value, string option) =>
        value >= 0 ? value : throw new SparkException($"{option}: {value} is negative");

    private static double PositiveSeconds(double value, string option) =>
        value > 0 && double.IsFinite(value) ? value : throw new SparkException($"{option}: {value} is not a positive number of seconds");

    private static double NonNegativeSeconds(double value, string option) =>
        value >= 0 && double.IsFinite(value) ? value : throw new SparkException($"{option}: {value} is not a number of seconds ≥ 0");
}
