using static System.FormattableString;

namespace Spark.Native.Training.Grpo;

/// <summary>The result of <see cref="GrpoMath.Loss"/>: the loss, its metrics and its gradient.</summary>
/// <param name="Loss">The aggregated objective (to minimise).</param>
/// <param name="KlMean">Masked token mean of the k3 KL to the reference; null when no reference log-probs were given.</param>
/// <param name="ClipLowFraction">Fraction of completion tokens with A &lt; 0 and ratio &lt; 1 − ε_low (their gradient is 0).</param>
/// <param name="ClipHighFraction">Fraction of completion tokens with A &gt; 0 and ratio &gt; 1 + ε_high (their gradient is 0).</param>
/// <param name="GradLogp">∂loss/∂logp, [B, L] row-major, 0 outside the mask: what the fused log-prob backward takes.</param>
public sealed record GrpoLossResult(double Loss, double? KlMean, double ClipLowFraction, double ClipHighFraction, double[] GradLogp);

/// <summary>
/// The GRPO-family objective as small pure functions over flat row-major arrays, in float64. Shapes: B completions
/// (groups of G consecutive rows), L the padded completion length; per-token tensors are [B, L] with a 0/1 mask
/// (1 = completion token). Semantics follow TRL's GRPOTrainer (see golden/README.md, <c>grpo/</c>).
/// </summary>
/// <remarks>
/// Non-finite inputs: a NaN or ±∞ reward, advantage, or log-prob at a masked-in position throws a
/// <see cref="SparkException"/> naming the row and token; it is not masked, since it means a broken sampler or log-prob
/// path that silent masking would hide. Positions outside the mask are never read for their value (padding may hold
/// anything, −∞ included) and get gradient 0. A term that overflows (e.g. exp of a huge log-ratio) throws the same way.
/// </remarks>
public static class GrpoMath
{
    /// <summary>
    /// Outcome-supervised group advantages (DeepSeekMath, arXiv 2402.03300, §4.1.2): Â_i = (r_i − mean_g(r)) / (std + ε)
    /// with std the unbiased (Bessel) std of the group (<see cref="RewardScaling.Group"/>) or of the whole batch
    /// (<see cref="RewardScaling.Batch"/>), or Â_i = r_i − mean_g(r) with no division (<see cref="RewardScaling.None"/>,
    /// Dr. GRPO, arXiv 2503.20783). A group whose rewards are all equal gets exactly 0 (also when ε = 0).
    /// </summary>
    /// <param name="rewards">[B] rewards, groups of <paramref name="groupSize"/> consecutive.</param>
    /// <param name="groupSize">G ≥ 1, dividing B.</param>
    /// <param name="scaling">The divisor.</param>
    /// <param name="epsilon">ε added to the std (TRL: 1e-4).</param>
    /// <returns>[B] advantages, one per completion (the same for all of its tokens).</returns>
    public static double[] Advantages(ReadOnlySpan<double> rewards, int groupSize, RewardScaling scaling, double epsilon)
    {
        if (groupSize < 1 || rewards.Length % groupSize != 0)
            throw new SparkException(Invariant($"grpo advantages: {rewards.Length} rewards do not split into groups of {groupSize}"));
        for (int i = 0; i < rewards.Length; i++)
            if (!double.IsFinite(rewards[i])) throw new SparkException(Invariant($"grpo advantages: reward[{i}] is {rewards[i]}; rewards must be finite"));
        double batchStd = scaling == RewardScaling.Batch ? StdDev(rewards) : 0;
        var advantages = new double[rewards.Length];
        for (int g = 0; g < rewards.Length; g += groupSize)
        {
            var group = rewards.Slice(g, groupSize);
            if (AllEqual(group)) continue;
            double mean = Mean(group);
            double divisor = scaling switch
            {
                RewardScaling.Group => StdDev(group) + epsilon,
                RewardScaling.Batch => batchStd + epsilon,
                _ => 1,
            };
            for (int i = 0; i < groupSize; i++) advantages[g + i] = (group[i] - mean) / divisor;
        }
        return advantages;
    }

    /// <summary>
    /// The k3 estimator of KL(π_θ ‖ π_ref) at one sampled token (Schulman, "Approximating KL divergence", 2020; used by
    /// DeepSeekMath eq. 4): k3 = exp(ref − logp) − (ref − logp) − 1 ≥ 0, unbiased, and its derivative 1 − exp(ref − logp).
    /// </summary>
    public static (double Value, double DLogp) KlK3(double logp, double refLogp)
    {
        double d = refLogp - logp, e = Math.Exp(d);
        return (e - d - 1, 1 - e);
    }

