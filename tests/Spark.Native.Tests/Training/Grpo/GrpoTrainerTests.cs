using Spark.Native.Tests.Fixtures;
using Spark.Native.Tests.IO;
using Spark.Native.Training;
using Spark.Native.Training.Grpo;

namespace Spark.Native.Tests.Training.Grpo;

public class GrpoTrainerTests
{
    /// <summary>The share of a completion's tokens that are even ids: a dense reward a tiny random model can learn.</summary>
    private static double EvenShare(GrpoPrompt _, Native.Generation.RolloutSample s) =>
        s.Tokens.Count == 0 ? 0 : s.Tokens.Count(t => t % 2 == 0) / (double)s.Tokens.Count;

    [Theory]
    [InlineData("Grpo", 1)]
    [InlineData("Dapo", 2)]
    [InlineData("DrGrpo", 1)]
    public void RewardRisesWithAFixedSeed(string variant, int miniBatches)
    {
        using var ckpt = new TinyCheckpoint(new TinySpec { Vocab = 64, Eos = [63], Hidden = 32, Intermediate = 64, Heads = 4, KvHeads = 2, Seed = 21 });
        using var model = SparkModel.Load(ckpt.Directory);
        var prompts = Enumerable.Range(0, 6).Select(i => new GrpoPrompt([1 + i, 7, 9 + i])).ToArray();
        var loss = variant switch
        {
            // few completions end before 6 tokens here, and the overlong penalty would pull towards the (odd) EOS id
            "Dapo" => GrpoLoss.Dapo(6, 2) with { MaskTruncatedCompletions = false, OverlongCacheLength = 0 },
            "DrGrpo" => GrpoLoss.DrGrpo(6),
            _ => GrpoLoss.Grpo(6) with { Beta = 0 },
        };
        var options = new GrpoOptions
        {
            Loss = loss, PromptsPerStep = 4, GroupSize = 8, Steps = 30, MiniBatches = miniBatches, Seed = 5,
            Optimizer = new OptimizerSettings { LearningRate = 1.5e-3, MaxGradNorm = 1.0 },
        };
        var progress = new List<GrpoProgress>();
        using var run = new TempDir();
        GrpoTrainer.Train(model, prompts, EvenShare, options, run.Path, onStep: progress.Add);
        Assert.Equal(30, progress.Count);
        Assert.All(progress, p => Assert.True(double.IsFinite(p.Loss) && double.IsFinite(p.Entropy), $"step {p.Step}: loss {p.Loss}, entropy {p.Entropy}"));
        double before = progress.Take(3).Average(p => p.Reward), after = progress.TakeLast(5).Average(p => p.Reward);
        Assert.True(after > before + 0.15, $"{variant}: mean reward {before:F3} → {after:F3} ({string.Join(" ", progress.Select(p => p.Reward.ToString("F2")))})");
        // one metrics line per step, readable by the report
        Assert.Equal(30, File.ReadAllLines(Path.Combine(run.Path, RunReport.MetricsFile)).Length);
        Assert.EndsWith("report.html", RunReport.Write(run.Path), StringComparison.Ordinal);
    }

    [Fact]
    public void AResumedRunEqualsAnUninterruptedOne()
    {
        using var ckpt = new TinyCheckpoint(new TinySpec { Vocab = 64, Eos = [63], Hidden = 32, Intermediate = 64, Heads = 4, KvHeads = 2, Seed = 23 });
        var prompts = Enumerable.Range(0, 5).Select(i => new GrpoPrompt([1 + i, 7])).ToArray(); // 5 prompts, 2 per step: passes wrap mid-step
        var options = new GrpoOptions
        {
            Loss = GrpoLoss.Grpo(4) with { Beta = 0 }, PromptsPerStep = 2, GroupSize = 4, Steps = 6, MiniBatches = 2, Seed = 9,
            Optimizer = new OptimizerSettings { LearningRate = 1e-2 }, Schedule = ScheduleKind.Cosine, WarmupSteps = 2, SampleEvery = 2,
        };
        float[] FinalWeights(string run) => SafeTensorsCheckpointWeights(Path.Combine(run, GrpoTrainer.FinalCheckpoint));

        using var straight = new TempDir();
        var rewardsStraight = new List<double>();
        using (var model = SparkModel.Load(ckpt.Directory))
            GrpoTrainer.Train(model, prompts, EvenShare, options, straight.Path, onStep: p => rewardsStraight.Add(p.Reward), sourceDirectory: ckpt.Directory);

        using var resumed = new TempDir();
        var rewardsResumed = new List<double>();
        using (var model = SparkModel.Load(ckpt.Directory))
            GrpoTrainer.Train(model, prompts, EvenShare, options with { StopAfterSteps = 3 }, resumed.Path, onStep: p => rewardsResumed.Add(p.Reward), sourceDirectory: ckpt.Directory);
        string checkpoint = Path.Combine(resumed.Path, "checkpoint-3");
        using (var model = SparkModel.Load(checkpoint))
            GrpoTrainer.Train(model, prompts, EvenShare, options, resumed.Path, onStep: p => rewardsResumed.Add(p.Reward), sourceDirectory: ckpt.Directory, resumeState: checkpoint);

        Assert.Equal(rewardsStraight, rewardsResumed);
        Assert.Equal(FinalWeights(straight.Path), FinalWeights(resumed.Path));
        Assert.Equal(6, File.ReadAllLines(Path.Combine(resumed.Path, RunReport.MetricsFile)).Length);
        Assert.Equal(File.ReadAllLines(Path.Combine(straight.Path, RunReport.SamplesFile)).Length,
            File.ReadAllLines(Path.Combine(resumed.Path, RunReport.SamplesFile)).Length);
    }

