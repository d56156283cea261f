using Spark.Native.Backends.Cuda;
using Spark.Native.Generation;
using Spark.Native.Tensors;

namespace Spark.Native.Tests.Cuda;

/// <summary>
/// The GPU sampler (kernels/sampling.cu) against the CPU <see cref="SamplingRule"/> on the same stored (bf16) logits.
/// The two draw the same uniform per row, so they must pick the same token except where the CPU's uniform, or its top-p
/// threshold, lies within <see cref="Near"/> of a CDF boundary (the GPU sums masses in fixed point, the CPU in double;
/// <see cref="CpuTrace"/> measures that distance). Every test skips with <see cref="CudaBackend.TryCreate"/>'s reason
/// when this machine has no GPU; <see cref="SamplingKernelModelTests"/> checks the kernel's algorithm on the CPU.
/// </summary>
public sealed class CudaSamplingTests : IDisposable
{
    /// <summary>Qwen's vocabulary size: rows as long as the real ones.</summary>
    private const int V = 151_936;
    /// <summary>A mismatch is allowed only this close (as a fraction of the kept mass) to a boundary.</summary>
    internal const double Near = 1e-6;

    private readonly CudaBackend? _backend;
    private readonly string _reason;

    public CudaSamplingTests() => CudaBackend.TryCreate(out _backend, out _reason);

    public void Dispose() => _backend?.Dispose();

    private CudaBackend Backend
    {
        get
        {
            if (_backend is null) Assert.Skip(_reason);
            return _backend!;
        }
    }

    /// <summary>Uploads rows [R, v] (stored bf16) and returns the tensor and the stored values.</summary>
    private (Tensor Tensor, float[] Stored) Store(float[] values, int rows, int v)
    {
        var t = Backend.Allocate(DType.BF16, rows, v);
        Backend.Upload(t, values);
        var stored = new float[values.Length];
        Backend.Download(stored, t);
        return (t, stored);
    }

    [Fact]
    public void MatchesTheCpuRuleOnFullVocabularyRows()
    {
        float[][] rows = [.. SamplingData.Rows(V)];
        var (tensor, stored) = Store([.. rows.SelectMany(r => r)], rows.Length, V);
        using var _ = tensor;
        int draws = 0, mismatches = 0;
        foreach (var (t, k, p) in SamplingData.Settings)
        {
            var traces = new CpuTrace?[rows.Length];
            for (int r = 0; r < rows.Length; r++) traces[r] = CpuTrace.Build(stored.AsSpan(r * V, V), new SamplingRow(t, k, p, 0, 0));
            for (ulong counter = 0; counter < 24; counter++)
            {
                var settings = Enumerable.Range(0, rows.Length).Select(r => new SamplingRow(t, k, p, 1000 + (ulong)r * 7919, counter)).ToArray();
                var tokens = new int[rows.Length];
                Backend.Sample(tokens, tensor, settings);
                for (int r = 0; r < rows.Length; r++)
                {
                    var row = stored.AsSpan(r * V, V);
                    var (expected, margin) = traces[r] is { } trace ? trace.Draw(settings[r].Uniform) : (SamplingRule.Argmax(row), double.PositiveInfinity);
                    if (counter == 0) Assert.Equal(CpuTrace.Reference(row, settings[r]), expected);
                    draws++;
                    if (tokens[r] == expected) continue;
                    mismatches++;
                    Assert.True(margin < Near,
                        $"row {r} T={t} k={k} p={p} counter {counter}: GPU token {tokens[r]}, CPU {expected}, the uniform is {margin:E2} from a boundary " +
                        $"(the kernel's C# model says {SamplingKernelModel.Sample(row, settings[r])})");
                }
            }
        }
        Assert.True(mismatches <= draws / 100, $"{mismatches} of {draws} draws differ (each within {Near} of a boundary)");
    }

