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

    [Theory]
    [InlineData("Grpo")]
    [InlineData("Bnpo")]
    [InlineData("Dapo")]
    [InlineData("DrGrpo")]
    public void GradientAccumulationGivesTheSameUpdate(string variant)
    {
        // 2 mini-batches of 6 completions, each in 1 or 3 parts: the accumulated gradient is the mini-batch's, so the
        // weights after two steps agree to fp32 rounding of the summation order
        using var ckpt = new TinyCheckpoint(new TinySpec { Vocab = 64, Eos = [63], Hidden = 32, Intermediate = 64, Heads = 4, KvHeads = 2, Seed = 27 });
        var prompts = Enumerable.Range(0, 6).Select(i => new GrpoPrompt([1 + i, 7, 9 + i])).ToArray();
        var loss = variant switch
        {
            "Bnpo" => GrpoLoss.Bnpo(5) with { Beta = 0 },
            "Dapo" => GrpoLoss.Dapo(5, 0) with { DynamicSampling = false, MaskTruncatedCompletions = false },
            "DrGrpo" => GrpoLoss.DrGrpo(5),
            _ => GrpoLoss.Grpo(5) with { Beta = 0 },
        };
        var options = new GrpoOptions
        {
            Loss = loss, PromptsPerStep = 3, GroupSize = 4, Steps = 2, MiniBatches = 2, Seed = 3,
            // a large ε keeps AdamW's step proportional to small gradients, so summation-order rounding stays small in the weights
            Optimizer = new OptimizerSettings { LearningRate = 1e-2, MaxGradNorm = 0, Epsilon = 1e-2 },
        };
        float[] Run(int accumulation, double learningRate = 1e-2)
        {
            using var model = SparkModel.Load(ckpt.Directory);
            using var run = new TempDir();
            GrpoTrainer.Train(model, prompts, EvenShare, options with
            {
                GradientAccumulation = accumulation, Optimizer = options.Optimizer with { LearningRate = learningRate },
            }, run.Path);
            return SafeTensorsCheckpointWeights(Path.Combine(run.Path, GrpoTrainer.FinalCheckpoint));
        }
        float[] initial = Run(1, learningRate: 0), whole = Run(1), parts = Run(3);
        double moved = 0, differ = 0;
        for (int i = 0; i < whole.Length; i++)
        {
            moved = Math.Max(moved, Math.Abs(whole[i] - initial[i]));
            differ = Math.Max(differ, Math.Abs(whole[i] - parts[i]));
        }
        Assert.True(moved > 1e-3, $"{variant}: the weights barely moved ({moved})");
        Assert.True(differ < 1e-4 * moved, $"{variant}: accumulated update differs by {differ} (update size {moved})");
    }

    [Fact]
    public void AnotherPromptSourceBringsItsOwnVerifierAndSeesTheScoredRollouts()
    {
        using var ckpt = new TinyCheckpoint(new TinySpec { Vocab = 64, Eos = [63], Hidden = 32, Intermediate = 64, Heads = 4, KvHeads = 2, Seed = 28 });
        using var model = SparkModel.Load(ckpt.Directory);
        using var run = new TempDir();
        var source = new AlternatingSource();
        var seen = new List<(long Step, IReadOnlyList<ScoredGroup> Groups)>();
        var progress = new List<GrpoProgress>();
        GrpoTrainer.Train(model, source, new GrpoOptions { Loss = GrpoLoss.Grpo(3) with { Beta = 0 }, PromptsPerStep = 4, GroupSize = 2, Steps = 2, Seed = 1 },
            run.Path, hooks: new GrpoHooks { OnRollouts = (step, groups) => seen.Add((step, groups)), OnStep = progress.Add });
        Assert.Equal([1L, 2L], seen.Select(s => s.Step));
        Assert.All(seen, s => Assert.Equal(4, s.Groups.Count));
        // every completion was scored by the kind of prompt it came from
        foreach (var group in seen.SelectMany(s => s.Groups))
        {
            bool judge = (string)group.Prompt.Problem! == "judge";
            Assert.All(group.Scores, x => Assert.Equal(judge ? 1.0 : 0.0, x.Reward));
            Assert.All(group.Scores, x => Assert.Equal(judge, x.Correct));
        }
        Assert.Equal(8, source.Position);
        Assert.All(progress, p => Assert.Equal(0.5, p.Accuracy));
    }

    /// <summary>A source alternating task and "judge" prompts, each scored by its own rule.</summary>
    private sealed class AlternatingSource : IPromptSource
    {
        public string Name => "alternating";
        public string Fingerprint => Name;
        public long Position { get; set; }
        public GrpoPrompt Next()
        {
            bool judge = Position++ % 2 == 1;
            return new GrpoPrompt([judge ? 5 : 3, 4], judge ? "judge" : "task");
        }
        public RewardScore Score(GrpoPrompt prompt, Native.Generation.RolloutSample sample) =>
            (string)prompt.Problem! == "judge" ? new RewardScore(1, true) : new RewardScore(0, false);
    }

    [Fact]
    public void ShuffledPromptsReplayFromAPosition()
    {
        var prompts = Enumerable.Range(0, 5).Select(i => new GrpoPrompt([i])).ToArray();
        var a = ShuffledPrompts.WithReward(prompts, (_, _) => 0, seed: 4);
        var drawn = Enumerable.Range(0, 12).Select(_ => a.Next().Ids[0]).ToArray();
        // each pass is a permutation of all prompts
        Assert.Equal([0, 1, 2, 3, 4], drawn.Take(5).Order());
        Assert.Equal([0, 1, 2, 3, 4], drawn.Skip(5).Take(5).Order());
        var b = ShuffledPrompts.WithReward(prompts, (_, _) => 0, seed: 4) ;
        b.Position = 7;
        Assert.Equal(drawn.Skip(7), Enumerable.Range(0, 5).Select(_ => b.Next().Ids[0]));
        Assert.Throws<SparkException>(() => b.Position = -1);
        // the fingerprint tells prompt sets apart (resume refuses other prompts)
        Assert.Equal(a.Fingerprint, b.Fingerprint);
        Assert.NotEqual(a.Fingerprint, ShuffledPrompts.WithReward(prompts[..4], (_, _) => 0, seed: 4).Fingerprint);
        Assert.NotEqual(a.Fingerprint, ShuffledPrompts.WithReward([.. prompts[..4], new GrpoPrompt([9])], (_, _) => 0, seed: 4).Fingerprint);
    }
}
