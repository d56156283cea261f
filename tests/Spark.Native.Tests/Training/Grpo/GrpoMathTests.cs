using Spark.Native.Training.Grpo;

namespace Spark.Native.Tests.Training.Grpo;

/// <summary>Hand-computed examples of the GRPO-family math; these need no ../shared.</summary>
public class GrpoMathTests
{
    private static readonly double Ln15 = Math.Log(1.5), Ln05 = Math.Log(0.5);

    [Fact]
    public void GroupAdvantagesByHand()
    {
        // group 1 {1,0,1,0}: mean 0.5, unbiased std √(1/3) → ±0.5·√3 = ±√3/2; group 2 all equal → exactly 0
        double[] rewards = [1, 0, 1, 0, 1, 1, 1, 1];
        double h = 0.8660254037844386;
        Close.Equal([h, -h, h, -h, 0, 0, 0, 0], GrpoMath.Advantages(rewards, 4, RewardScaling.Group, 0), 1e-15);
        Assert.Equal([0.5, -0.5, 0.5, -0.5, 0, 0, 0, 0], GrpoMath.Advantages(rewards, 4, RewardScaling.None, 0));
        // batch: 6 ones of 8, unbiased std √(1.5/7) = √(3/14); ±0.5 / √(3/14) = ±√(7/6)
        double b = 1.0801234497346435;
        Close.Equal([b, -b, b, -b, 0, 0, 0, 0], GrpoMath.Advantages(rewards, 4, RewardScaling.Batch, 0), 1e-15);
        // TRL's ε = 1e-4 in the divisor
        Assert.Equal(0.5 / (Math.Sqrt(1.0 / 3) + 1e-4), GrpoMath.Advantages(rewards, 4, RewardScaling.Group, 1e-4)[0], 1e-15);
    }

    [Fact]
    public void EqualRewardsGiveZeroAdvantagesEvenWithoutEpsilon()
    {
        // 0.1 is not exact: (0.1 + 0.1 + 0.1) / 3 ≠ 0.1, so only an explicit all-equal rule keeps this at 0 with ε = 0
        foreach (var scaling in Enum.GetValues<RewardScaling>())
            Assert.All(GrpoMath.Advantages([0.1, 0.1, 0.1, 0.7, 0.7, 0.7], 3, scaling, 0), a => Assert.Equal(0.0, a));
        Assert.Equal([0.0], GrpoMath.Advantages([3.0], 1, RewardScaling.Group, 1e-4));
    }

    [Fact]
    public void ClippingActiveOnBothSides()
    {
        // row 0 (A = +1): ρ = 1.5 > 1.2 clipped high (ℓ = −1.2, grad 0); ρ = 0.5 unclipped (ℓ = −0.5, ∂ = −0.5)
        // row 1 (A = −1): ρ = 0.5 < 0.8 clipped low (ℓ = 0.8, grad 0); ρ = 1.5 unclipped (ℓ = 1.5, ∂ = 1.5)
        // grpo aggregation: w = 1 / (2 tokens · 2 rows) = 0.25 → loss 0.25 · 0.6 = 0.15
        double[] old = [-1, -1, -2, -2];
        double[] logp = [-1 + Ln15, -1 + Ln05, -2 + Ln05, -2 + Ln15];
        var options = new GrpoLoss(LossType.Grpo, RewardScaling.Group, ImportanceSampling.Token, 0, 0.2, 0.2, 2);
        var r = GrpoMath.Loss(options, [1, -1], logp, old, [], [1, 1, 1, 1]);
        Assert.Equal(0.15, r.Loss, 1e-15);
        Close.Equal([0, -0.125, 0, 0.375], r.GradLogp, 1e-15);
        Assert.Equal(0.25, r.ClipLowFraction);
        Assert.Equal(0.25, r.ClipHighFraction);
        Assert.Null(r.KlMean);
    }

    [Fact]
    public void AsymmetricClipHigherLetsARatioThroughThatSymmetricClipStops()
    {
        // ρ = 1.25, A > 0: clipped at ε_high 0.2, not at DAPO's 0.28
        Assert.Equal((-1.2, 0.0, 1), GrpoMath.ClippedSurrogate(1.25, 1, 0.2, 0.2));
        Assert.Equal((-1.25, -1.25, 0), GrpoMath.ClippedSurrogate(1.25, 1, 0.2, 0.28));
        Assert.Equal((0.0, 0.0, 0), GrpoMath.ClippedSurrogate(5, 0, 0.2, 0.28)); // A = 0: nothing, not counted as clipped
    }