    /// <summary>
    /// The clipped surrogate of PPO as GRPO uses it, per token (DeepSeekMath eq. 3; asymmetric clip from DAPO,
    /// arXiv 2503.14476, §3.1): loss = −min(ρ·A, clip(ρ, 1 − ε_low, 1 + ε_high)·A), and its derivative with respect to
    /// log ρ: −ρ·A where the unclipped term is the minimum, 0 where the clipped one is (A &gt; 0, ρ &gt; 1 + ε_high, or
    /// A &lt; 0, ρ &lt; 1 − ε_low; <c>Clipped</c> is then +1 or −1).
    /// </summary>
    public static (double Loss, double DLogRatio, int Clipped) ClippedSurrogate(double ratio, double advantage, double epsilonLow, double epsilonHigh)
    {
        if (advantage > 0 && ratio > 1 + epsilonHigh) return (-(1 + epsilonHigh) * advantage, 0, +1);
        if (advantage < 0 && ratio < 1 - epsilonLow) return (-(1 - epsilonLow) * advantage, 0, -1);
        return (-ratio * advantage, -ratio * advantage, 0);
    }

    /// <summary>
    /// log ρ for every token, [B, L]: logp − old_logp per token (<see cref="ImportanceSampling.Token"/>), or each
    /// sequence's masked mean of it broadcast over the row (<see cref="ImportanceSampling.Sequence"/>, GSPO,
    /// arXiv 2507.18071 eq. 7: s_i = exp(1/|o_i| Σ_t log ρ_i,t)). 0 outside the mask for the token level.
    /// </summary>
    public static double[] LogRatio(ReadOnlySpan<double> logp, ReadOnlySpan<double> oldLogp, ReadOnlySpan<double> mask, int length, ImportanceSampling level)
    {
        var logRatio = new double[logp.Length];
        for (int k = 0; k < logp.Length; k++) logRatio[k] = mask[k] != 0 ? logp[k] - oldLogp[k] : 0;
        if (level == ImportanceSampling.Token) return logRatio;
        for (int row = 0; row < logp.Length; row += length)
        {
            var r = logRatio.AsSpan(row, length);
            double mean = Sum(r) / Math.Max(1, Sum(mask.Slice(row, length)));
            r.Fill(mean);
        }
        return logRatio;
    }

    /// <summary>
    /// The backward of <see cref="LogRatio"/>: given ∂loss/∂log ρ [B, L], returns ∂loss/∂logp [B, L]. The token level is
    /// the identity on the mask; the sequence level (GSPO) spreads each row's total evenly over its completion tokens,
    /// ∂/∂logp_i,t = m_i,t / |o_i| · Σ_u ∂loss/∂log ρ_i,u.
    /// </summary>
    public static double[] LogRatioBackward(ReadOnlySpan<double> dLogRatio, ReadOnlySpan<double> mask, int length, ImportanceSampling level)
    {
        var grad = new double[dLogRatio.Length];
        for (int row = 0; row < grad.Length; row += length)
        {
            var m = mask.Slice(row, length);
            double rowGrad = level == ImportanceSampling.Sequence ? Sum(dLogRatio.Slice(row, length)) / Math.Max(1, Sum(m)) : 0;
            for (int t = 0; t < length; t++)
                grad[row + t] = m[t] == 0 ? 0 : level == ImportanceSampling.Sequence ? rowGrad : dLogRatio[row + t];
        }
        return grad;
    }

