using System.Text.Json.Nodes;
using Spark.Native.Demo;
using Spark.Native.Rewards.Tasks;
using Spark.Native.Tests.Cli;
using Spark.Native.Tests.IO;
using Spark.Native.Training;

namespace Spark.Native.Tests.Demo;

public class DemoTests
{
    /// <summary>The demo's pipeline at a size that runs in seconds: the same phases, files and scores, no claim of skill.</summary>
    private static readonly DemoPreset Micro = DemoPreset.Cpu with
    {
        Name = "micro",
        Shape = new ScratchModelShape(Layers: 1, Hidden: 32, Intermediate: 64, Heads: 2, KeyValueHeads: 1, MaxPositions: 32),
        TrainProblems = 300, TestProblems = 12, SftExamples = 96, SftBatch = 32, SftWarmup = 1, GrpoSteps = 3, PromptsPerStep = 3,
        GroupSize = 4, EvalK = 2, EvalEvery = 2,
    };

    [Fact]
    public void RunsEveryPhaseAndWritesTheRunFolder()
    {
        using var dir = new TempDir();
        string run = Path.Combine(dir.Path, "demo");
        var log = new List<string>();
        int sftSteps = 0, grpoSteps = 0;
        var result = DemoRunner.Run(new DemoOptions { OutputDirectory = run, Preset = Micro, Device = DemoDevice.Cpu, Seed = 3 },
            log.Add, _ => sftSteps++, _ => grpoSteps++);
        Assert.Equal(3, sftSteps);
        Assert.Equal(3, grpoSteps);
        Assert.Equal(Device.Cpu, result.Device);
        foreach (var s in new[] { result.Initial, result.AfterSft, result.AfterGrpo })
        {
            Assert.InRange(s.GreedyAccuracy, 0, 1);
            Assert.InRange(s.SampledAccuracy, 0, s.PassAtK);
            Assert.InRange(s.PassAtK, 0, 1);
            Assert.Equal(2, s.K);
            Assert.InRange(s.MeanLength, 1, Micro.MaxCompletionTokens);
        }
        foreach (string path in new[] { "base/config.json", "base/tokenizer.json", "data/sft.jsonl", "data/test.jsonl", "sft/final/model.safetensors",
                     "grpo/final/model.safetensors", "grpo/metrics.jsonl", "report.html", DemoRunner.SummaryFile })
            Assert.True(File.Exists(Path.Combine(run, path)), $"{path} is missing");
        // the held-out problems are not trained on, and the SFT targets are the task's answers
        var test = File.ReadLines(Path.Combine(run, "data/test.jsonl")).Select(l => JsonNode.Parse(l)!["prompt"]!.GetValue<string>()).ToHashSet();
        var sft = File.ReadLines(Path.Combine(run, "data/sft.jsonl")).Select(l => JsonNode.Parse(l)!).ToArray();
        Assert.Equal(96, sft.Length);
        Assert.DoesNotContain(sft, row => test.Contains(row["prompt"]!.GetValue<string>()));
        Assert.All(sft, row => Assert.Matches(@"^\d+ [-+] \d+ =$", row["prompt"]!.GetValue<string>()));
        // every SFT answer starts with the right result; the teacher hedges about half of them with a wrong second guess
        Assert.All(sft, row =>
        {
            string completion = row["completion"]!.GetValue<string>(), answer = Evaluate(row["prompt"]!.GetValue<string>());
            Assert.True(completion == answer || completion.StartsWith(answer + ", maybe ", StringComparison.Ordinal), $"{row}");
        });
        Assert.InRange(sft.Count(row => row["completion"]!.GetValue<string>().Contains("maybe", StringComparison.Ordinal)), 30, 66);
        // GRPO's periodic held-out evaluation is in its metrics (steps 2 and 3), and the summary holds all three rows
        var metrics = File.ReadAllLines(Path.Combine(run, "grpo", RunReport.MetricsFile));
        Assert.Equal([false, true, true], metrics.Select(l => l.Contains("eval_greedy_accuracy", StringComparison.Ordinal)));
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(run, DemoRunner.SummaryFile)))!;
        Assert.Equal(result.AfterGrpo.GreedyAccuracy, summary["after_grpo"]!["greedy_accuracy"]!.GetValue<double>());
        Assert.Equal("micro", summary["preset"]!.GetValue<string>());
        Assert.Contains(log, l => l.StartsWith("after GRPO", StringComparison.Ordinal));
    }

    private static string Evaluate(string prompt)
    {
        var parts = prompt.Split(' ');
        long a = long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), b = long.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture);
        return " " + (parts[1] == "+" ? a + b : a - b).ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public void AFolderThatIsNotADemoRunIsRefusedAndAnEarlierDemoIsReplaced()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "notes.txt"), "mine");
        File.WriteAllText(Path.Combine(dir.Path, DemoRunner.SummaryFile), "{}"); // a common name: not a marker
        var e = Assert.Throws<SparkException>(() => DemoRunner.Run(new DemoOptions { OutputDirectory = dir.Path, Preset = Micro, Device = DemoDevice.Cpu }));
        Assert.Contains("not empty", e.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(dir.Path, "notes.txt")));

        string run = Path.Combine(dir.Path, "demo");
        var options = new DemoOptions { OutputDirectory = run, Preset = Micro with { GrpoSteps = 1, EvalEvery = 0 }, Device = DemoDevice.Cpu };
        var a = DemoRunner.Run(options);
        File.WriteAllText(Path.Combine(run, "stale.txt"), "from the first run");
        var b = DemoRunner.Run(options);
        Assert.False(File.Exists(Path.Combine(run, "stale.txt")));
        Assert.Equal(a.AfterGrpo, b.AfterGrpo); // same seed, same numbers

        // bad settings fail before the earlier run is touched
        Assert.Contains("hedge rate 2", Assert.Throws<SparkException>(() => DemoRunner.Run(options with { Preset = Micro with { SftHedgeRate = 2 } })).Message, StringComparison.Ordinal);
        Assert.Contains("group size is 1", Assert.Throws<SparkException>(() => DemoRunner.Run(options with { Preset = Micro with { GroupSize = 1 } })).Message, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(run, DemoRunner.SummaryFile)));
    }

    [Fact]
    public void TheCliPrintsTheBeforeAfterTable()
    {
        using var dir = new TempDir();
        string run = Path.Combine(dir.Path, "demo");
        var (code, stdout, stderr) = CliTests.Spark("demo", "--out", run, "--device", "cpu", "--sft-examples", "64", "--grpo-steps", "2");
        Assert.True(code == 0, stderr);
        Assert.Contains("preset cpu on Cpu", stderr, StringComparison.Ordinal);
        Assert.Contains("grpo step 2/2", stderr, StringComparison.Ordinal);
        var rows = stdout.Split('\n').Select(l => l.TrimEnd()).ToArray();
        Assert.Contains(rows, l => l.StartsWith("model", StringComparison.Ordinal) && l.Contains("greedy", StringComparison.Ordinal) && l.Contains("pass@4", StringComparison.Ordinal));
        foreach (string phase in new[] { "initial", "after SFT", "after GRPO" })
            Assert.Contains(rows, l => l.StartsWith(phase, StringComparison.Ordinal) && l.Count(c => c == '%') == 3);
        Assert.Contains("GRPO gain:", stdout, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(run, "report.html")));

        var bad = CliTests.Spark("demo", "--out", run, "--preset", "huge");
        Assert.Equal(1, bad.Code);
        Assert.Equal("error: unknown demo preset 'huge'; valid presets: cpu, gpu", bad.Err.Trim());
    }

    [Fact]
    public void AHedgingTeacherAddsAWrongSecondGuessAtItsRate()
    {
        Assert.All(Enumerable.Range(0, 100), i => Assert.Equal("-40", DemoRunner.TeacherAnswer("-40", 0, 11, i)));
        var answers = Enumerable.Range(0, 4000).Select(i => DemoRunner.TeacherAnswer("-40", 0.3, 11, i)).ToArray();
        var hedged = answers.Where(a => a != "-40").ToArray();
        Assert.InRange(hedged.Length / 4000.0, 0.27, 0.33);
        var guesses = hedged.Select(a =>
        {
            Assert.StartsWith("-40, maybe ", a, StringComparison.Ordinal);
            return long.Parse(a["-40, maybe ".Length..], System.Globalization.CultureInfo.InvariantCulture) + 40;
        });
        Assert.Equal(new long[] { -3, -2, -1, 1, 2, 3 }, guesses.Distinct().Order());
        // the verifier reads the last number: a hedged answer is wrong
        Assert.Equal(0, Native.Rewards.Verifiers.Create("numeric").Score(" " + hedged[0], "-40").Reward);
        Assert.Equal(answers, Enumerable.Range(0, 4000).Select(i => DemoRunner.TeacherAnswer("-40", 0.3, 11, i))); // reproducible
    }
}