    [Fact]
    public void KlTermWithBetaByHand()
    {
        // A = 0, so only β·k3 remains. ref − logp = [−0.5, 1]:
        // k3 = e^−0.5 + 0.5 − 1 = 0.10653065971263342, e − 2 = 0.7182818284590451; mean 0.41240624408583926
        // loss = β · mean (grpo, one row of 2 tokens) = 0.04124062440858393; ∂ = ½ · β · (1 − e^(ref − logp))
        var options = new GrpoLoss(LossType.Grpo, RewardScaling.Group, ImportanceSampling.Token, 0.1, 0.2, 0.2, 2);
        var r = GrpoMath.Loss(options, [0], [-1, -2], [], [-1.5, -1], [1, 1]);
        Assert.Equal(0.41240624408583926, r.KlMean!.Value, 1e-15);
        Assert.Equal(0.04124062440858393, r.Loss, 1e-15);
        Close.Equal([0.01967346701436833, -0.08591409142295225], r.GradLogp, 1e-15);
        Assert.Equal((0.0, 0.0), GrpoMath.KlK3(-1.25, -1.25));
    }

    [Fact]
    public void GspoSequenceRatioByHand()
    {
        // log ρ per token [0.1, 0.3] → s = exp(0.2) = 1.2214 (inside 1 ± 0.28), A = 1: loss −s, ∂ each token −s / 2;
        // the padded third token (NaN: never read) gets 0
        var options = new GrpoLoss(LossType.Grpo, RewardScaling.Group, ImportanceSampling.Sequence, 0, 0.2, 0.28, 3);
        var r = GrpoMath.Loss(options, [1], [-0.9, -0.7, double.NaN], [-1, -1, double.NaN], [], [1, 1, 0]);
        Assert.Equal(-1.2214027581601699, r.Loss, 1e-15);
        Close.Equal([-0.6107013790800849, -0.6107013790800849, 0], r.GradLogp, 1e-15);
    }

    [Theory]
    // rows of 1 and 3 tokens, ρ = 1, A = [+1, −1], so ℓ = −A per token
    [InlineData(LossType.Grpo, null, 0.0)]    // ½(−1) + ½(+1)
    [InlineData(LossType.Bnpo, null, 0.5)]    // (−1 + 3) / 4
    [InlineData(LossType.Dapo, null, 0.5)]    // the batch's own 4 tokens
    [InlineData(LossType.Dapo, 8.0, 0.25)]    // a mini-batch of a rollout batch of 8 tokens
    [InlineData(LossType.DrGrpo, null, 0.25)] // (−1 + 3) / (2 rows · 4 max length)
    public void AggregationModesByHand(LossType type, double? normalizer, double expected)
    {
        var options = new GrpoLoss(type, RewardScaling.Group, ImportanceSampling.Token, 0, 0.2, 0.2, 4);
        double[] logp = [-1, 0, 0, -1, -1, -1];
        var r = GrpoMath.Loss(options, [1, -1], logp, [], [], [1, 0, 0, 1, 1, 1], normalizer);
        Assert.Equal(expected, r.Loss, 1e-15);
    }

    [Fact]
    public void PresetsFollowTheVariantsTable()
    {
        var dapo = GrpoLoss.Dapo(1024, 256);
        Assert.Equal((LossType.Dapo, 0.2, 0.28, 0.0, true, 256, true),
            (dapo.LossType, dapo.EpsilonLow, dapo.EpsilonHigh, dapo.Beta, dapo.MaskTruncatedCompletions, dapo.OverlongCacheLength, dapo.DynamicSampling));
        var dr = GrpoLoss.DrGrpo(1024);
        Assert.Equal((LossType.DrGrpo, RewardScaling.None, 0.0), (dr.LossType, dr.RewardScaling, dr.Beta));
        Assert.False(dr.NeedsReferenceModel);
        Assert.False(dapo.NeedsReferenceModel);
        Assert.True(GrpoLoss.Grpo(1024).NeedsReferenceModel);
        Assert.Equal(ImportanceSampling.Sequence, GrpoLoss.Gspo(1024).ImportanceSampling);
        Assert.Equal(LossType.Bnpo, GrpoLoss.Bnpo(1024).LossType);
        Assert.Equal(Native.Backends.AdvantageNormalization.None, dr.Normalization);
        Assert.Equal(Native.Backends.AdvantageNormalization.GroupStd, dapo.Normalization);
        Assert.Equal(Native.Backends.AdvantageNormalization.BatchStd, (dapo with { RewardScaling = RewardScaling.Batch }).Normalization);
        foreach (var o in new[] { dapo, dr, GrpoLoss.Grpo(8), GrpoLoss.Bnpo(8), GrpoLoss.Gspo(8) }) o.Validate();
    }

    [Fact]
    public void BadSettingsAreRejected()
    {
        var ok = GrpoLoss.Grpo(16);
        Assert.Contains("beta", Assert.Throws<SparkException>(() => (ok with { Beta = -1 }).Validate()).Message);
        Assert.Contains("epsilon_low", Assert.Throws<SparkException>(() => (ok with { EpsilonLow = 1 }).Validate()).Message);
        Assert.Contains("max completion length", Assert.Throws<SparkException>(() => (ok with { MaxCompletionLength = 0 }).Validate()).Message);
        Assert.Contains("Grpo, Bnpo, DrGrpo, Dapo", Assert.Throws<SparkException>(() => (ok with { LossType = (LossType)9 }).Validate()).Message);
        Assert.Contains("overlong", Assert.Throws<SparkException>(() => (ok with { OverlongCacheLength = 17 }).Validate()).Message);
    }
}
