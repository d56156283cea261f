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
