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
        Shape = new ScratchModelShape(Layers: 1, Hidden: 32, Intermediate: 64, Heads: 2, KeyValueHeads: 1, MaxPositions: 64),
        TrainProblems = 300, TestProblems = 12, SftExamples = 96, SftBatch = 32, SftWarmup = 1, GrpoSteps = 3, PromptsPerStep = 3,
        GroupSize = 4, EvalK = 2, EvalEvery = 2, BestOfN = 3, JudgeCurveProblems = 6,
    };

    [Fact]
    public void RunsEveryPhaseAndBothMethodsFromTheSameWarmUp()
    {
        using var dir = new TempDir();
        string run = Path.Combine(dir.Path, "demo");
        var log = new List<string>();
        int sftSteps = 0;
        var grpoSteps = new List<DemoGrpoStep>();
        var result = DemoRunner.Run(new DemoOptions { OutputDirectory = run, Preset = Micro, Device = DemoDevice.Cpu, Seed = 3, Methods = [DemoMethod.Grpo, DemoMethod.Spark] },
            log.Add, _ => sftSteps++, grpoSteps.Add);
        Assert.Equal(3, sftSteps);
        Assert.Equal([DemoMethod.Grpo, DemoMethod.Grpo, DemoMethod.Grpo, DemoMethod.Spark, DemoMethod.Spark, DemoMethod.Spark], grpoSteps.Select(s => s.Method));
        Assert.DoesNotContain(grpoSteps, s => s.Method == DemoMethod.Grpo && s.RewardPeriod);
        Assert.Equal(Device.Cpu, result.Device);
        Assert.Equal([DemoMethod.Grpo, DemoMethod.Spark], result.Methods.Select(m => m.Method));
        Assert.Equal(grpoSteps.Count(s => s.RewardPeriod), result.Of(DemoMethod.Spark).RewardPeriods);
        Assert.Equal(0, result.Of(DemoMethod.Grpo).RewardPeriods);
        foreach (var phase in new[] { result.Initial, result.AfterSft, result.Of(DemoMethod.Grpo).After, result.Of(DemoMethod.Spark).After })
        {
            var s = phase.Policy;
            Assert.InRange(s.GreedyAccuracy, 0, 1);
            Assert.InRange(s.SampledAccuracy, 0, s.PassAtK);
            Assert.InRange(s.PassAtK, 0, 1);
            Assert.Equal(2, s.K);
            Assert.InRange(s.MeanLength, 1, Micro.MaxCompletionTokens);
            var j = phase.Judge;
            Assert.Equal((2, 3), (j.ReflectRounds, j.BestOfN));
            Assert.InRange(j.BestOfAccuracy, 0, 1);
            Assert.InRange(j.ReflectAccuracy, 0, 1);
            Assert.True(double.IsNaN(j.PointwiseAccuracy) || j.PointwiseAccuracy is >= 0 and <= 1);
        }
        foreach (string path in new[] { "base/config.json", "base/tokenizer.json", "data/sft.jsonl", "data/test.jsonl", "sft/final/model.safetensors",
                     "grpo/final/model.safetensors", "grpo/metrics.jsonl", "grpo/report.html", "spark/final/model.safetensors", "spark/metrics.jsonl",
                     "spark/final/" + Native.Training.Recycling.SparkPromptSource.StateFile, "report.html", DemoRunner.SummaryFile })
            Assert.True(File.Exists(Path.Combine(run, path)), $"{path} is missing");
        // the held-out problems are not trained on, and the SFT targets are the task's answers (or lessons, tested below)
        var test = File.ReadLines(Path.Combine(run, "data/test.jsonl")).Select(l => JsonNode.Parse(l)!["prompt"]!.GetValue<string>()).ToHashSet();
        var sft = File.ReadLines(Path.Combine(run, "data/sft.jsonl")).Select(l => JsonNode.Parse(l)!).ToArray();
        Assert.Equal(96, sft.Length);
        Assert.DoesNotContain(sft, row => test.Contains(row["prompt"]!.GetValue<string>()));
        var tasks = sft.Where(row => System.Text.RegularExpressions.Regex.IsMatch(row["prompt"]!.GetValue<string>(), @"^\d+ [-+] \d+ =$")).ToArray();
        Assert.InRange(tasks.Length, 60, 92); // a fifth are lessons
        // every task answer starts with the right result; the teacher hedges about half of them with a wrong second guess
        Assert.All(tasks, row =>
        {
            string completion = row["completion"]!.GetValue<string>(), answer = Evaluate(row["prompt"]!.GetValue<string>());
            Assert.True(completion == answer || completion.StartsWith(answer + ", maybe ", StringComparison.Ordinal), $"{row}");
        });
        Assert.InRange(tasks.Count(row => row["completion"]!.GetValue<string>().Contains("maybe", StringComparison.Ordinal)), tasks.Length / 5, tasks.Length * 4 / 5);
        // the periodic held-out evaluation is in each method's metrics (steps 2 and 3); SPARK's steps say whether they were reward periods
        var metrics = File.ReadAllLines(Path.Combine(run, "grpo", RunReport.MetricsFile));
        Assert.Equal([false, true, true], metrics.Select(l => l.Contains("eval_greedy_accuracy", StringComparison.Ordinal)));
        Assert.All(File.ReadAllLines(Path.Combine(run, "spark", RunReport.MetricsFile)), l => Assert.Contains("\"reward_period\"", l, StringComparison.Ordinal));
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(run, DemoRunner.SummaryFile)))!;
        Assert.Equal(result.Of(DemoMethod.Grpo).After.Policy.GreedyAccuracy, summary["after_grpo"]!["greedy_accuracy"]!.GetValue<double>());
        Assert.Equal(result.Of(DemoMethod.Spark).After.Judge.BestOfAccuracy, summary["after_spark"]!["judge"]!["best_of_3_accuracy"]!.GetValue<double>());
        Assert.Equal("micro", summary["preset"]!.GetValue<string>());
        Assert.Contains(log, l => l.StartsWith("after GRPO", StringComparison.Ordinal));
        Assert.Contains(log, l => l.StartsWith("after SPARK", StringComparison.Ordinal));
    }

    [Fact]
    public void SeedsAreAggregatedWithTheirSpreadAndPairedDifferences()
    {
        using var dir = new TempDir();
        var preset = Micro with { GrpoSteps = 2, EvalEvery = 0 };
        var comparison = DemoSeeds.Run(new DemoOptions
        {
            OutputDirectory = Path.Combine(dir.Path, "seeds"), Preset = preset, Device = DemoDevice.Cpu, Methods = [DemoMethod.Grpo, DemoMethod.Spark],
        }, [4, 5]);
        Assert.Equal([4UL, 5UL], comparison.Runs.Select(r => r.Seed));
        Assert.All(comparison.Runs, r => Assert.True(File.Exists(Path.Combine(r.RunDirectory, DemoRunner.SummaryFile))));
        Assert.Equal(Path.Combine(comparison.RunDirectory, "seed-5"), comparison.Runs[1].RunDirectory);
        var json = JsonNode.Parse(File.ReadAllText(comparison.ComparisonPath))!;
        var greedy = comparison.Runs.Select(r => r.Of(DemoMethod.Spark).After.Policy.GreedyAccuracy).ToArray();
        var stats = json["phases"]!["after_spark"]!["greedy_accuracy"]!;
        Assert.Equal(greedy.Average(), stats["mean"]!.GetValue<double>(), 12);
        double sd = Math.Sqrt(greedy.Sum(x => (x - greedy.Average()) * (x - greedy.Average())) / (greedy.Length - 1));
        Assert.Equal(sd, stats["sd"]!.GetValue<double>(), 12);
        Assert.Equal(greedy, stats["values"]!.AsArray().Select(v => v!.GetValue<double>()));
        var paired = json["spark_minus_grpo"]!["best_of_n_accuracy"]!["values"]!.AsArray().Select(v => v!.GetValue<double>());
        Assert.Equal(comparison.Runs.Select(r => r.Of(DemoMethod.Spark).After.Judge.BestOfAccuracy - r.Of(DemoMethod.Grpo).After.Judge.BestOfAccuracy), paired);
        string table = DemoSeeds.Table(comparison.Runs);
        Assert.Equal(["phase", "after_sft", "after_grpo", "after_spark"], table.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[0]));
        Assert.Contains(" ± ", table, StringComparison.Ordinal);
        Assert.Contains("distinct seeds", Assert.Throws<SparkException>(() => DemoSeeds.Run(new DemoOptions { OutputDirectory = dir.Path, Preset = preset }, [1, 1])).Message, StringComparison.Ordinal);
        // bad settings fail before the earlier seeds folder is replaced
        Assert.Contains("group size is 1", Assert.Throws<SparkException>(() => DemoSeeds.Run(new DemoOptions
        {
            OutputDirectory = comparison.RunDirectory, Preset = preset with { GroupSize = 1 }, Device = DemoDevice.Cpu,
        }, [4])).Message, StringComparison.Ordinal);
        Assert.True(File.Exists(comparison.ComparisonPath));
    }

    [Fact]
    public void JudgeAndReflectionLessonsCarryTheTeachersRightVerdicts()
    {
        var pool = Native.Training.Recycling.TemplatePool.Terse;
        var preset = DemoPreset.Cpu with { SftJudgeShare = 0.6 };
        var problem = new RlProblem("p", "40 + 2 =", "42") { Verifier = "numeric" };
        int pointwise = 0, pairwise = 0, reflection = 0, yes = 0, first = 0;
        for (int i = 0; i < 3000; i++)
        {
            var (prompt, completion) = DemoRunner.SftExample(problem, preset, pool, 9, i);
            if (prompt == problem.Prompt) continue; // a task example
            var pw = pool.Pointwise.FirstOrDefault(t => Matches(t.Text, prompt));
            var pr = pool.Pairwise.FirstOrDefault(t => Matches(t.Text, prompt));
            if (pw is not null)
            {
                pointwise++;
                bool right = prompt.Contains(" 42 ", StringComparison.Ordinal);
                string verdict = pw.Style == Native.Training.Recycling.TemplateStyle.YesNo ? (right ? "Yes" : "No") : (right ? "A" : "B");
                Assert.Equal(" 42" + DemoRunner.VerdictPrefix + verdict + "}", completion); // the judge works the sum, then judges
                yes += right ? 1 : 0;
            }
            else if (pr is not null)
            {
                pairwise++;
                // the letter names the place of the right answer: answer A comes first in every pairwise template
                var shown = System.Text.RegularExpressions.Regex.Matches(prompt[(prompt.IndexOf('=', StringComparison.Ordinal) + 1)..], @"-?\d+").Select(m => m.Value).ToArray();
                Assert.Equal(2, shown.Length);
                Assert.Contains("42", shown);
                Assert.Equal(" 42" + DemoRunner.VerdictPrefix + (shown[0] == "42" ? "A" : "B") + "}", completion);
                first += shown[0] == "42" ? 1 : 0;
            }
            else
            {
                reflection++;
                Assert.Contains(pool.Reflection, t => Matches(t.Text, prompt));
                Assert.StartsWith(" 42", completion, StringComparison.Ordinal); // the teacher answers again (maybe hedging)
                Assert.DoesNotContain(" 42 ", prompt[problem.Prompt.Length..], StringComparison.Ordinal); // the attempt shown is wrong
            }
        }
        int lessons = pointwise + pairwise + reflection;
        Assert.InRange(lessons, 1600, 2000); // 60 % of 3000
        Assert.InRange(pointwise / (double)lessons, 0.45, 0.55);
        Assert.InRange(pairwise / (double)lessons, 0.2, 0.3);
        Assert.InRange(yes / (double)pointwise, 0.45, 0.55); // balanced classes
        Assert.InRange(first / (double)pairwise, 0.4, 0.6); // A/B placement balanced
    }

    /// <summary>Whether <paramref name="text"/> is <paramref name="template"/> with its placeholders filled.</summary>
    private static bool Matches(string template, string text)
    {
        string pattern = "^" + System.Text.RegularExpressions.Regex.Escape(template)
            .Replace(@"\{question}", "(.+)", StringComparison.Ordinal).Replace(@"\{answer}", "(.+)", StringComparison.Ordinal)
            .Replace(@"\{answer_a}", "(.+)", StringComparison.Ordinal).Replace(@"\{answer_b}", "(.+)", StringComparison.Ordinal)
            .Replace(@"\{attempt}", "(.+)", StringComparison.Ordinal) + "$";
        return System.Text.RegularExpressions.Regex.IsMatch(text, pattern);
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
        Assert.Equal(a.Of(DemoMethod.Spark).After, b.Of(DemoMethod.Spark).After); // same seed, same numbers

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
        var (code, stdout, stderr) = CliTests.Spark("demo", "--out", run, "--device", "cpu", "--sft-examples", "64", "--grpo-steps", "2", "--test-problems", "16");
        Assert.True(code == 0, stderr);
        Assert.Contains("preset cpu on Cpu", stderr, StringComparison.Ordinal);
        Assert.Contains("spark step 2/2", stderr, StringComparison.Ordinal);
        var rows = stdout.Split('\n').Select(l => l.TrimEnd()).ToArray();
        Assert.Contains(rows, l => l.StartsWith("model", StringComparison.Ordinal) && l.Contains("greedy", StringComparison.Ordinal) && l.Contains("pass@4", StringComparison.Ordinal));
        foreach (string phase in new[] { "initial", "after SFT", "after SPARK" })
            Assert.Contains(rows, l => l.StartsWith(phase, StringComparison.Ordinal) && l.Count(c => c == '%') >= 5);
        Assert.Contains("SPARK gain over SFT:", stdout, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(run, "report.html")));

        var both = CliTests.Spark("demo", "--out", run, "--seed", "3", "--seeds", "1,2");
        Assert.Equal("error: give --seed or --seeds, not both", both.Err.Trim());
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