    [Fact]
    public void EdgeCasesMatchTheCpuRule()
    {
        foreach (var (values, row) in SamplingData.EdgeCases())
        {
            var (tensor, stored) = Store(values, 1, values.Length);
            using var _ = tensor;
            var tokens = new int[1];
            if (CpuTrace.Throws(stored, row))
            {
                Assert.Throws<InvalidOperationException>(() => Backend.Sample(tokens, tensor, [row]));
                continue;
            }
            Backend.Sample(tokens, tensor, [row]);
            Assert.Equal(CpuTrace.Reference(stored, row), tokens[0]);
        }
    }

    [Fact]
    public void UnalignedRowsAndOddVocabularies()
    {
        // v odd: rows start at any 2-byte address, so the kernel takes its scalar path
        foreach (int v in new[] { 1, 7, 1001, 4099 })
        {
            const int rows = 5;
            var values = SamplingData.Coarse(rows * v, 11);
            var (tensor, stored) = Store(values, rows, v);
            using var _ = tensor;
            var settings = Enumerable.Range(0, rows).Select(r => new SamplingRow(r == 0 ? 0f : 0.9f, r * 3, r == 4 ? 0.8f : 1f, 5, (ulong)r)).ToArray();
            var tokens = new int[rows];
            Backend.Sample(tokens, tensor, settings);
            for (int r = 0; r < rows; r++)
            {
                var row = stored.AsSpan(r * v, v);
                var trace = CpuTrace.Build(row, settings[r]);
                var (expected, margin) = trace is null ? (SamplingRule.Argmax(row), double.PositiveInfinity) : trace.Draw(settings[r].Uniform);
                Assert.True(tokens[r] == expected || margin < Near, $"v={v} row {r}: GPU {tokens[r]}, CPU {expected}");
            }
        }
    }

    /// <summary>
    /// Frequencies over 40 000 draws on a 48-token vocabulary against the filtered, renormalised probabilities computed
    /// here in double: a chi-square statistic under df + 6·√(2 df) (a false alarm is far below 1e-6).
    /// </summary>
    [Theory]
    [InlineData(1f, 0, 1f)]
    [InlineData(0.7f, 10, 1f)]
    [InlineData(1.5f, 0, 0.8f)]
    public void FrequenciesFollowTheFilteredSoftmax(float temperature, int topK, float topP)
    {
        const int v = 48, draws = 40_000;
        var logits = Enumerable.Range(0, v).Select(i => MathF.Sin(i * 1.7f) * 3f + (i % 5 == 0 ? 1.5f : 0f)).ToArray();
        var all = new float[draws * v];
        for (int d = 0; d < draws; d++) logits.CopyTo(all, d * v);
        var (tensor, stored) = Store(all, draws, v);
        using var _ = tensor;
        var tokens = new int[draws];
        Backend.Sample(tokens, tensor, [.. Enumerable.Range(0, draws).Select(d => new SamplingRow(temperature, topK, topP, 77, (ulong)d))]);

        var expected = SamplingData.FilteredProbabilities(stored.AsSpan(0, v), temperature, topK, topP);
        var counts = new double[v];
        foreach (int token in tokens) counts[token]++;
        double chi = 0;
        int df = -1;
        for (int i = 0; i < v; i++)
        {
            if (expected[i] == 0)
            {
                Assert.Equal(0, counts[i]);
                continue;
            }
            double e = expected[i] * draws;
            chi += (counts[i] - e) * (counts[i] - e) / e;
            df++;
        }
        Assert.True(chi < df + 6 * Math.Sqrt(2.0 * df), $"chi-square {chi:F1} with {df} degrees of freedom");
    }
}

