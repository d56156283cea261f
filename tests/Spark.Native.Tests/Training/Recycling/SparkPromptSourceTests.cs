using System.Text.Json.Nodes;
using Spark.Native.Generation;
using Spark.Native.Rewards.Tasks;
using Spark.Native.Tests.Fixtures;
using Spark.Native.Tests.IO;
using Spark.Native.Text;
using Spark.Native.Training;
using Spark.Native.Training.Grpo;
using Spark.Native.Training.Recycling;

namespace Spark.Native.Tests.Training.Recycling;

public class SparkPromptSourceTests
{
    private static RolloutSample Sample(string text) => new(0, 0, [1, 2], [0f, 0f], RolloutFinishReason.Eos, false, null, text);

    private static (SparkPromptSource Source, GrpoPrompt[] Prompts) Create(string dir, SparkMode mode, int perStep = 2, int? maxPromptTokens = null)
    {
        ByteTokenizer.Write(dir);
        var tokenizer = Tokenizer.Load(dir);
        var builder = new RlPromptBuilder(tokenizer, template: null);
        var problems = Enumerable.Range(0, 6).Select(i => new RlProblem($"t{i}", $"What is {i} + {i}?", (2 * i).ToString(System.Globalization.CultureInfo.InvariantCulture))).ToArray();
        var prompts = problems.Select(p => new GrpoPrompt(builder.Build(p).Ids, p)).ToArray();
        var policy = new ShuffledPrompts(prompts, (p, s) =>
        {
            bool right = (s.Text ?? "").Contains($"\\boxed{{{((RlProblem)p.Problem!).Answer}}}", StringComparison.Ordinal);
            return new RewardScore(right ? 1 : 0, right);
        }, seed: 3);
        var options = new RecyclingOptions { MaxJudgeItems = 100, MaxReflectionItems = 100 };
        return (new SparkPromptSource(policy, builder, perStep, mode, TemplatePool.BuiltIn, options, seed: 5) { MaxPromptTokens = maxPromptTokens }, prompts);
    }

    private static ScoredGroup Scored(SparkPromptSource source, GrpoPrompt prompt, params string[] texts) =>
        new(prompt, [.. texts.Select(Sample)], [.. texts.Select(t => source.Score(prompt, Sample(t)))]);

    [Fact]
    public void AFullCacheTurnsTheNextBatchIntoARewardPeriodScoredByTheItemsLabels()
    {
        using var dir = new TempDir();
        var (source, _) = Create(dir.Path, SparkMode.RewardPeriods);
        var batch = new[] { source.Next(), source.Next() };
        Assert.All(batch, p => Assert.IsType<RlProblem>(p.Problem));
        Assert.False(source.InRewardPeriod);
        // one mixed group, one all-correct group: two judge items and one reflection item
        var first = (RlProblem)batch[0].Problem!;
        var second = (RlProblem)batch[1].Problem!;
        source.OnRollouts(1, [
            Scored(source, batch[0], $"\\boxed{{{first.Answer}}}", "\\boxed{99}"),
            Scored(source, batch[1], $"\\boxed{{{second.Answer}}}", $"so \\boxed{{{second.Answer}}}"),
        ]);
        Assert.Equal(3, source.Cached);
        Assert.Equal((2, 1), source.Recycled);

        var reward = new[] { source.Next(), source.Next() };
        Assert.True(source.InRewardPeriod);
        Assert.All(reward, p => Assert.IsType<RecycledItem>(p.Problem));
        Assert.Equal(1, source.Cached);
        foreach (var prompt in reward)
        {
            var item = (RecycledItem)prompt.Problem!;
            Assert.Equal(new RewardScore(1, true), source.Score(prompt, Sample($"My verdict: \\boxed{{{item.Label}}}")));
            Assert.False(source.Score(prompt, Sample("\\boxed{Maybe}")).Correct);
        }
        // the rollouts of a reward period are not recycled again
        source.OnRollouts(2, [Scored(source, reward[0], "\\boxed{Yes}", "\\boxed{No}")]);
        Assert.Equal(1, source.Cached);
        // the task stream continues where it stood: 2 task prompts drawn
        Assert.Equal(2, source.Position);
        Assert.False(source.Next().Problem is RecycledItem);
        Assert.False(source.InRewardPeriod);
    }