    private static float[] SafeTensorsCheckpointWeights(string directory)
    {
        using var file = Native.IO.SafeTensorsFile.Open(Path.Combine(directory, "model.safetensors"));
        return file.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal).SelectMany(t => file.ReadF32(t.Name)).ToArray();
    }

    [Fact]
    public void EvaluationResultsJoinTheMetricsOfTheirSteps()
    {
        using var ckpt = new TinyCheckpoint(new TinySpec { Vocab = 64, Eos = [63], Hidden = 32, Intermediate = 64, Heads = 4, KvHeads = 2, Seed = 24 });
        using var model = SparkModel.Load(ckpt.Directory);
        using var run = new TempDir();
        int calls = 0;
        GrpoTrainer.Train(model, [new GrpoPrompt([3, 4])], EvenShare,
            new GrpoOptions { Loss = GrpoLoss.Grpo(3) with { Beta = 0 }, PromptsPerStep = 1, GroupSize = 2, Steps = 5, EvalEvery = 2 },
            run.Path, evaluate: _ => new Dictionary<string, double> { ["accuracy"] = ++calls });
        Assert.Equal(3, calls); // steps 2, 4 and the last
        var lines = File.ReadAllLines(Path.Combine(run.Path, RunReport.MetricsFile));
        Assert.Equal([false, true, false, true, true], lines.Select(l => l.Contains("\"eval_accuracy\"", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData(false, 2)] // plain GRPO trains on every group, all-equal ones too (they count in the normaliser and carry β·KL)
    [InlineData(true, 0)]  // dynamic sampling drops them (and gives up after its attempts)
    public void OnlyDynamicSamplingDropsAllEqualGroups(bool dynamicSampling, int keptGroups)
    {
        using var ckpt = new TinyCheckpoint(new TinySpec { Vocab = 64, Eos = [63], Hidden = 32, Intermediate = 64, Heads = 4, KvHeads = 2, Seed = 25 });
        using var model = SparkModel.Load(ckpt.Directory);
        using var run = new TempDir();
        var progress = new List<GrpoProgress>();
        GrpoTrainer.Train(model, [new GrpoPrompt([3, 4]), new GrpoPrompt([5, 6])], (_, _) => 0.5,
            new GrpoOptions
            {
                Loss = GrpoLoss.Grpo(3) with { Beta = 0, DynamicSampling = dynamicSampling }, PromptsPerStep = 2, GroupSize = 2, Steps = 2,
                MaxSamplingAttempts = 2,
            },
            run.Path, onStep: progress.Add);
        Assert.Equal([keptGroups, keptGroups], progress.Select(p => p.KeptGroups));
    }

    [Fact]
    public void BetaWithoutAReferenceModelIsRefused()
    {
        using var ckpt = new TinyCheckpoint(new TinySpec { Seed = 22 });
        using var model = SparkModel.Load(ckpt.Directory);
        using var run = new TempDir();
        var e = Assert.Throws<SparkException>(() => GrpoTrainer.Train(model, [new GrpoPrompt([1, 2])], EvenShare,
            new GrpoOptions { Loss = GrpoLoss.Grpo(4) with { Beta = 0.04 } }, run.Path));
        Assert.Contains("reference model", e.Message, StringComparison.Ordinal);
    }
}