/// <summary>
/// The kernel's algorithm (<see cref="SamplingKernelModel"/>, a line-by-line C# twin of kernels/sampling.cu without the
/// shared-memory windows) against the CPU rule, on this machine: the same token except within <see cref="CudaSamplingTests.Near"/>
/// of a boundary. Also checks <see cref="CpuTrace"/> (which measures that distance) against <see cref="SamplingRule"/>.
/// </summary>
public sealed class SamplingKernelModelTests
{
    [Fact]
    public void ModelMatchesTheCpuRuleOnTiedLogits()
    {
        var logits = SamplingData.Coarse(3000, 3);
        foreach (var (t, k, p) in SamplingData.Settings)
        {
            var trace = CpuTrace.Build(logits, new SamplingRow(t, k, p, 0, 0));
            for (ulong n = 0; n < 64; n++)
            {
                var row = new SamplingRow(t, k, p, 99, n);
                var (expected, margin) = trace?.Draw(row.Uniform) ?? (SamplingRule.Argmax(logits), double.PositiveInfinity);
                if (n < 4) Assert.Equal(CpuTrace.Reference(logits, row), expected);
                int model = SamplingKernelModel.Sample(logits, row);
                Assert.True(model == expected || margin < CudaSamplingTests.Near, $"T={t} k={k} p={p} n={n}: model {model}, CPU {expected}");
            }
        }
    }

    [Fact]
    public void ModelMatchesTheCpuRuleOnFullVocabularyRows()
    {
        const int v = 151_936;
        int draws = 0, mismatches = 0;
        foreach (var logits in SamplingData.Rows(v).Take(3))
            foreach (var (t, k, p) in SamplingData.Settings)
            {
                var trace = CpuTrace.Build(logits, new SamplingRow(t, k, p, 0, 0));
                for (ulong n = 0; n < 6; n++)
                {
                    var row = new SamplingRow(t, k, p, 4242, n);
                    var (expected, margin) = trace?.Draw(row.Uniform) ?? (SamplingRule.Argmax(logits), double.PositiveInfinity);
                    if (n == 0) Assert.Equal(CpuTrace.Reference(logits, row), expected);
                    int model = SamplingKernelModel.Sample(logits, row);
                    draws++;
                    if (model == expected) continue;
                    mismatches++;
                    Assert.True(margin < CudaSamplingTests.Near, $"T={t} k={k} p={p} n={n}: model {model}, CPU {expected}, margin {margin:E2}");
                }
            }
        Assert.True(mismatches <= draws / 100, $"{mismatches} of {draws}");
    }

    [Fact]
    public void ModelHandlesTheEdgeCasesAsTheCpuRule()
    {
        foreach (var (logits, row) in SamplingData.EdgeCases())
        {
            if (CpuTrace.Throws(logits, row))
            {
                Assert.Throws<InvalidOperationException>(() => SamplingKernelModel.Sample(logits, row));
                continue;
            }
            Assert.Equal(CpuTrace.Reference(logits, row), SamplingKernelModel.Sample(logits, row));
        }
    }
}

/// <summary>Test rows and settings shared by the GPU tests and the model tests.</summary>
internal static class SamplingData
{
    /// <summary>(temperature, top-k, top-p): greedy, temperature only, top-k 1 and 50, top-p 0.9 and 0.95, both.</summary>
    public static readonly (float T, int K, float P)[] Settings =
    [
        (0f, 0, 1f), (1f, 0, 1f), (0.7f, 0, 1f), (1f, 1, 1f), (1f, 50, 1f), (0.8f, 0, 0.9f), (1f, 0, 0.95f),
        (0.7f, 50, 0.9f), (1.2f, 20, 0.95f), (0.6f, 400, 0.8f),
    ];

    /// <summary>float → bf16 → float, round to nearest even (what the CUDA backend stores).</summary>
    public static float Bf16(float x)
    {
        uint u = BitConverter.SingleToUInt32Bits(x);
        if (float.IsNaN(x)) return x;
        u += 0x7fffu + ((u >> 16) & 1u);
        return BitConverter.UInt32BitsToSingle(u & 0xffff0000u);
    }