    [Fact]
    public void OffIsPlainGrpoAndMixedSharesBatches()
    {
        using var dir = new TempDir();
        var (off, _) = Create(dir.Path, SparkMode.Off);
        var p = off.Next();
        off.OnRollouts(1, [Scored(off, p, "\\boxed{99}", "\\boxed{98}")]);
        Assert.Equal(0, off.Cached);

        // recycled prompts too long for the model are left out and counted
        using var dir3 = new TempDir();
        var (tight, _) = Create(dir3.Path, SparkMode.RewardPeriods, maxPromptTokens: 20);
        var q = tight.Next();
        tight.OnRollouts(1, [Scored(tight, q, "\\boxed{99}", "\\boxed{98}")]);
        Assert.Equal(0, tight.Cached);
        Assert.Equal(2, tight.DroppedTooLong);

        using var dir2 = new TempDir();
        var (mixed, _) = Create(dir2.Path, SparkMode.Mixed, perStep: 4);
        var batch = Enumerable.Range(0, 4).Select(_ => mixed.Next()).ToArray();
        mixed.OnRollouts(1, [.. batch.Select(b => Scored(mixed, b, "\\boxed{99}", "\\boxed{98}"))]); // all wrong: judge + reflection items
        Assert.True(mixed.Cached >= 4);
        var next = Enumerable.Range(0, 4).Select(_ => mixed.Next()).ToArray();
        Assert.Equal(2, next.Count(x => x.Problem is RecycledItem)); // MixShare 0.5 of 4
        Assert.False(mixed.InRewardPeriod);
    }

    [Fact]
    public void RewardPeriodsRunInsideTheUnchangedGrpoLoop()
    {
        using var ckpt = new TinyCheckpoint(new TinySpec
        {
            Vocab = 257, Eos = [256], Hidden = 32, Intermediate = 64, Heads = 4, KvHeads = 2, Seed = 33,
            EditConfig = c => c["max_position_embeddings"] = 512,
        });
        // byte-level prompts: a reflection prompt with a whole attempt can pass 400 bytes; longer ones are left out
        var (source, _) = Create(ckpt.Directory, SparkMode.RewardPeriods, maxPromptTokens: 400);
        using var model = SparkModel.Load(ckpt.Directory);
        using var run = new TempDir();
        GrpoTrainer.Train(model, source, new GrpoOptions { Loss = GrpoLoss.Grpo(6) with { Beta = 0 }, PromptsPerStep = 2, GroupSize = 2, Steps = 5, Seed = 2 },
            run.Path, Tokenizer.Load(ckpt.Directory), hooks: new GrpoHooks { OnRollouts = source.OnRollouts, StepMetrics = source.StepMetrics });
        var lines = File.ReadAllLines(Path.Combine(run.Path, RunReport.MetricsFile)).Select(l => JsonNode.Parse(l)!).ToArray();
        Assert.Equal(5, lines.Length);
        var periods = lines.Select(l => l["reward_period"]!.GetValue<double>()).ToArray();
        // a random model answers wrong: every task group yields a reflection item (full attempts need no extracted answer),
        // so the cache holds a batch after each task step and reward periods alternate with policy periods
        Assert.Equal(0, periods[0]);
        Assert.Contains(1.0, periods);
        Assert.True(lines[^1]["recycled_reflection"]!.GetValue<double>() > 0);
        Assert.Equal(source.DroppedTooLong, lines[^1]["recycled_too_long"]!.GetValue<double>());
    }