    /// <summary>
    /// Loss aggregation as token weights, loss = Σ_i,t w_i,t · ℓ_i,t (TRL GRPOTrainer conventions):
    /// <see cref="LossType.Grpo"/> w = m / (|o_i| · B) (DeepSeekMath eq. 3); <see cref="LossType.Bnpo"/> w = m / Σ m;
    /// <see cref="LossType.Dapo"/> w = m / N with N the completion tokens of the whole rollout batch (DAPO eq. 8;
    /// <paramref name="tokenNormalizer"/>, default Σ m of this batch); <see cref="LossType.DrGrpo"/>
    /// w = m / (B · max completion length) (Dr. GRPO, arXiv 2503.20783, §3.2). Counts are clamped to ≥ 1.
    /// When this batch is one micro-batch of a larger optimizer batch (gradient accumulation), <paramref name="tokenNormalizer"/>
    /// (bnpo, dapo) and <paramref name="rowNormalizer"/> (grpo, dr_grpo) give that batch's counts, so the parts' losses
    /// sum to the whole batch's loss.
    /// </summary>
    public static double[] TokenWeights(LossType lossType, ReadOnlySpan<double> mask, int length, int maxCompletionLength, double? tokenNormalizer = null,
        int? rowNormalizer = null)
    {
        int rows = rowNormalizer ?? mask.Length / length;
        double tokens = tokenNormalizer ?? Math.Max(1, Sum(mask));
        var w = new double[mask.Length];
        for (int row = 0; row < mask.Length; row += length)
        {
            double divisor = lossType switch
            {
                LossType.Grpo => Math.Max(1, Sum(mask.Slice(row, length))) * rows,
                LossType.Bnpo => tokens,
                LossType.Dapo => tokens,
                LossType.DrGrpo => (double)rows * maxCompletionLength,
                _ => throw new SparkException(Invariant($"grpo: unknown loss type {(int)lossType}; expected one of {string.Join(", ", Enum.GetNames<LossType>())}")),
            };
            for (int t = 0; t < length; t++) w[row + t] = mask[row + t] / divisor;
        }
        return w;
    }

    /// <summary>
    /// The GRPO-family objective and its analytic gradient. Per token (DeepSeekMath eq. 3, DAPO eq. 8, GSPO eq. 5):
    /// ℓ_i,t = −min(ρ·Â_i, clip(ρ, 1 − ε_low, 1 + ε_high)·Â_i) + β·k3_i,t, with ρ from <see cref="LogRatio"/> and k3 from
    /// <see cref="KlK3"/>; loss = Σ w·ℓ with w from <see cref="TokenWeights"/>.
    /// </summary>
    /// <param name="options">Loss type, importance-sampling level, β, ε_low, ε_high, max completion length.</param>
    /// <param name="advantages">[B] from <see cref="Advantages"/>.</param>
    /// <param name="logp">[B, L] log-probs of the completion tokens under π_θ at the sampling temperature.</param>
    /// <param name="oldLogp">[B, L] log-probs at sampling time (π_old)); empty when this is the only optimizer step on the
    /// rollout batch, meaning π_old = π_θ (ratio 1, gradient not 0).</param>
    /// <param name="refLogp">[B, L] log-probs under the frozen reference model; may be empty only when β = 0 (then
    /// <see cref="GrpoLossResult.KlMean"/> is null).</param>
    /// <param name="mask">[B, L], 1 = completion token, 0 = padding (or a masked truncated completion).</param>
    /// <param name="tokenNormalizer">For <see cref="LossType.Dapo"/>: the completion-token count of the whole rollout
    /// batch when this call sees one mini-batch of it (TRL's <c>num_items_in_batch</c>); for <see cref="LossType.Bnpo"/>
    /// the count of the optimizer batch when this call sees one micro-batch of it; default: this batch's count.</param>
    /// <param name="rowNormalizer">For <see cref="LossType.Grpo"/> and <see cref="LossType.DrGrpo"/>: the rows (B) of the
    /// optimizer batch when this call sees one micro-batch of it (gradient accumulation); default: this batch's rows.</param>
    public static GrpoLossResult Loss(GrpoLoss options, ReadOnlySpan<double> advantages, ReadOnlySpan<double> logp,
        ReadOnlySpan<double> oldLogp, ReadOnlySpan<double> refLogp, ReadOnlySpan<double> mask, double? tokenNormalizer = null,
        int? rowNormalizer = null)
    {
        options.Validate();
        if (oldLogp.IsEmpty) oldLogp = logp;
        bool hasRef = !refLogp.IsEmpty;
        int length = CheckInputs(options, advantages, logp, oldLogp, refLogp, mask, tokenNormalizer);
        if (rowNormalizer is { } b && b < advantages.Length)
            throw new SparkException(Invariant($"grpo loss: row normaliser {b} is below the {advantages.Length} rows of this batch"));
        var w = TokenWeights(options.LossType, mask, length, options.MaxCompletionLength, tokenNormalizer, rowNormalizer);
        var logRatio = LogRatio(logp, oldLogp, mask, length, options.ImportanceSampling);

        var dLogRatio = new double[logp.Length];
        var dLogpKl = new double[logp.Length];
        double loss = 0, klSum = 0, tokens = 0;
        int low = 0, high = 0;
        for (int k = 0; k < logp.Length; k++)
        {
            if (mask[k] == 0) continue;
            var (surrogate, dSurrogate, clipped) = ClippedSurrogate(Math.Exp(logRatio[k]), advantages[k / length], options.EpsilonLow, options.EpsilonHigh);
            double term = w[k] * surrogate;
            dLogRatio[k] = w[k] * dSurrogate;
            if (hasRef)
            {
                var (kl, dKl) = KlK3(logp[k], refLogp[k]);
                klSum += kl;
                if (options.Beta != 0)
                {
                    term += w[k] * options.Beta * kl;
                    dLogpKl[k] = w[k] * options.Beta * dKl;
                }
            }
            if (!double.IsFinite(term) || !double.IsFinite(dLogRatio[k]) || !double.IsFinite(dLogpKl[k]))
                throw new SparkException(Invariant($"grpo loss: the term of row {k / length}, token {k % length} is not finite (log-ratio {logRatio[k]}, logp {logp[k]}, old {oldLogp[k]}, ref {(hasRef ? refLogp[k] : double.NaN)}, advantage {advantages[k / length]})"));
            loss += term;
            tokens++;
            if (clipped < 0) low++;
            if (clipped > 0) high++;
        }

        var grad = LogRatioBackward(dLogRatio, mask, length, options.ImportanceSampling);
        for (int k = 0; k < grad.Length; k++) grad[k] += dLogpKl[k];
        double n = Math.Max(1, tokens);
        return new GrpoLossResult(loss, hasRef ? klSum / n : null, low / n, high / n, grad);
    }