    /// <summary>
    /// Rows of v logits, bf16-exact: LLM-like (a Gaussian bulk and a few strong tokens), one with values spread over
    /// ~100 binades (the kernel needs several shared-memory windows), one of small integers (huge ties), one flat.
    /// </summary>
    public static IEnumerable<float[]> Rows(int v)
    {
        var random = new Random(1234);
        float Gaussian() => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));

        var llm = new float[v];
        for (int i = 0; i < v; i++) llm[i] = Bf16(Gaussian() * 2.5f);
        for (int j = 0; j < 40; j++) llm[random.Next(v)] = Bf16(8f + 7f * (float)random.NextDouble());
        yield return llm;

        var wide = new float[v];
        for (int i = 0; i < v; i++) wide[i] = Bf16((random.Next(2) == 0 ? -1f : 1f) * MathF.Pow(10f, -30f + 31f * (float)random.NextDouble()));
        yield return wide;

        var ties = new float[v];
        for (int i = 0; i < v; i++) ties[i] = random.Next(-6, 7);
        yield return ties;

        var flat = new float[v];
        for (int i = 0; i < v; i++) flat[i] = Bf16(0.25f * Gaussian());
        yield return flat;
    }

    /// <summary>n coarse values (multiples of 1/4 in [-8, 8)): many ties, including at the top.</summary>
    public static float[] Coarse(int n, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => random.Next(-32, 32) / 4f)];
    }

    /// <summary>Rows (bf16-exact) that hit the rule's corners: ±inf, all −inf, NaN, ±0 ties, top-p keeping one token, k ≥ candidates.</summary>
    public static IEnumerable<(float[] Logits, SamplingRow Row)> EdgeCases() =>
        RawEdgeCases().Select(e => (e.Logits.Select(Bf16).ToArray(), e.Row));

    private static IEnumerable<(float[] Logits, SamplingRow Row)> RawEdgeCases()
    {
        float inf = float.PositiveInfinity;
        float[] twoInf = [1f, inf, 3f, inf, -2f];
        foreach (var row in new SamplingRow[] { new(1f, 0, 1f, 1, 0), new(1f, 1, 1f, 1, 0), new(1f, 0, 0.5f, 1, 0), new(0f, 0, 1f, 1, 0) })
        {
            yield return (twoInf, row);
            yield return ([-inf, -inf, -inf], row);
            yield return ([0f, -0f, 0f, -1f], row with { Counter = 3 });
        }
        float[] nan = [1f, float.NaN, 2f, float.NaN];
        yield return (nan, new SamplingRow(0f, 0, 1f, 1, 0)); // greedy: the first NaN, as Argmax
        yield return (nan, new SamplingRow(1f, 0, 1f, 1, 0)); // sampled: throws
        var coarse = Coarse(500, 5);
        yield return (coarse, new SamplingRow(1f, 0, 1e-6f, 2, 0));        // top-p keeps one token
        yield return (coarse, new SamplingRow(1f, 10_000, 1f, 2, 0));      // k above the candidates: off
        yield return (coarse, new SamplingRow(1f, 500, 1f, 2, 0));         // k = V
        yield return (coarse, new SamplingRow(1e-3f, 0, 1f, 2, 0));        // only the tied maxima are candidates
        yield return (coarse, new SamplingRow(50f, 3, 0.99f, 2, 0));
        yield return ([-1e30f, 1e30f, 0f, 1e30f], new SamplingRow(1f, 0, 1f, 2, 5));
        yield return ([1e38f, 5f, -1e38f], new SamplingRow(1e37f, 0, 1f, 2, 7)); // floor = −inf after overflow
    }

    /// <summary>The renormalised probabilities of the kept tokens after temperature, top-k and top-p, in double.</summary>
    public static double[] FilteredProbabilities(ReadOnlySpan<float> logits, float temperature, int topK, float topP)
    {
        int v = logits.Length;
        var l = logits.ToArray();
        var order = Enumerable.Range(0, v).OrderByDescending(i => l[i]).ThenBy(i => i).ToArray();
        int count = topK > 0 && topK < v ? order.Count(i => l[i] >= l[order[topK - 1]]) : v;
        double max = l[order[0]];
        var p = order.Take(count).Select(i => Math.Exp((l[i] - max) / temperature)).ToArray();
        double sum = p.Sum();
        if (topP < 1f)
        {
            double c = 0;
            int kept = 0;
            while (kept < count && c < topP * sum) c += p[kept++];
            count = Math.Max(1, kept);
            sum = p.Take(count).Sum();
        }
        var result = new double[v];
        for (int i = 0; i < count; i++) result[order[i]] = p[i] / sum;
        return result;
    }
}

