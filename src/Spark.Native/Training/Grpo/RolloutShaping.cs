namespace Spark.Native.Training.Grpo;

/// <summary>Reward and mask shaping applied to a rollout batch before the loss (DAPO, arXiv 2503.14476).</summary>
public static class RolloutShaping
{
    /// <summary>
    /// DAPO's soft overlong punishment (arXiv 2503.14476, §3.4, eq. 13), added to the task reward: with
    /// L_max = <paramref name="maxLength"/> and L_cache = <paramref name="cacheLength"/>, 0 when |y| ≤ L_max − L_cache,
    /// ((L_max − L_cache) − |y|) / L_cache in between (from 0 down to −1), −1 beyond L_max.
    /// </summary>
    /// <param name="length">|y|, completion tokens generated.</param>
    /// <param name="maxLength">L_max ≥ 1.</param>
    /// <param name="cacheLength">L_cache in [0, L_max]; 0 turns the linear ramp off.</param>
    public static double OverlongPenalty(int length, int maxLength, int cacheLength)
    {
        if (maxLength < 1 || cacheLength < 0 || cacheLength > maxLength)
            throw new SparkException($"overlong penalty: cache length {cacheLength} must be in [0, max length {maxLength}] and max length ≥ 1");
        if (length < 0) throw new SparkException($"overlong penalty: length {length} must be ≥ 0");
        int soft = maxLength - cacheLength;
        if (length <= soft) return 0;
        if (length <= maxLength) return (double)(soft - length) / cacheLength;
        return -1;
    }

    /// <summary>
    /// Overlong filtering (DAPO, arXiv 2503.14476, §3.4; TRL's <c>mask_truncated_completions</c>): a copy of the [B, L]
    /// mask with the rows of truncated completions (cut at the length limit before an end-of-sequence token) set to 0,
    /// so they add nothing to the loss. They still count as rows for <see cref="LossType.Grpo"/> and
    /// <see cref="LossType.DrGrpo"/>, as in TRL.
    /// </summary>
    public static double[] MaskTruncated(ReadOnlySpan<double> mask, ReadOnlySpan<bool> truncated)
    {
        if (truncated.Length == 0 || mask.Length % truncated.Length != 0)
            throw new SparkException($"mask truncated: a mask of {mask.Length} values is not [B, L] for B = {truncated.Length} completions");
        int length = mask.Length / truncated.Length;
        var masked = mask.ToArray();
        for (int i = 0; i < truncated.Length; i++)
            if (truncated[i]) masked.AsSpan(i * length, length).Clear();
        return masked;
    }
}
