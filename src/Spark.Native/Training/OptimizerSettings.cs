using Spark.Native.Backends;

namespace Spark.Native.Training;

/// <summary>
/// AdamW hyper-parameters (Loshchilov and Hutter 2019) and gradient clipping. Defaults follow Hugging Face
/// <c>TrainingArguments</c> (β1 0.9, β2 0.999, ε 1e-8, weight decay 0, max_grad_norm 1); the learning rate is the
/// peak of the schedule.
/// </summary>
public sealed record OptimizerSettings
{
    /// <summary>Peak learning rate (default 1e-6, TRL <c>GRPOConfig</c>'s).</summary>
    public double LearningRate { get; init; } = 1e-6;
    /// <summary>Decay of the first moment.</summary>
    public double Beta1 { get; init; } = 0.9;
    /// <summary>Decay of the second moment.</summary>
    public double Beta2 { get; init; } = 0.999;
    /// <summary>Added to the square root of the second moment.</summary>
    public double Epsilon { get; init; } = 1e-8;
    /// <summary>Decoupled weight decay, applied to parameters <see cref="WeightDecayPolicy.AppliesTo"/> selects.</summary>
    public double WeightDecay { get; init; }
    /// <summary>Clip the global gradient norm to this value; 0 turns clipping off.</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>Throws a <see cref="SparkException"/> naming the first setting out of range.</summary>
    public void Validate()
    {
        static void Check(bool ok, string problem)
        {
            if (!ok) throw new SparkException($"optimizer settings: {problem}");
        }
        Check(LearningRate >= 0 && double.IsFinite(LearningRate), $"learning rate {LearningRate} must be a finite number ≥ 0");
        Check(Beta1 is >= 0 and < 1, $"beta1 {Beta1} must be in [0, 1)");
        Check(Beta2 is >= 0 and < 1, $"beta2 {Beta2} must be in [0, 1)");
        Check(Epsilon > 0 && double.IsFinite(Epsilon), $"epsilon {Epsilon} must be a finite number > 0");
        Check(WeightDecay >= 0 && double.IsFinite(WeightDecay), $"weight decay {WeightDecay} must be a finite number ≥ 0");
        Check(MaxGradNorm >= 0 && double.IsFinite(MaxGradNorm), $"max gradient norm {MaxGradNorm} must be a finite number ≥ 0 (0 = off)");
    }

    /// <summary>
    /// The AdamW op's arguments for parameter <paramref name="hfName"/> at 1-based <paramref name="step"/>: weight decay
    /// only where <see cref="WeightDecayPolicy.AppliesTo"/> says so.
    /// </summary>
    internal AdamWStep StepFor(string hfName, double learningRate, int step, double gradScale) =>
        new((float)learningRate, (float)Beta1, (float)Beta2, (float)Epsilon,
            WeightDecayPolicy.AppliesTo(hfName) ? (float)WeightDecay : 0f, step, (float)gradScale);
}

/// <summary>Which parameters get weight decay.</summary>
public static class WeightDecayPolicy
{
    /// <summary>
    /// False for norm weights (names ending in <c>norm.weight</c>: <c>input_layernorm</c>,
    /// <c>post_attention_layernorm</c>, <c>model.norm</c>) and biases (<c>.bias</c>), true elsewhere, as Hugging Face
    /// <c>Trainer.get_decay_parameter_names</c> excludes LayerNorm/RMSNorm modules and "bias" parameters.
    /// Embeddings (and the LM head) are decayed, as there.
    /// </summary>
    public static bool AppliesTo(string hfName)
    {
        ArgumentNullException.ThrowIfNull(hfName);
        return !(hfName.EndsWith("norm.weight", StringComparison.Ordinal) || hfName.EndsWith(".bias", StringComparison.Ordinal));
    }
}

/// <summary>Gradient clipping by global norm.</summary>
public static class GradientClipping
{
    /// <summary>
    /// The factor to multiply every gradient by, given Σ g² over all parameters: min(1, maxNorm / (‖g‖ + 1e-6)), as
    /// PyTorch <c>torch.nn.utils.clip_grad_norm_</c> computes <c>clip_coef_clamped</c>. Returns 1 when
    /// <paramref name="maxNorm"/> is 0 (clipping off). A non-finite norm gives 0 (infinite) or NaN: check
    /// <see cref="double.IsFinite"/> on the norm and skip the step, as an AMP grad scaler would.
    /// </summary>
    public static double Scale(double globalNormSquared, double maxNorm)
    {
        if (maxNorm < 0 || double.IsNaN(maxNorm)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "must be ≥ 0 (0 = off)");
        if (globalNormSquared < 0) throw new ArgumentOutOfRangeException(nameof(globalNormSquared), globalNormSquared, "a sum of squares is ≥ 0");
        if (maxNorm == 0) return 1.0;
        double coefficient = maxNorm / (Math.Sqrt(globalNormSquared) + 1e-6);
        return double.IsNaN(coefficient) ? double.NaN : Math.Min(1.0, coefficient);
    }
}
