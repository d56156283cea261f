using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spark.Native.Training;

namespace Spark.Native.Demo;

/// <summary>Mean and spread of one score over seeds (undefined scores are left out and not counted).</summary>
/// <param name="Mean">Mean.</param>
/// <param name="StandardDeviation">Sample standard deviation (n − 1); 0 for one value.</param>
/// <param name="Min">Smallest value.</param>
/// <param name="Max">Largest value.</param>
/// <param name="Count">Values that were defined.</param>
public sealed record SeedStats(double Mean, double StandardDeviation, double Min, double Max, int Count)
{
    /// <summary>The statistics of the finite values; all NaN when there are none.</summary>
    public static SeedStats Of(IEnumerable<double> values)
    {
        var v = values.Where(double.IsFinite).ToArray();
        if (v.Length == 0) return new SeedStats(double.NaN, double.NaN, double.NaN, double.NaN, 0);
        double mean = v.Average();
        double sd = v.Length < 2 ? 0 : Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1));
        return new SeedStats(mean, sd, v.Min(), v.Max(), v.Length);
    }
}

/// <summary>Demo runs over several seeds and their aggregate.</summary>
/// <param name="RunDirectory">The folder holding one demo folder per seed (seed-N) and <see cref="DemoSeeds.ComparisonFile"/>.</param>
/// <param name="Runs">Each seed's result.</param>
/// <param name="ComparisonPath">The aggregate JSON.</param>
public sealed record DemoComparison(string RunDirectory, IReadOnlyList<DemoResult> Runs, string ComparisonPath);

/// <summary>
/// The miniature reproduction: the demo once per seed (each seed its own model, data, warm-up and methods), then every
/// score's mean ± standard deviation over seeds per phase, and the paired difference of the last method minus the first
/// (SPARK − GRPO with <c>--method both</c>) per seed, so a gain can be weighed against the seed-to-seed spread.
/// </summary>
public static class DemoSeeds
{
    /// <summary>The aggregate file in the run folder.</summary>
    public const string ComparisonFile = "comparison.json";

    /// <summary>The scores compared, by name.</summary>
    public static IReadOnlyList<(string Name, Func<DemoPhase, double> Of)> Scores { get; } =
    [
        ("greedy_accuracy", p => p.Policy.GreedyAccuracy),
        ("sampled_accuracy", p => p.Policy.SampledAccuracy),
        ("pass_at_k", p => p.Policy.PassAtK),
        ("mean_length", p => p.Policy.MeanLength),
        ("judge_pointwise_accuracy", p => p.Judge.PointwiseAccuracy),
        ("judge_balanced_accuracy", p => p.Judge.BalancedAccuracy),
        ("judge_pairwise_accuracy", p => p.Judge.PairwiseAccuracy),
        ("judge_ece", p => p.Judge.CalibrationError),
        ("judge_auroc", p => p.Judge.Auroc),
        ("reflect_accuracy", p => p.Judge.ReflectAccuracy),
        ("best_of_n_accuracy", p => p.Judge.BestOfAccuracy),
        ("best_of_n_random_pick_accuracy", p => p.Judge.BestOfSampleAccuracy),
    ];

