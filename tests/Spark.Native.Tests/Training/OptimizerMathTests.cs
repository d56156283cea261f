using Spark.Native.Training;

namespace Spark.Native.Tests.Training;

public class OptimizerMathTests
{
    // warm-up 10, total 110: the decay spans 100 steps, so step 10 + k is progress k/100
    [Theory]
    [InlineData(0, 0.0)]
    [InlineData(5, 0.5)]
    [InlineData(9, 0.9)]
    [InlineData(10, 1.0)]
    [InlineData(35, 0.75)]
    [InlineData(60, 0.5)]
    [InlineData(109, 0.01)]
    [InlineData(110, 0.0)]
    [InlineData(500, 0.0)]
    public void LinearMatchesTransformers(long step, double factor) =>
        Assert.Equal(2e-4 * factor, new LearningRateSchedule(ScheduleKind.Linear, 2e-4, 10, 110).At(step), 1e-15);

    [Theory]
    [InlineData(0, 0.0)]
    [InlineData(5, 0.5)]
    [InlineData(10, 1.0)]
    [InlineData(35, 0.85355339059327373)] // 0.5·(1 + cos(π/4))
    [InlineData(60, 0.5)]                  // 0.5·(1 + cos(π/2))
    [InlineData(85, 0.14644660940672627)] // 0.5·(1 + cos(3π/4))
    [InlineData(110, 0.0)]
    [InlineData(160, 0.0)]                 // clamped; transformers' cosine would climb back here
    public void CosineMatchesTransformers(long step, double factor) =>
        Assert.Equal(2e-4 * factor, new LearningRateSchedule(ScheduleKind.Cosine, 2e-4, 10, 110).At(step), 1e-15);

    [Theory]
    [InlineData(ScheduleKind.Linear, 60, 0.55)]  // 0.1 + 0.9·0.5
    [InlineData(ScheduleKind.Linear, 110, 0.1)]
    [InlineData(ScheduleKind.Cosine, 60, 0.55)]
    [InlineData(ScheduleKind.Cosine, 110, 0.1)]
    [InlineData(ScheduleKind.Cosine, 5, 0.5)]   // the floor does not touch warm-up
    [InlineData(ScheduleKind.Constant, 110, 1.0)]
    public void MinimumRatioIsTheFloorOfTheDecay(ScheduleKind kind, long step, double factor) =>
        Assert.Equal(factor, new LearningRateSchedule(kind, 1.0, 10, 110, MinLearningRateRatio: 0.1).At(step), 1e-15);

    [Fact]
    public void ConstantWarmsUpThenHolds()
    {
        var s = new LearningRateSchedule(ScheduleKind.Constant, 1.0, 4, 8);
        Assert.Equal([0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0], Enumerable.Range(0, 7).Select(i => s.At(i)));
    }

    [Fact]
    public void NoWarmupStartsAtThePeak()
    {
        Assert.Equal(1.0, new LearningRateSchedule(ScheduleKind.Linear, 1.0, 0, 100).At(0));
        Assert.Equal(0.99, new LearningRateSchedule(ScheduleKind.Linear, 1.0, 0, 100).At(1), 1e-15);
        Assert.Equal(1.0, new LearningRateSchedule(ScheduleKind.Cosine, 1.0, 0, 0).At(0)); // max(1, 0) denominators
    }

    [Fact]
    public void ScheduleRejectsBadSettings()
    {
        Assert.Contains("total steps 5", Assert.Throws<SparkException>(() => new LearningRateSchedule(ScheduleKind.Linear, 1, 10, 5).At(0)).Message);
        Assert.Contains("minimum ratio", Assert.Throws<SparkException>(() => new LearningRateSchedule(ScheduleKind.Linear, 1, 0, 5, 1.5).At(0)).Message);
        Assert.Contains("Constant, Linear, Cosine", Assert.Throws<SparkException>(() => new LearningRateSchedule((ScheduleKind)7, 1, 0, 5).At(0)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new LearningRateSchedule(ScheduleKind.Linear, 1, 0, 5).At(-1));
    }

    [Theory]
    [InlineData(9.0, 1.0, 1.0 / (3.0 + 1e-6))]  // ‖g‖ = 3 > 1: scale down
    [InlineData(1.0, 1.0, 1.0 / (1.0 + 1e-6))]  // at the limit torch still scales by max/(norm + 1e-6)
    [InlineData(0.25, 1.0, 1.0)]                // ‖g‖ = 0.5: untouched
    [InlineData(0.0, 1.0, 1.0)]
    [InlineData(400.0, 0.0, 1.0)]               // 0 = off
    [InlineData(16.0, 2.0, 2.0 / (4.0 + 1e-6))]
    public void ClippingScaleMatchesTorch(double normSquared, double maxNorm, double expected) =>
        Assert.Equal(expected, GradientClipping.Scale(normSquared, maxNorm), 1e-15);

    [Fact]
    public void ClippingPassesNonFiniteNormsThrough()
    {
        Assert.Equal(0.0, GradientClipping.Scale(double.PositiveInfinity, 1.0));
        Assert.True(double.IsNaN(GradientClipping.Scale(double.NaN, 1.0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.Scale(1.0, -1.0));
    }

    [Theory]
    [InlineData("model.embed_tokens.weight", true)]
    [InlineData("lm_head.weight", true)]
    [InlineData("model.layers.0.self_attn.q_proj.weight", true)]
    [InlineData("model.layers.3.mlp.down_proj.weight", true)]
    [InlineData("model.layers.0.self_attn.q_proj.bias", false)]
    [InlineData("model.layers.0.mlp.up_proj.bias", false)]
    [InlineData("model.layers.0.input_layernorm.weight", false)]
    [InlineData("model.layers.11.post_attention_layernorm.weight", false)]
    [InlineData("model.norm.weight", false)]
    public void DecayPolicySkipsNormsAndBiases(string name, bool decays) => Assert.Equal(decays, WeightDecayPolicy.AppliesTo(name));

    [Fact]
    public void StepForAppliesTheDecayPolicy()
    {
        var settings = new OptimizerSettings { WeightDecay = 0.1 };
        Assert.Equal(0.1f, settings.StepFor("model.layers.0.mlp.up_proj.weight", 1e-5, 3, 0.5).WeightDecay);
        var norm = settings.StepFor("model.norm.weight", 1e-5, 3, 0.5);
        Assert.Equal((0f, 3, 0.5f, 0.9f, 0.999f), (norm.WeightDecay, norm.Step, norm.GradScale, norm.Beta1, norm.Beta2));
    }

    [Fact]
    public void SettingsDefaultsAndValidation()
    {
        var d = new OptimizerSettings();
        Assert.Equal((0.9, 0.999, 1e-8, 0.0, 1.0), (d.Beta1, d.Beta2, d.Epsilon, d.WeightDecay, d.MaxGradNorm));
        d.Validate();
        Assert.Contains("beta2 1", Assert.Throws<SparkException>(() => (d with { Beta2 = 1 }).Validate()).Message);
        Assert.Contains("max gradient norm", Assert.Throws<SparkException>(() => (d with { MaxGradNorm = -1 }).Validate()).Message);
    }
}