    [Fact]
    public void AResumedSparkRunGetsItsCacheBackAndEqualsTheUninterruptedOne()
    {
        using var ckpt = new TinyCheckpoint(new TinySpec
        {
            Vocab = 257, Eos = [256], Hidden = 32, Intermediate = 64, Heads = 4, KvHeads = 2, Seed = 33,
            EditConfig = c => c["max_position_embeddings"] = 512,
        });
        var options = new GrpoOptions { Loss = GrpoLoss.Grpo(6) with { Beta = 0 }, PromptsPerStep = 2, GroupSize = 2, Steps = 5, Seed = 2 };
        (double[] Periods, float[] Weights) RunIt(string dir, int? stopAfter, string? resume, string model)
        {
            var (source, _) = Create(ckpt.Directory, SparkMode.RewardPeriods, maxPromptTokens: 400);
            using var m = SparkModel.Load(model);
            GrpoTrainer.Train(m, source, options with { StopAfterSteps = stopAfter }, dir, Tokenizer.Load(ckpt.Directory),
                hooks: new GrpoHooks { OnRollouts = source.OnRollouts, StepMetrics = source.StepMetrics }, sourceDirectory: ckpt.Directory, resumeState: resume);
            var periods = File.ReadAllLines(Path.Combine(dir, RunReport.MetricsFile)).Select(l => JsonNode.Parse(l)!["reward_period"]!.GetValue<double>()).ToArray();
            string final = Path.Combine(dir, stopAfter is null ? GrpoTrainer.FinalCheckpoint : $"checkpoint-{stopAfter}");
            using var file = Native.IO.SafeTensorsFile.Open(Path.Combine(final, "model.safetensors"));
            return (periods, file.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal).SelectMany(t => file.ReadF32(t.Name)).ToArray());
        }

        using var straight = new TempDir();
        var expected = RunIt(straight.Path, null, null, ckpt.Directory);
        using var resumed = new TempDir();
        RunIt(resumed.Path, 1, null, ckpt.Directory);
        string checkpoint = Path.Combine(resumed.Path, "checkpoint-1");
        // after the first (policy) step the cache holds the recycled items the second step is made of
        var header = JsonNode.Parse(File.ReadLines(Path.Combine(checkpoint, SparkPromptSource.StateFile)).First())!;
        Assert.True(header["items"]!.GetValue<int>() >= 2);
        var actual = RunIt(resumed.Path, null, checkpoint, checkpoint);

        Assert.Equal(expected.Periods, actual.Periods);
        Assert.Equal(1.0, actual.Periods[1]);
        Assert.Equal(expected.Weights, actual.Weights);
    }

    [Fact]
    public void AMissingOrTornCacheFileIsAnErrorNamingIt()
    {
        using var dir = new TempDir();
        var (source, prompts) = Create(dir.Path, SparkMode.RewardPeriods);
        source.OnRollouts(0, [Scored(source, prompts[0], "\\boxed{1}", "\\boxed{3}")]);
        using var checkpoint = new TempDir();
        var missing = Assert.Throws<SparkException>(() => source.LoadState(checkpoint.Path));
        Assert.Contains(SparkPromptSource.StateFile, missing.Message, StringComparison.Ordinal);

        source.SaveState(checkpoint.Path);
        string path = Path.Combine(checkpoint.Path, SparkPromptSource.StateFile);
        var lines = File.ReadAllLines(path);
        Assert.True(lines.Length >= 2);
        var (restored, _) = Create(dir.Path, SparkMode.RewardPeriods);
        restored.LoadState(checkpoint.Path);
        Assert.Equal(source.Cached, restored.Cached);
        Assert.Equal(source.Recycled, restored.Recycled);

        File.WriteAllLines(path, lines[..^1]); // a torn write loses the last item
        var torn = Assert.Throws<SparkException>(() => restored.LoadState(checkpoint.Path));
        Assert.Contains("torn", torn.Message, StringComparison.Ordinal);
    }
}