/// <summary>
/// <see cref="SamplingRule.Sample"/> step by step, for one row and one setting, so that many uniforms can be drawn
/// after one sort and each draw says how far the uniform was from a boundary: from the CDF steps around the chosen
/// token, and (after a top-p cut) how far p · sum was from the cumulative masses either side of the cut, both as a
/// fraction of the mass.
/// </summary>
internal sealed class CpuTrace
{
    private readonly int[] _order;
    private readonly double[] _cumulative; // sequential double sums over the kept tokens, as the CPU's draw loop
    private readonly double _cutMargin;

    private CpuTrace(int[] order, double[] cumulative, double cutMargin)
    {
        _order = order;
        _cumulative = cumulative;
        _cutMargin = cutMargin;
    }

    /// <summary>The rule itself.</summary>
    public static int Reference(ReadOnlySpan<float> logits, SamplingRow row) =>
        SamplingRule.Sample(logits, row, new float[logits.Length], new int[logits.Length]);

    public static bool Throws(ReadOnlySpan<float> logits, SamplingRow row)
    {
        try { Reference(logits, row); return false; }
        catch (InvalidOperationException) { return true; }
    }

    /// <summary>The trace of a sampled row; null for a greedy one.</summary>
    public static CpuTrace? Build(ReadOnlySpan<float> logits, SamplingRow row)
    {
        if (row.Temperature <= 0f) return null;
        var l = logits.ToArray();
        float maxLogit = l[SamplingRule.Argmax(l)];
        float floor = maxLogit - 40f * row.Temperature;
        var order = Enumerable.Range(0, l.Length).Where(i => l[i] >= floor).ToArray();
        Array.Sort(order, (a, b) => l[a] != l[b] ? l[b].CompareTo(l[a]) : a.CompareTo(b));
        int candidates = order.Length, count = candidates;
        if (row.TopK > 0 && row.TopK < candidates)
        {
            float kth = l[order[row.TopK - 1]];
            count = row.TopK;
            while (count < candidates && l[order[count]] >= kth) count++;
        }
        double invT = 1.0 / row.Temperature;
        var probs = new float[count];
        double sum = 0;
        for (int i = 0; i < count; i++)
        {
            probs[i] = (float)Math.Exp((l[order[i]] - (double)maxLogit) * invT);
            sum += probs[i];
        }
        double cutMargin = double.PositiveInfinity;
        if (row.TopP < 1f)
        {
            double threshold = row.TopP * sum, cumulative = 0, previous = 0;
            int kept = 0;
            while (kept < count && cumulative < threshold)
            {
                previous = cumulative;
                cumulative += probs[kept];
                kept++;
            }
            if (kept > 0) cutMargin = Math.Min(threshold - previous, Math.Abs(cumulative - threshold)) / sum;
            count = Math.Max(1, kept);
        }
        var acc = new double[count];
        double a = 0;
        for (int i = 0; i < count; i++) acc[i] = a += probs[i];
        return new CpuTrace(order[..count], acc, cutMargin);
    }

    /// <summary>The CPU's token for uniform u, and the distance (fraction of the mass) to the nearest boundary.</summary>
    public (int Token, double Margin) Draw(double u)
    {
        double sum = _cumulative[^1], x = u * sum;
        int i = 0;
        while (i < _cumulative.Length && !(x < _cumulative[i])) i++;
        if (i == _cumulative.Length) return (_order[^1], 0);
        double low = i == 0 ? 0 : _cumulative[i - 1];
        return (_order[i], Math.Min(_cutMargin, Math.Min(x - low, _cumulative[i] - x) / sum));
    }
}

/// <summary>
/// kernels/sampling.cu in C#, step for step, on one row (without its shared-memory windows, which only change where the
/// counts live): 16-bit order keys, per-level counts, fixed-point masses count · round(p · 2^s), top-k by counts,
/// top-p and the draw as integer thresholds, then the j-th id of the drawn level.
/// </summary>
internal static class SamplingKernelModel
{
    private const uint NanKey = 0x10000;