    /// <summary>Checks shapes, the 0/1 mask and finiteness on the mask; returns L.</summary>
    private static int CheckInputs(GrpoLoss options, ReadOnlySpan<double> advantages, ReadOnlySpan<double> logp,
        ReadOnlySpan<double> oldLogp, ReadOnlySpan<double> refLogp, ReadOnlySpan<double> mask, double? tokenNormalizer)
    {
        int rows = advantages.Length;
        if (rows == 0 || logp.Length % rows != 0 || logp.Length == 0)
            throw new SparkException(Invariant($"grpo loss: logp has {logp.Length} values, not [B, L] with B = {rows} advantages and L ≥ 1"));
        int length = logp.Length / rows;
        if (oldLogp.Length != logp.Length || mask.Length != logp.Length || (!refLogp.IsEmpty && refLogp.Length != logp.Length))
            throw new SparkException(Invariant($"grpo loss: logp [{rows}, {length}] but old_logp has {oldLogp.Length}, ref_logp {refLogp.Length}, mask {mask.Length} values"));
        if (refLogp.IsEmpty && options.Beta != 0)
            throw new SparkException(Invariant($"grpo loss: beta is {options.Beta} but no reference log-probs were given"));
        if (tokenNormalizer is { } norm && !(norm > 0 && double.IsFinite(norm)))
            throw new SparkException(Invariant($"grpo loss: token normaliser {norm} must be a finite number > 0"));
        for (int i = 0; i < rows; i++)
            if (!double.IsFinite(advantages[i])) throw new SparkException(Invariant($"grpo loss: advantage[{i}] is {advantages[i]}; advantages must be finite"));
        for (int k = 0; k < logp.Length; k++)
        {
            if (mask[k] is not (0 or 1))
                throw new SparkException(Invariant($"grpo loss: mask at row {k / length}, token {k % length} is {mask[k]}; expected 0 or 1"));
            if (mask[k] == 0) continue;
            CheckFinite("logp", logp[k], k, length);
            CheckFinite("old_logp", oldLogp[k], k, length);
            if (!refLogp.IsEmpty) CheckFinite("ref_logp", refLogp[k], k, length);
        }
        return length;
    }

    private static void CheckFinite(string name, double value, int k, int length)
    {
        if (!double.IsFinite(value))
            throw new SparkException(Invariant($"grpo loss: {name} at row {k / length}, token {k % length} is {value} inside the completion mask; log-probs must be finite"));
    }

    private static double Sum(ReadOnlySpan<double> x)
    {
        double s = 0;
        foreach (double v in x) s += v;
        return s;
    }

    private static double Mean(ReadOnlySpan<double> x) => Sum(x) / x.Length;

    // unbiased (Bessel) like torch.std; a single value has std 0 (torch would give NaN)
    private static double StdDev(ReadOnlySpan<double> x)
    {
        if (x.Length < 2) return 0;
        double mean = Mean(x), sum = 0;
        foreach (double v in x) sum += (v - mean) * (v - mean);
        return Math.Sqrt(sum / (x.Length - 1));
    }

    private static bool AllEqual(ReadOnlySpan<double> x)
    {
        foreach (double v in x) if (v != x[0]) return false;
        return true;
    }
}
