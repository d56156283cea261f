using Spark.Native.Training.Grpo;

namespace Spark.Native.Tests.Training.Grpo;

/// <summary>Non-finite inputs inside the completion mask throw a SparkException naming the row and token; padding is never read.</summary>
public class GrpoGuardTests
{
    private static readonly GrpoLoss Options = GrpoLoss.Grpo(3); // β = 0.04: needs ref log-probs
    private static readonly double[] Mask = [1, 1, 0, 1, 1, 1];
    private static readonly double[] Logp = [-1, -2, double.NaN, -1, -1, -1];
    private static readonly double[] Old = [-1.1, -2, double.NegativeInfinity, -1, -0.9, -1];
    private static readonly double[] Ref = [-1, -1, double.PositiveInfinity, -2, -1, -1];

    private static string Fails(double[] advantages, double[] logp, double[] old, double[] reference, double[] mask, GrpoLoss? options = null) =>
        Assert.Throws<SparkException>(() => GrpoMath.Loss(options ?? Options, advantages, logp, old, reference, mask)).Message;

    [Fact]
    public void PaddingMayHoldAnythingAndGetsZeroGradient()
    {
        var r = GrpoMath.Loss(Options, [0.5, -0.5], Logp, Old, Ref, Mask);
        Assert.True(double.IsFinite(r.Loss));
        Assert.Equal(0.0, r.GradLogp[2]);
        Assert.All(r.GradLogp, g => Assert.True(double.IsFinite(g)));
    }

    [Fact]
    public void NonFiniteLogProbInsideTheMaskNamesRowAndToken()
    {
        var logp = (double[])Logp.Clone();
        logp[4] = double.NaN;
        Assert.Contains("logp at row 1, token 1 is NaN", Fails([0.5, -0.5], logp, Old, Ref, Mask));
        var old = (double[])Old.Clone();
        old[0] = double.NegativeInfinity;
        Assert.Contains("old_logp at row 0, token 0 is -Infinity", Fails([0.5, -0.5], Logp, old, Ref, Mask));
        var reference = (double[])Ref.Clone();
        reference[5] = double.PositiveInfinity;
        Assert.Contains("ref_logp at row 1, token 2 is Infinity", Fails([0.5, -0.5], Logp, Old, reference, Mask));
    }

    [Fact]
    public void NonFiniteRewardsAndAdvantagesAreNamed()
    {
        Assert.Contains("reward[3] is NaN", Assert.Throws<SparkException>(() => GrpoMath.Advantages([1, 0, 1, double.NaN], 2, RewardScaling.Group, 1e-4)).Message);
        Assert.Contains("reward[1] is Infinity", Assert.Throws<SparkException>(() => DynamicSampling.KeepGroups([1, double.PositiveInfinity], 2)).Message);
        Assert.Contains("advantage[1] is NaN", Fails([0.5, double.NaN], Logp, Old, Ref, Mask));
    }

    [Fact]
    public void OverflowingTermIsReportedNotPropagated()
    {
        // log ρ = 800 → ρ = ∞ on the unclipped side of a negative advantage: loss +∞
        double[] logp = [-1, -1, 0, -1, -1, -1], old = [-801, -1, 0, -1, -1, -1];
        string message = Fails([-1, 1], logp, old, [], Mask, Options with { Beta = 0 });
        Assert.Contains("row 0, token 0 is not finite", message);
        Assert.Contains("log-ratio 800", message);
    }

    [Fact]
    public void ShapesMaskAndReferenceAreChecked()
    {
        Assert.Contains("no reference log-probs", Fails([0.5, -0.5], Logp, Old, [], Mask));
        Assert.Contains("expected 0 or 1", Fails([0.5, -0.5], Logp, Old, Ref, [1, 0.5, 0, 1, 1, 1]));
        Assert.Contains("not [B, L]", Fails([0.5, -0.5, 0, 0], Logp, Old, Ref, Mask));
        Assert.Contains("old_logp has 5", Fails([0.5, -0.5], Logp, Old[..5], Ref, Mask));
        Assert.Contains("token normaliser", Assert.Throws<SparkException>(() => GrpoMath.Loss(Options, [0.5, -0.5], Logp, Old, Ref, Mask, 0)).Message);
        Assert.Contains("groups of 3", Assert.Throws<SparkException>(() => GrpoMath.Advantages([1, 0, 1, 0], 3, RewardScaling.Group, 1e-4)).Message);
    }

    [Fact]
    public void NoReferenceNeededWhenBetaIsZero()
    {
        var r = GrpoMath.Loss(Options with { Beta = 0 }, [0.5, -0.5], Logp, Old, [], Mask);
        Assert.Null(r.KlMean);
        // with a reference but β = 0 the KL is still reported (as TRL's golden cases do) and adds nothing to the loss
        var withRef = GrpoMath.Loss(Options with { Beta = 0 }, [0.5, -0.5], Logp, Old, Ref, Mask);
        Assert.NotNull(withRef.KlMean);
        Assert.Equal(r.Loss, withRef.Loss);
        Assert.Equal(r.GradLogp, withRef.GradLogp);
    }
}
