using Spark.Native.Backends;

namespace Spark.Native.Training.Grpo;

/// <summary>How the per-token losses of a batch are summed into one number (TRL GRPOTrainer's <c>loss_type</c>).</summary>
public enum LossType
{
    /// <summary>Masked mean over each sequence, then mean over sequences (DeepSeekMath, arXiv 2402.03300).</summary>
    Grpo,
    /// <summary>Masked sum over the local batch / its number of completion tokens (TRL's <c>bnpo</c>).</summary>
    Bnpo,
    /// <summary>Masked sum / (B × max completion length), a constant normaliser (Dr. GRPO, arXiv 2503.20783).</summary>
    DrGrpo,
    /// <summary>Masked sum / completion tokens of the whole rollout batch (DAPO token-level loss, arXiv 2503.14476).</summary>
    Dapo,
}

/// <summary>What the group-centred reward r − mean(group) is divided by (TRL's <c>scale_rewards</c>).</summary>
public enum RewardScaling
{
    /// <summary>The unbiased std of the group, + ε (GRPO).</summary>
    Group,
    /// <summary>The unbiased std of the whole batch of rewards, + ε.</summary>
    Batch,
    /// <summary>Nothing (Dr. GRPO).</summary>
    None,
}

/// <summary>The level at which the importance ratio π_θ / π_old is taken (TRL's <c>importance_sampling_level</c>).</summary>
public enum ImportanceSampling
{
    /// <summary>One ratio per token (GRPO, DAPO).</summary>
    Token,
    /// <summary>One ratio per sequence, exp of the masked mean token log-ratio (GSPO, arXiv 2507.18071).</summary>
    Sequence,
}