    private static uint Key(float x)
    {
        uint b = BitConverter.SingleToUInt32Bits(x) >> 16;
        if ((b & 0x7fff) > 0x7f80) return NanKey;
        if (b == 0x8000) b = 0;
        return (b & 0x8000) != 0 ? ~b & 0xffff : b | 0x8000;
    }

    private static float Value(uint k) => BitConverter.UInt32BitsToSingle((k >= 0x8000 ? k & 0x7fff : ~k & 0xffff) << 16);

    public static int Sample(ReadOnlySpan<float> logits, SamplingRow row)
    {
        int v = logits.Length;
        var keys = new uint[v];
        uint maxKey = 0;
        int first = 0, last = 0;
        for (int i = 0; i < v; i++)
        {
            keys[i] = Key(logits[i]);
            if (keys[i] > maxKey) { maxKey = keys[i]; first = i; }
            if (keys[i] >= maxKey) last = i;
        }
        if (!(row.Temperature > 0f)) return first;
        if (maxKey == NanKey) throw new InvalidOperationException("logits contain NaN; cannot sample");
        float maxLogit = Value(maxKey);
        if (maxKey is 0xff80 or 0x7f) return row.TopP < 1f ? first : last;

        float floor = maxLogit - 40f * row.Temperature;
        uint floorKey = 0x7f;
        while (!(Value(floorKey) >= floor)) floorKey++;
        var counts = new uint[65536];
        long candidates = 0;
        var binCount = new long[256];
        foreach (uint k in keys)
            if (k >= floorKey) { counts[k]++; candidates++; binCount[k >> 8]++; }

        uint low = floorKey;
        int hk = (int)(floorKey >> 8);
        if (row.TopK > 0 && row.TopK < candidates)
        {
            long seen = 0;
            uint k = maxKey;
            while (seen + counts[k] < row.TopK) seen += counts[k--];
            low = k;
            hk = (int)(k >> 8);
        }
        long keepable = 0;
        for (int b = hk; b < 256; b++) keepable += binCount[b];
        int shift = 63 - (64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)keepable));
        double scale = Math.ScaleB(1.0, shift), invT = 1.0 / row.Temperature;
        ulong Unit(uint k) => (ulong)Math.Round((float)Math.Exp((Value(k) - (double)maxLogit) * invT) * scale, MidpointRounding.ToEven);

        uint cutKey = 0x20000, cutCount = uint.MaxValue;
        uint Tokens(uint k) => k < low ? 0 : k == cutKey ? Math.Min(counts[k], cutCount) : counts[k];
        // the first level (descending) where the cumulative mass exceeds target: (key, mass before, unit, tokens)
        (uint Key, ulong Before, ulong Unit, uint Count) Cross(ulong target)
        {
            ulong before = 0;
            for (uint k = maxKey; k >= low; k--)
            {
                uint n = Tokens(k);
                if (n == 0) continue;
                ulong u = Unit(k);
                if (target - before < n * u) return (k, before, u, n);
                before += n * u;
            }
            return (NanKey, 0, 0, 0);
        }
        ulong total = 0;
        for (uint k = maxKey; k >= low; k--) total += Tokens(k) * (Tokens(k) == 0 ? 0 : Unit(k));

        ulong kept = total;
        if (row.TopP < 1f)
        {
            double threshold = row.TopP * (double)total;
            if (!(threshold > 0)) return first;
            ulong target = (ulong)Math.Ceiling(threshold) - 1;
            var c = Cross(target);
            if (c.Key != NanKey)
            {
                ulong keep = Math.Min((target - c.Before) / c.Unit + 1, c.Count);
                kept = c.Before + keep * c.Unit;
                cutKey = c.Key;
                cutCount = (uint)keep;
            }
        }
        ulong draw = (ulong)Math.Floor(row.Uniform * (double)kept);
        if (draw >= kept) draw = kept - 1;
        var d = Cross(draw);
        ulong index = Math.Min((draw - d.Before) / d.Unit, d.Count - 1);
        for (int i = 0; i < v; i++)
            if (keys[i] == d.Key && index-- == 0) return i;
        throw new InvalidOperationException("model: drawn level has too few tokens");
    }
}
