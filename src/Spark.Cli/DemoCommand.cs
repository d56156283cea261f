using System.CommandLine;
using Spark.Native;
using Spark.Native.Demo;

namespace Spark.Cli;

/// <summary><c>spark demo</c>: the main job — a model from nothing, SFT warm-up, then GRPO, with a before/after table.</summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "Run folder (an earlier demo there is replaced)", DefaultValueFactory = _ => Path.Combine("runs", "demo") };
        var device = new Option<DemoDevice>("--device") { Description = "auto (CUDA when a GPU works, else CPU), cpu or cuda", DefaultValueFactory = _ => DemoDevice.Auto };
        var preset = new Option<string?>("--preset") { Description = "cpu (about 10 minutes on 2 cores) or gpu (larger model and task); default: by device" };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the weights, problems and sampling", DefaultValueFactory = _ => 7UL };
        var sftExamples = new Option<int?>("--sft-examples") { Description = "Override the preset: supervised warm-up examples (one epoch)" };
        var grpoSteps = new Option<int?>("--grpo-steps") { Description = "Override the preset: GRPO steps" };
        var hedge = new Option<double?>("--sft-hedge-rate") { Description = "Override the preset: share of SFT answers followed by a wrong second guess (\"71, maybe 73\")" };
        var grpoLr = new Option<double?>("--grpo-lr") { Description = "Override the preset: GRPO learning rate" };
        var perStep = new Option<int?>("--prompts-per-step") { Description = "Override the preset: GRPO prompts per step" };
        var group = new Option<int?>("--group-size") { Description = "Override the preset: GRPO completions per prompt" };
        var command = new Command("demo", "The main job: build a tiny model and tokenizer from scratch, warm it up with SFT on synthetic arithmetic, " +
            "then raise its held-out accuracy with GRPO; prints a before/after table and writes the run folder with report.html")
        {
            output, device, preset, seed, sftExamples, grpoSteps, hedge, grpoLr, perStep, group,
        };
        command.SetAction(parse =>
        {
            var chosen = parse.GetValue(preset) is { } name ? DemoPreset.ByName(name) : null;
            var deviceValue = parse.GetValue(device);
            if (parse.GetValue(sftExamples) is not null || parse.GetValue(grpoSteps) is not null || parse.GetValue(hedge) is not null
                || parse.GetValue(grpoLr) is not null || parse.GetValue(perStep) is not null || parse.GetValue(group) is not null)
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
            }
            var result = DemoRunner.Run(new DemoOptions
            {
                OutputDirectory = parse.GetValue(output)!, Device = deviceValue, Preset = chosen, Seed = parse.GetValue(seed),
            },
            log: Console.Error.WriteLine,
            onSftStep: p =>
            {
                if (p.Step % 16 == 0 || p.Step == p.TotalSteps)
                    Console.Error.WriteLine($"sft  step {p.Step}/{p.TotalSteps}  loss {p.Loss:F4}  lr {p.LearningRate:G3}  {p.TokensPerSecond:F0} tok/s  ETA {Eta(p.EtaSeconds)}");
            },
            onGrpoStep: p => Console.Error.WriteLine(
                $"grpo step {p.Step}/{p.TotalSteps}  reward {p.Reward:F3}  acc {p.Accuracy:P0}  clip {p.ClipFraction:P1}  entropy {p.Entropy:F3}  " +
                $"len {p.MeanLength:F1}  rollout {p.RolloutTokensPerSecond:F0} tok/s  train {p.TrainTokensPerSecond:F0} tok/s  " +
                $"time {p.RolloutSeconds:F1}+{p.TrainSeconds:F1} s  ETA {Eta(p.EtaSeconds)}"));
            PrintTable(result);
            return 0;
        });
        return command;
    }

    private static string Eta(double seconds) => TimeSpan.FromSeconds(Math.Round(seconds)).ToString("c");

    private static void PrintTable(DemoResult r)
    {
        int k = r.AfterGrpo.K;
        Console.WriteLine();
        Console.WriteLine($"held-out accuracy ({r.Preset} preset on {r.Device}, {r.TotalSeconds / 60:F1} min)");
        Console.WriteLine($"{"model",-16} {"greedy",8} {"sampled",8} {"pass@" + k,8} {"length",7}");
        foreach (var (name, s) in new[] { ("initial", r.Initial), ("after SFT", r.AfterSft), ("after GRPO", r.AfterGrpo) })
            Console.WriteLine($"{name,-16} {s.GreedyAccuracy,8:P1} {s.SampledAccuracy,8:P1} {s.PassAtK,8:P1} {s.MeanLength,7:F1}");
        Console.WriteLine($"GRPO gain: greedy {100 * (r.AfterGrpo.GreedyAccuracy - r.AfterSft.GreedyAccuracy):+0.0;-0.0} points, " +
            $"sampled {100 * (r.AfterGrpo.SampledAccuracy - r.AfterSft.SampledAccuracy):+0.0;-0.0} points");
        Console.WriteLine($"run folder: {r.RunDirectory}  report: {r.ReportPath}");
    }
}