/// <summary>
/// Settings of the GRPO-family objective (docs/spark-algorithm.md, variants table). The loss itself is computed by
/// <see cref="GrpoMath.Loss"/>; <see cref="MaskTruncatedCompletions"/>, <see cref="OverlongCacheLength"/> and
/// <see cref="DynamicSampling"/> are rollout-stage settings carried here so that one preset names a whole recipe.
/// </summary>
/// <param name="LossType">Aggregation of the per-token losses.</param>
/// <param name="RewardScaling">Advantage normalisation.</param>
/// <param name="ImportanceSampling">Token or sequence (GSPO) importance ratio.</param>
/// <param name="Beta">Coefficient of the k3 KL to the frozen reference model; 0 needs no reference model.</param>
/// <param name="EpsilonLow">The ratio is clipped below at 1 − ε_low.</param>
/// <param name="EpsilonHigh">The ratio is clipped above at 1 + ε_high (DAPO "clip-higher").</param>
/// <param name="MaxCompletionLength">Generation length limit; the <see cref="LossType.DrGrpo"/> normaliser.</param>
/// <param name="AdvantageEpsilon">ε added to the std before dividing (TRL: 1e-4).</param>
/// <param name="MaskTruncatedCompletions">Drop completions that hit the length limit from the loss (DAPO).</param>
/// <param name="OverlongCacheLength">L_cache of the DAPO soft overlong penalty; 0 = no penalty.</param>
/// <param name="DynamicSampling">Drop groups whose rewards are all equal and resample until the batch is full (DAPO).</param>
public sealed record GrpoLoss(
    LossType LossType,
    RewardScaling RewardScaling,
    ImportanceSampling ImportanceSampling,
    double Beta,
    double EpsilonLow,
    double EpsilonHigh,
    int MaxCompletionLength,
    double AdvantageEpsilon = 1e-4,
    bool MaskTruncatedCompletions = false,
    int OverlongCacheLength = 0,
    bool DynamicSampling = false)
{
    /// <summary>GRPO as in DeepSeekMath (arXiv 2402.03300): group std, per-sequence mean, ε = 0.2, β = 0.04.</summary>
    public static GrpoLoss Grpo(int maxCompletionLength) =>
        new(LossType.Grpo, RewardScaling.Group, ImportanceSampling.Token, 0.04, 0.2, 0.2, maxCompletionLength);

    /// <summary>Dr. GRPO (arXiv 2503.20783): no std scaling, sum / (B × max length), β = 0.</summary>
    public static GrpoLoss DrGrpo(int maxCompletionLength) =>
        new(LossType.DrGrpo, RewardScaling.None, ImportanceSampling.Token, 0, 0.2, 0.2, maxCompletionLength);

    /// <summary>
    /// DAPO (arXiv 2503.14476): ε_low 0.2, ε_high 0.28, token-level loss over the rollout batch, β = 0, truncated
    /// completions masked, soft overlong penalty with the given cache, dynamic sampling.
    /// </summary>
    public static GrpoLoss Dapo(int maxCompletionLength, int overlongCacheLength) =>
        new(LossType.Dapo, RewardScaling.Group, ImportanceSampling.Token, 0, 0.2, 0.28, maxCompletionLength,
            MaskTruncatedCompletions: true, OverlongCacheLength: overlongCacheLength, DynamicSampling: true);

    /// <summary>BNPO as TRL names it: GRPO with a token mean over the local batch.</summary>
    public static GrpoLoss Bnpo(int maxCompletionLength) =>
        new(LossType.Bnpo, RewardScaling.Group, ImportanceSampling.Token, 0.04, 0.2, 0.2, maxCompletionLength);

    /// <summary>GSPO (arXiv 2507.18071): sequence-level ratio, sequence mean, the paper's ε_low 3e-4 / ε_high 4e-4, β = 0.</summary>
    public static GrpoLoss Gspo(int maxCompletionLength) =>
        new(LossType.Grpo, RewardScaling.Group, ImportanceSampling.Sequence, 0, 3e-4, 4e-4, maxCompletionLength);

    /// <summary>Whether the loss needs log-probs from a frozen reference model (β ≠ 0); when false none is loaded.</summary>
    public bool NeedsReferenceModel => Beta != 0;

    /// <summary>The backend's enum for <see cref="RewardScaling"/> (<see cref="IBackend.GroupAdvantage"/>).</summary>
    internal AdvantageNormalization Normalization => RewardScaling switch
    {
        RewardScaling.Group => AdvantageNormalization.GroupStd,
        RewardScaling.Batch => AdvantageNormalization.BatchStd,
        _ => AdvantageNormalization.None,
    };

    /// <summary>Throws a <see cref="SparkException"/> naming the first setting out of range.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(LossType)) throw new SparkException($"grpo: unknown loss type {(int)LossType}; expected one of {string.Join(", ", Enum.GetNames<LossType>())}");
        if (!Enum.IsDefined(RewardScaling)) throw new SparkException($"grpo: unknown reward scaling {(int)RewardScaling}; expected one of {string.Join(", ", Enum.GetNames<RewardScaling>())}");
        if (!Enum.IsDefined(ImportanceSampling)) throw new SparkException($"grpo: unknown importance sampling level {(int)ImportanceSampling}; expected one of {string.Join(", ", Enum.GetNames<ImportanceSampling>())}");
        if (!(Beta >= 0) || double.IsInfinity(Beta)) throw new SparkException($"grpo: beta {Beta} must be a finite number ≥ 0");
        if (!(EpsilonLow is >= 0 and < 1)) throw new SparkException($"grpo: epsilon_low {EpsilonLow} must be in [0, 1)");
        if (!(EpsilonHigh >= 0) || double.IsInfinity(EpsilonHigh)) throw new SparkException($"grpo: epsilon_high {EpsilonHigh} must be a finite number ≥ 0");
        if (MaxCompletionLength < 1) throw new SparkException($"grpo: max completion length {MaxCompletionLength} must be ≥ 1");
        if (!(AdvantageEpsilon >= 0) || double.IsInfinity(AdvantageEpsilon)) throw new SparkException($"grpo: advantage epsilon {AdvantageEpsilon} must be a finite number ≥ 0");
        if (OverlongCacheLength < 0 || OverlongCacheLength > MaxCompletionLength)
            throw new SparkException($"grpo: overlong cache length {OverlongCacheLength} must be in [0, max completion length {MaxCompletionLength}]");
    }
}
