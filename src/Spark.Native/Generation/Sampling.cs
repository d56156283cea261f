namespace Spark.Native.Generation;

/// <summary>
/// Sampling settings of one row at one step. <see cref="Temperature"/> ≤ 0 means greedy (argmax);
/// <see cref="TopK"/> ≤ 0 and <see cref="TopP"/> ≥ 1 switch those filters off. The random draw is
/// <see cref="CounterRng.Uniform"/>(<see cref="Seed"/>, <see cref="Counter"/>), so a run is reproducible.
/// </summary>
internal readonly record struct SamplingRow(float Temperature, int TopK, float TopP, ulong Seed, ulong Counter)
{
    /// <summary>The row's uniform draw in [0, 1): the one <see cref="SamplingRule.Sample"/> uses (and the GPU's sampler).</summary>
    public double Uniform => CounterRng.Uniform(Seed, Counter);
}

/// <summary>A counter-based random stream: the n-th draw of a seed is a pure function of (seed, n).</summary>
internal static class CounterRng
{
    /// <summary>SplitMix64 finaliser (Steele, Lea, Flood 2014) over seed and counter.</summary>
    public static ulong Next(ulong seed, ulong counter)
    {
        ulong z = seed + (counter + 1) * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        // a second round decorrelates neighbouring seeds
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A uniform double in [0, 1) with 53 random bits.</summary>
    public static double Uniform(ulong seed, ulong counter) => (Next(seed, counter) >> 11) * (1.0 / (1UL << 53));
}

/// <summary>
/// The sampling rule, as Hugging Face <c>generate</c> applies it: logits / temperature, then top-k (ties with the
/// k-th value kept), then top-p (the smallest prefix of the descending distribution whose mass reaches p; at least
/// one token), renormalise, draw by inverse CDF over the kept tokens in descending order (ties by lower id).
/// </summary>
internal static class SamplingRule
{
    public static int Argmax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
            if (logits[i] > logits[best] || (float.IsNaN(logits[i]) && !float.IsNaN(logits[best]))) best = i;
        return best;
    }

    /// <summary>Draws a token from logits [V]; <paramref name="probs"/> and <paramref name="order"/> are scratch of V elements.</summary>
    public static int Sample(ReadOnlySpan<float> logits, in SamplingRow row, Span<float> probs, Span<int> order)
    {
        if (row.Temperature <= 0f) return Argmax(logits);
        int v = logits.Length;

        // Candidates: tokens within 40 temperature-scaled nats of the best. Each other token has probability below
        // e^-40 ≈ 4e-18 of the best one's, so together (V < 2^31) they hold under 1e-8 of the mass, and a draw or the
        // top-p cut can change only when u lands in that sliver (Hugging Face's fp32 softmax rounds most of it to 0).
        float maxLogit = logits[Argmax(logits)];
        if (float.IsNaN(maxLogit)) throw new InvalidOperationException("logits contain NaN; cannot sample");
        float floor = maxLogit - 40f * row.Temperature;
        int count = 0;
        for (int i = 0; i < v; i++)
            if (logits[i] >= floor) order[count++] = i;
        int candidates = count;

        // descending logit order, ties by lower id
        var keys = probs[..candidates];
        for (int i = 0; i < candidates; i++) keys[i] = -logits[order[i]];
        keys.Sort(order[..candidates]);
        StableTies(order[..candidates], logits);

        if (row.TopK > 0 && row.TopK < candidates)
        {
            float kth = logits[order[row.TopK - 1]];
            count = row.TopK;
            while (count < candidates && logits[order[count]] >= kth) count++;
        }

        // softmax over the kept candidates (temperature applied), in descending order
        double invT = 1.0 / row.Temperature;
        double sum = 0;
        for (int i = 0; i < count; i++)
        {
            probs[i] = (float)Math.Exp((logits[order[i]] - (double)maxLogit) * invT);
            sum += probs[i]; // the stored values, so the cut and the draw below see the same numbers
        }

        if (row.TopP < 1f)
        {
            double cumulative = 0;
            int kept = 0;
            while (kept < count && cumulative < row.TopP * sum)
            {
                cumulative += probs[kept];
                kept++;
            }
            count = Math.Max(1, kept);
            sum = 0;
            for (int i = 0; i < count; i++) sum += probs[i];
        }

        double u = row.Uniform * sum;
        double acc = 0;
        for (int i = 0; i < count; i++)
        {
            acc += probs[i];
            if (u < acc) return order[i];
        }
        return order[count - 1];
    }

    // Span.Sort is unstable: put equal logits back in increasing id order so results do not depend on the sort.
    private static void StableTies(Span<int> order, ReadOnlySpan<float> logits)
    {
        int i = 0;
        while (i < order.Length)
        {
            int j = i + 1;
            while (j < order.Length && logits[order[j]] == logits[order[i]]) j++;
            if (j - i > 1) order[i..j].Sort();
            i = j;
        }
    }
}