    /// <summary>
    /// Runs the demo for each of <paramref name="seeds"/> into <c>seed-N</c> folders of
    /// <see cref="DemoOptions.OutputDirectory"/> (replaced when it holds an earlier demo) and writes the aggregate.
    /// </summary>
    public static DemoComparison Run(DemoOptions options, IReadOnlyList<ulong> seeds, Action<string>? log = null,
        Action<SftProgress>? onSftStep = null, Action<DemoGrpoStep>? onGrpoStep = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(seeds);
        if (seeds.Count == 0 || seeds.Distinct().Count() != seeds.Count) throw new SparkException("demo: give one or more distinct seeds");
        var device = DemoRunner.Plan(options, log ?? (_ => { })).Device; // every setting is checked before the folder is touched
        options = options with { Device = device == Device.Cuda ? DemoDevice.Cuda : DemoDevice.Cpu }; // probed once
        string root = DemoRunner.PrepareFolder(options.OutputDirectory);
        var runs = new List<DemoResult>();
        foreach (ulong seed in seeds)
        {
            log?.Invoke($"==== seed {seed} ({runs.Count + 1} of {seeds.Count})");
            runs.Add(DemoRunner.Run(options with { OutputDirectory = Path.Combine(root, $"seed-{seed}"), Seed = seed }, log, onSftStep, onGrpoStep));
        }
        string path = Path.Combine(root, ComparisonFile);
        File.WriteAllText(path, ToJson(runs).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return new DemoComparison(root, runs, path);
    }

    /// <summary>Phases in order: after SFT, then each method.</summary>
    public static IReadOnlyList<(string Name, Func<DemoResult, DemoPhase> Of)> Phases(DemoResult first) =>
        [("after_sft", r => r.AfterSft), .. first.Methods.Select(m => ($"after_{DemoRunner.MethodName(m.Method)}", (Func<DemoResult, DemoPhase>)(r => r.Of(m.Method).After)))];

    /// <summary>The aggregate: per phase and score, mean/sd/min/max/n over seeds and the per-seed values; plus the paired differences.</summary>
    public static JsonObject ToJson(IReadOnlyList<DemoResult> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        if (runs.Count == 0) throw new SparkException("no demo runs to compare");
        var first = runs[0];
        var phases = new JsonObject();
        foreach (var (phase, of) in Phases(first))
        {
            var scores = new JsonObject();
            foreach (var (name, score) in Scores) scores[name] = StatsJson(runs.Select(r => score(of(r))).ToArray());
            phases[phase] = scores;
        }
        var json = new JsonObject
        {
            ["preset"] = first.Preset, ["device"] = first.Device.ToString(),
            ["seeds"] = new JsonArray([.. runs.Select(r => (JsonNode?)r.Seed)]),
            ["methods"] = new JsonArray([.. first.Methods.Select(m => (JsonNode?)DemoRunner.MethodName(m.Method))]),
            ["k"] = first.AfterSft.Policy.K, ["reflect_rounds"] = first.AfterSft.Judge.ReflectRounds, ["best_of_n"] = first.AfterSft.Judge.BestOfN,
            ["phases"] = phases,
            ["seconds"] = new JsonObject
            {
                ["sft"] = StatsJson([.. runs.Select(r => r.SftSeconds)]),
                ["total"] = StatsJson([.. runs.Select(r => r.TotalSeconds)]),
            },
        };
        foreach (var m in first.Methods)
        {
            json["seconds"]![DemoRunner.MethodName(m.Method)] = StatsJson([.. runs.Select(r => r.Of(m.Method).Seconds)]);
            json[$"{DemoRunner.MethodName(m.Method)}_reward_periods"] = StatsJson([.. runs.Select(r => (double)r.Of(m.Method).RewardPeriods)]);
        }
        if (first.Methods.Count >= 2)
        {
            var (a, b) = (first.Methods[0].Method, first.Methods[^1].Method);
            var diff = new JsonObject();
            foreach (var (name, score) in Scores) diff[name] = StatsJson([.. runs.Select(r => score(r.Of(b).After) - score(r.Of(a).After))]);
            json[$"{DemoRunner.MethodName(b)}_minus_{DemoRunner.MethodName(a)}"] = diff;
        }
        return json;
    }

    private static JsonObject StatsJson(double[] values)
    {
        var s = SeedStats.Of(values);
        return new JsonObject
        {
            ["mean"] = DemoRunner.Number(s.Mean), ["sd"] = DemoRunner.Number(s.StandardDeviation), ["min"] = DemoRunner.Number(s.Min),
            ["max"] = DemoRunner.Number(s.Max), ["n"] = s.Count, ["values"] = new JsonArray([.. values.Select(DemoRunner.Number)]),
        };
    }

    /// <summary>The aggregate as a text table: one row per phase, mean ± sd of the headline scores (percent).</summary>
    public static string Table(IReadOnlyList<DemoResult> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var first = runs[0];
        string[] names = ["greedy_accuracy", "sampled_accuracy", "judge_pointwise_accuracy", "judge_pairwise_accuracy", "reflect_accuracy", "best_of_n_accuracy"];
        string[] heads = ["greedy", "sampled", "judge pw", "pairwise", $"reflect {first.AfterSft.Judge.ReflectRounds}", $"best-of-{first.AfterSft.Judge.BestOfN}"];
        var lookup = Scores.ToDictionary(s => s.Name, s => s.Of);
        var text = new System.Text.StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{"phase",-12}");
        foreach (string h in heads) text.Append(CultureInfo.InvariantCulture, $" {h,13}");
        text.Append('\n');
        foreach (var (phase, of) in Phases(first))
        {
            text.Append(CultureInfo.InvariantCulture, $"{phase,-12}");
            foreach (string n in names)
            {
                var s = SeedStats.Of(runs.Select(r => lookup[n](of(r))));
                text.Append(CultureInfo.InvariantCulture, $" {(s.Count == 0 ? "n/a" : $"{100 * s.Mean:F1} ± {100 * s.StandardDeviation:F1}"),13}");
            }
            text.Append('\n');
        }
        return text.ToString();
    }
}
