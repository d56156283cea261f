using System.CommandLine;
using Spark.Native;
using Spark.Native.Demo;
using Spark.Native.Training;

namespace Spark.Cli;

/// <summary><c>spark demo</c>: the main job — a model from nothing, SFT warm-up, then GRPO, with a before/after table.</summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "Run folder (an earlier demo there is replaced)", DefaultValueFactory = _ => Path.Combine("runs", "demo") };
        var device = new Option<DemoDevice>("--device") { Description = "auto (CUDA when a GPU works, else CPU), cpu or cuda", DefaultValueFactory = _ => DemoDevice.Auto };
        var preset = new Option<string?>("--preset") { Description = "cpu (a 0.8 M-parameter model, CPU-sized) or gpu (larger model and task); default: by device" };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the weights, problems and sampling", DefaultValueFactory = _ => 7UL };
        var sftExamples = new Option<int?>("--sft-examples") { Description = "Override the preset: supervised warm-up examples (one epoch)" };
        var grpoSteps = new Option<int?>("--grpo-steps") { Description = "Override the preset: GRPO steps" };
        var hedge = new Option<double?>("--sft-hedge-rate") { Description = "Override the preset: share of SFT answers followed by a wrong second guess (\"71, maybe 73\")" };
        var grpoLr = new Option<double?>("--grpo-lr") { Description = "Override the preset: GRPO learning rate" };
        var perStep = new Option<int?>("--prompts-per-step") { Description = "Override the preset: GRPO prompts per step" };
        var group = new Option<int?>("--group-size") { Description = "Override the preset: GRPO completions per prompt" };
        var testProblems = new Option<int?>("--test-problems") { Description = "Override the preset: held-out problems scored before and after each phase" };
        var method = new Option<string>("--method")
        {
            Description = "What runs after the warm-up: spark (GRPO + the policy trained as its own judge), grpo (plain GRPO), or both (each from the same warm-up, compared)",
            DefaultValueFactory = _ => "spark",
        };
        method.AcceptOnlyFromAmong("spark", "grpo", "both");
        var seeds = new Option<string?>("--seeds") { Description = "Comma-separated seeds: one demo per seed in OUT/seed-N, then mean ± sd over seeds (OUT/comparison.json)" };
        var command = new Command("demo", "The main job: build a tiny model and tokenizer from scratch, warm it up with SFT on synthetic arithmetic, " +
            "then train it with SPARK (or plain GRPO) and score it as a policy and as its own judge; prints a before/after table and writes the run folder with report.html")
        {
            output, device, preset, seed, method, seeds, sftExamples, grpoSteps, hedge, grpoLr, perStep, group, testProblems,
        };
        command.SetAction(parse =>
        {
            var chosen = parse.GetValue(preset) is { } name ? DemoPreset.ByName(name) : null;
            var deviceValue = parse.GetValue(device);
            if (parse.GetValue(sftExamples) is not null || parse.GetValue(grpoSteps) is not null || parse.GetValue(hedge) is not null
                || parse.GetValue(grpoLr) is not null || parse.GetValue(perStep) is not null || parse.GetValue(group) is not null
                || parse.GetValue(testProblems) is not null)
            {
                // overrides apply to the preset the device picks; the device is probed once here and passed on as resolved
                if (chosen is null)
                {
                    var resolved = DemoRunner.ResolveDevice(deviceValue, Console.Error.WriteLine);
                    (chosen, deviceValue) = resolved == Device.Cuda ? (DemoPreset.Gpu, DemoDevice.Cuda) : (DemoPreset.Cpu, DemoDevice.Cpu);
                }
                if (parse.GetValue(sftExamples) is { } examples) chosen = chosen with { SftExamples = examples };
                if (parse.GetValue(grpoSteps) is { } steps) chosen = chosen with { GrpoSteps = steps };
                if (parse.GetValue(hedge) is { } rate) chosen = chosen with { SftHedgeRate = rate };
                if (parse.GetValue(grpoLr) is { } lr) chosen = chosen with { GrpoLearningRate = lr };
                if (parse.GetValue(perStep) is { } p) chosen = chosen with { PromptsPerStep = p };
                if (parse.GetValue(group) is { } g) chosen = chosen with { GroupSize = g };
                if (parse.GetValue(testProblems) is { } t) chosen = chosen with { TestProblems = t };
            }
            DemoMethod[] methods = parse.GetValue(method) switch
            {
                "grpo" => [DemoMethod.Grpo],
                "both" => [DemoMethod.Grpo, DemoMethod.Spark],
                _ => [DemoMethod.Spark],
            };
            var options = new DemoOptions
            {
                OutputDirectory = parse.GetValue(output)!, Device = deviceValue, Preset = chosen, Seed = parse.GetValue(seed), Methods = methods,
            };
            Action<SftProgress> onSft = p =>
            {
                if (p.Step % 16 == 0 || p.Step == p.TotalSteps)
                    Console.Error.WriteLine($"sft  step {p.Step}/{p.TotalSteps}  loss {p.Loss:F4}  lr {p.LearningRate:G3}  {p.TokensPerSecond:F0} tok/s  ETA {Eta(p.EtaSeconds)}");
            };
            Action<DemoGrpoStep> onGrpo = s =>
            {
                var p = s.Progress;
                Console.Error.WriteLine(
                    $"{DemoRunner.MethodName(s.Method)} step {p.Step}/{p.TotalSteps}{(s.RewardPeriod ? " [reward period]" : "")}  reward {p.Reward:F3}  acc {p.Accuracy:P0}  " +
                    $"clip {p.ClipFraction:P1}  entropy {p.Entropy:F3}  len {p.MeanLength:F1}  rollout {p.RolloutTokensPerSecond:F0} tok/s  " +
                    $"train {p.TrainTokensPerSecond:F0} tok/s  time {p.RolloutSeconds:F1}+{p.TrainSeconds:F1} s  ETA {Eta(p.EtaSeconds)}");
            };
            if (parse.GetValue(seeds) is { } seedList)
            {
                if (parse.GetResult(seed) is { Implicit: false }) throw new SparkException("give --seed or --seeds, not both");
                var comparison = DemoSeeds.Run(options, CliApp.ParseSeeds(seedList, "--seeds"), Console.Error.WriteLine, onSft, onGrpo);
                Console.WriteLine();
                Console.WriteLine($"held-out scores over {comparison.Runs.Count} seeds (mean ± sd, percent; {comparison.Runs[0].Preset} preset on {comparison.Runs[0].Device})");
                Console.Write(DemoSeeds.Table(comparison.Runs));
                Console.WriteLine($"per-seed results: {comparison.ComparisonPath}");
                return 0;
            }
            PrintTable(DemoRunner.Run(options, Console.Error.WriteLine, onSft, onGrpo));
            return 0;
        });
        return command;
    }

    private static string Eta(double seconds) => TimeSpan.FromSeconds(Math.Round(seconds)).ToString("c");

    private static void PrintTable(DemoResult r)
    {
        int k = r.AfterSft.Policy.K;
        var j = r.AfterSft.Judge;
        Console.WriteLine();
        Console.WriteLine($"held-out scores ({r.Preset} preset on {r.Device}, seed {r.Seed}, {r.TotalSeconds / 60:F1} min)");
        Console.WriteLine($"{"model",-12} {"greedy",7} {"sampled",7} {"pass@" + k,7} {"length",6} | {"judge",7} {"balanced",8} {"pairwise",8} {"ECE",5} | " +
            $"{"reflect " + j.ReflectRounds,9} {"best-of-" + j.BestOfN,9} {"(random)",8}");
        var rows = new List<(string, DemoPhase)> { ("initial", r.Initial), ("after SFT", r.AfterSft) };
        rows.AddRange(r.Methods.Select(m => ($"after {DemoRunner.MethodName(m.Method).ToUpperInvariant()}", m.After)));
        foreach (var (name, p) in rows)
            Console.WriteLine($"{name,-12} {Pct(p.Policy.GreedyAccuracy),7} {Pct(p.Policy.SampledAccuracy),7} {Pct(p.Policy.PassAtK),7} {p.Policy.MeanLength,6:F1} | " +
                $"{Pct(p.Judge.PointwiseAccuracy),7} {Pct(p.Judge.BalancedAccuracy),8} {Pct(p.Judge.PairwiseAccuracy),8} {Num(p.Judge.CalibrationError),5} | " +
                $"{Pct(p.Judge.ReflectAccuracy),9} {Pct(p.Judge.BestOfAccuracy),9} {Pct(p.Judge.BestOfSampleAccuracy),8}");
        foreach (var m in r.Methods)
            Console.WriteLine($"{DemoRunner.MethodName(m.Method).ToUpperInvariant()} gain over SFT: greedy {Points(m.After.Policy.GreedyAccuracy - r.AfterSft.Policy.GreedyAccuracy)}, " +
                $"sampled {Points(m.After.Policy.SampledAccuracy - r.AfterSft.Policy.SampledAccuracy)}, judge {Points(m.After.Judge.PointwiseAccuracy - r.AfterSft.Judge.PointwiseAccuracy)} points" +
                (m.RewardPeriods > 0 ? $" ({m.RewardPeriods} of {m.Steps} steps were reward periods)" : ""));
        Console.WriteLine($"run folder: {r.RunDirectory}  report: {r.ReportPath}");
    }

    private static string Pct(double x) => double.IsFinite(x) ? (100 * x).ToString("F1", System.Globalization.CultureInfo.InvariantCulture) + "%" : "n/a";

    private static string Num(double x) => double.IsFinite(x) ? x.ToString("F3", System.Globalization.CultureInfo.InvariantCulture) : "n/a";

    private static string Points(double x) => double.IsFinite(x) ? (100 * x).ToString("+0.0;-0.0", System.Globalization.CultureInfo.InvariantCulture) : "n/a";
}
