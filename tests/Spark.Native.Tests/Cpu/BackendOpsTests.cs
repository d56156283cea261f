using Spark.Native.Backends;
using Spark.Native.Generation;
using Spark.Native.Tests.Fixtures;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Tests.Cpu;

/// <summary>
/// Every op of a backend against a float64 reference written here with plain loops, on odd shapes, with guard rows
/// around each output (an out-of-bounds write fails the test) and NaN always a failure. A backend gets the whole
/// suite by deriving one small class (see <see cref="CpuBackendOpsTests"/>). Activations are allocated in the backend's
/// <see cref="IBackend.ActivationDType"/>, and the references are computed from the values as stored (F32: the inputs
/// themselves; BF16: the inputs rounded to bf16), so each backend is judged on its arithmetic, not on its storage.
/// </summary>
public abstract class BackendOpsTests : IDisposable
{
    private protected abstract IBackend Backend { get; }
    /// <summary>Largest accepted relative error ‖a−b‖/‖b‖ against float64; this one is for the F32 backends.</summary>
    protected virtual double Tolerance => 2e-6;

    public virtual void Dispose() => Backend.Dispose();

    private const float Sentinel = 1234.5f;

    /// <summary>Skips the test, with a reason, on a backend that does not implement the op.</summary>
    private void Require(OpKind op) =>
        Assert.SkipUnless(Backend.Supports(op), $"the {Backend.Name} backend does not implement {op}");

    /// <summary>The values as the backend stores them in <paramref name="dtype"/> (default: its activation type): an Upload/Download round trip.</summary>
    private float[] Stored(float[] values, DType? dtype = null)
    {
        using var t = Backend.Allocate(dtype ?? Backend.ActivationDType, Math.Max(1, values.Length));
        var padded = new float[t.Length];
        values.CopyTo(padded, 0);
        Backend.Upload(t, padded);
        Backend.Download(padded, t);
        return padded[..values.Length];
    }

    /// <summary><see cref="Numerics.RandomFloats"/> as stored in the activation type.</summary>
    private float[] Random(int n, int seed, float scale = 1f) => Stored(Numerics.RandomFloats(n, seed, scale));

    /// <summary>A [rows, cols] view with one guard row of sentinels on each side.</summary>
    private sealed class Guarded : IDisposable
    {
        private readonly IBackend _b;
        private readonly Tensor _owner;
        private readonly float _sentinel;
        public Guarded(IBackend b, int rows, int cols, float[]? values, DType? dtype = null)
        {
            _b = b;
            _owner = b.Allocate(dtype ?? b.ActivationDType, rows + 2, cols);
            // the sentinel as stored: 1234.5 is exact in F32 and rounds to 1232 in BF16
            var probe = new float[cols];
            Array.Fill(probe, Sentinel);
            using (var one = b.Allocate(_owner.DType, cols))
            {
                b.Upload(one, probe);
                b.Download(probe, one);
            }
            _sentinel = probe[0];
            var init = new float[(rows + 2) * cols];
            Array.Fill(init, Sentinel);
            values?.CopyTo(init, cols);
            if (values is null) Array.Fill(init, 0f, cols, rows * cols);
            b.Upload(_owner, init);
            View = _owner.Rows(1, rows);
        }
        public Tensor View { get; }
        public float[] Read()
        {
            var all = new float[_owner.Length];
            _b.Download(all, _owner);
            int cols = _owner.Shape[1];
            for (int i = 0; i < cols; i++)
            {
                Assert.True(all[i] == _sentinel, $"guard before the output was overwritten at {i}");
                Assert.True(all[^(i + 1)] == _sentinel, $"guard after the output was overwritten at {i}");
            }
            return all[cols..^cols];
        }
        public void Dispose() => _owner.Dispose();
    }

    private Guarded Input(int rows, int cols, int seed, float scale = 1f) => new(Backend, rows, cols, Numerics.RandomFloats(rows * cols, seed, scale));
    private Guarded Output(int rows, int cols) => new(Backend, rows, cols, null);

    private void AssertClose(float[] actual, double[] expected, string what)
    {
        double err = Numerics.RelativeError(actual, expected);
        Assert.True(err <= Tolerance, $"{what}: relative error {err:E2} > {Tolerance:E1}");
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 7, 5)]
    [InlineData(13, 29, 31)]
    public void Embedding(int t, int v, int h)
    {
        Require(OpKind.Embedding);
        using var table = Input(v, h, 1);
        using var output = Output(t, h);
        var ids = Enumerable.Range(0, t).Select(i => i * 7 % v).ToArray();
        Backend.Embedding(output.View, table.View, ids);
        var w = Random(v * h, 1);
        var expected = ids.SelectMany(id => w.Skip(id * h).Take(h)).Select(x => (double)x).ToArray();
        Assert.Equal(expected.Select(x => (float)x), output.Read());
        Assert.Throws<ArgumentOutOfRangeException>(() => Backend.Embedding(output.View, table.View, ids.Select(_ => v).ToArray()));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(5, 17)]
    [InlineData(3, 1031)]
    public void RmsNorm(int t, int h)
    {
        Require(OpKind.RmsNorm);
        using var x = Input(t, h, 2, 3f);
        using var w = Input(1, h, 3);
        using var y = Output(t, h);
        Backend.RmsNorm(y.View, x.View, w.View.Reshape(h), 1e-5f);
        var xs = Random(t * h, 2, 3f);
        var ws = Random(h, 3);
        var expected = new double[t * h];
        for (int r = 0; r < t; r++)
        {
            double ms = 0;
            for (int i = 0; i < h; i++) ms += (double)xs[r * h + i] * xs[r * h + i];
            double s = 1 / Math.Sqrt(ms / h + 1e-5);
            for (int i = 0; i < h; i++) expected[r * h + i] = xs[r * h + i] * s * ws[i];
        }
        AssertClose(y.Read(), expected, "RmsNorm");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(5, 17)]
    [InlineData(3, 1031)]
    public void AddRmsNorm(int t, int h)
    {
        Require(OpKind.AddRmsNorm);
        using var x = Input(t, h, 40, 3f);
        using var d = Input(t, h, 41, 2f);
        using var w = Input(1, h, 42);
        using var y = Output(t, h);
        Backend.AddRmsNorm(y.View, x.View, d.View, w.View.Reshape(h), 1e-5f);
        // the residual holds the sum as stored; the norm is of that stored sum
        var sum = Stored(Random(t * h, 40, 3f).Zip(Random(t * h, 41, 2f), (a, b) => a + b).ToArray());
        Assert.Equal(sum, x.Read());
        var ws = Random(h, 42);
        var expected = new double[t * h];
        for (int r = 0; r < t; r++)
        {
            double ms = 0;
            for (int i = 0; i < h; i++) ms += (double)sum[r * h + i] * sum[r * h + i];
            double s = 1 / Math.Sqrt(ms / h + 1e-5);
            for (int i = 0; i < h; i++) expected[r * h + i] = sum[r * h + i] * s * ws[i];
        }
        AssertClose(y.Read(), expected, "AddRmsNorm");
        Assert.ThrowsAny<ArgumentException>(() => Backend.AddRmsNorm(x.View, x.View, d.View, w.View.Reshape(h), 1e-5f));
    }

    [Theory]
    [InlineData(1, 1, 1, true)]
    [InlineData(1, 67, 33, false)]
    [InlineData(7, 13, 129, true)]
    [InlineData(37, 65, 300, true)]
    [InlineData(130, 19, 17, false)]
    public void MatMul(int m, int n, int k, bool withBias)
    {
        Require(OpKind.MatMul);
        using var x = Input(m, k, 4);
        using var w = Input(n, k, 5);
        using var b = Input(1, n, 6);
        using var y = Output(m, n);
        Backend.MatMul(y.View, x.View, w.View, withBias ? b.View.Reshape(n) : null);
        var xs = Random(m * k, 4);
        var ws = Random(n * k, 5);
        var bs = Random(n, 6);
        var expected = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = withBias ? bs[j] : 0;
                for (int p = 0; p < k; p++) s += (double)xs[i * k + p] * ws[j * k + p];
                expected[i * n + j] = s;
            }
        AssertClose(y.Read(), expected, "MatMul");
        using var wrong = Input(n, k + 1, 7);
        Assert.Throws<ArgumentException>(() => Backend.MatMul(y.View, x.View, wrong.View, null));
    }

    [Theory]
    [InlineData(1, 1, 2, 0)]
    [InlineData(5, 3, 8, 11)]
    [InlineData(4, 2, 66, 1000)]
    public void Rope(int t, int heads, int hd, int firstPosition)
    {
        Require(OpKind.Rope);
        using var x = Input(t, heads * hd, 7);
        var invFreq = Enumerable.Range(0, hd / 2).Select(j => (float)Math.Pow(10000, -2.0 * j / hd)).ToArray();
        using var inv = new Guarded(Backend, 1, hd / 2, invFreq, DType.F32); // inverse frequencies stay F32 on every backend
        var positions = Enumerable.Range(firstPosition, t).ToArray();
        Backend.Rope(x.View, positions, inv.View.Reshape(hd / 2), hd);
        var xs = Random(t * heads * hd, 7);
        var expected = new double[xs.Length];
        for (int r = 0; r < t; r++)
            for (int head = 0; head < heads; head++)
                for (int j = 0; j < hd / 2; j++)
                {
                    int i0 = r * heads * hd + head * hd + j, i1 = i0 + hd / 2;
                    double angle = positions[r] * invFreq[j]; // the fp32 product, as transformers rounds it
                    expected[i0] = xs[i0] * Math.Cos(angle) - xs[i1] * Math.Sin(angle);
                    expected[i1] = xs[i1] * Math.Cos(angle) + xs[i0] * Math.Sin(angle);
                }
        AssertClose(x.Read(), expected, "Rope");
    }

    [Theory]
    [InlineData(1, 0, 1, 1, 2)]     // single token
    [InlineData(7, 0, 6, 2, 8)]     // prefill, GQA 3:1
    [InlineData(1, 12, 4, 4, 6)]    // decode against a cache, MHA
    [InlineData(5, 9, 6, 1, 10)]    // chunk after a prefix, MQA
    public void Attention(int t, int start, int nh, int nkv, int hd)
    {
        Require(OpKind.Attention);
        int s = start + t + 3; // cache longer than needed: rows past start+t must be ignored
        using var q = Input(t, nh * hd, 8);
        using var k = Input(s, nkv * hd, 9);
        using var v = Input(s, nkv * hd, 10);
        using var o = Output(t, nh * hd);
        Backend.Attention(o.View, q.View, k.View, v.View, [new AttentionSpan(0, t, 0, start)], new AttentionHeads(nh, nkv, hd));
        var qs = Random(t * nh * hd, 8);
        var ks = Random(s * nkv * hd, 9);
        var vs = Random(s * nkv * hd, 10);
        var expected = new double[t * nh * hd];
        for (int r = 0; r < t; r++)
            for (int head = 0; head < nh; head++)
            {
                int g = head / (nh / nkv), visible = start + r + 1;
                var p = new double[visible];
                for (int j = 0; j < visible; j++)
                {
                    double dot = 0;
                    for (int d = 0; d < hd; d++) dot += (double)qs[(r * nh + head) * hd + d] * ks[(j * nkv + g) * hd + d];
                    p[j] = dot / Math.Sqrt(hd);
                }
                double max = p.Max(), sum = 0;
                for (int j = 0; j < visible; j++) sum += p[j] = Math.Exp(p[j] - max);
                for (int j = 0; j < visible; j++)
                    for (int d = 0; d < hd; d++) expected[(r * nh + head) * hd + d] += p[j] / sum * vs[(j * nkv + g) * hd + d];
            }
        AssertClose(o.Read(), expected, "Attention");
    }

    /// <summary>float64 attention of one span: query rows [qRow, qRow+len) at positions start…, keys from row kRow.</summary>
    private static void AttentionSpanRef(double[] expected, float[] qs, float[] ks, float[] vs, AttentionSpan span, int nh, int nkv, int hd)
    {
        for (int i = 0; i < span.Length; i++)
            for (int head = 0; head < nh; head++)
            {
                int g = head / (nh / nkv), visible = span.StartPosition + i + 1, r = span.QueryRow + i;
                var p = new double[visible];
                for (int j = 0; j < visible; j++)
                {
                    double dot = 0;
                    for (int d = 0; d < hd; d++) dot += (double)qs[(r * nh + head) * hd + d] * ks[((span.KeyRow + j) * nkv + g) * hd + d];
                    p[j] = dot / Math.Sqrt(hd);
                }
                double max = p.Max(), sum = 0;
                for (int j = 0; j < visible; j++) sum += p[j] = Math.Exp(p[j] - max);
                for (int j = 0; j < visible; j++)
                    for (int d = 0; d < hd; d++) expected[(r * nh + head) * hd + d] += p[j] / sum * vs[((span.KeyRow + j) * nkv + g) * hd + d];
            }
    }

    [Theory]
    [InlineData(4, 2, 8)]    // GQA 2:1
    [InlineData(3, 3, 5)]    // MHA, odd head dim
    [InlineData(6, 1, 64)]   // MQA, a tensor-core head dim
    public void AttentionOverBatchedSpans(int nh, int nkv, int hd)
    {
        Require(OpKind.Attention);
        // one call for: a training sequence of 37 rows (keys = its own rows), a prefill chunk of 5 after 11 cached
        // positions, two decode rows against different cache slots (one of them long), and a row no span covers
        AttentionSpan[] spans = [new(0, 37, 0, 0), new(37, 5, 40, 11), new(42, 1, 60, 70), new(44, 1, 140, 2)];
        int t = 45, s = 150;
        using var q = Input(t, nh * hd, 20);
        using var k = Input(s, nkv * hd, 21);
        using var v = Input(s, nkv * hd, 22);
        using var o = Output(t, nh * hd);
        Backend.Attention(o.View, q.View, k.View, v.View, spans, new AttentionHeads(nh, nkv, hd));
        var expected = new double[t * nh * hd];
        var (qs, ks, vs) = (Random(t * nh * hd, 20), Random(s * nkv * hd, 21), Random(s * nkv * hd, 22));
        foreach (var span in spans) AttentionSpanRef(expected, qs, ks, vs, span, nh, nkv, hd);
        AssertClose(o.Read(), expected, "Attention over batched spans");
        // overlapping query rows and spans past the keys are refused
        Assert.Throws<ArgumentException>(() => Backend.Attention(o.View, q.View, k.View, v.View, [new(0, 3, 0, 0), new(2, 1, 10, 0)], new AttentionHeads(nh, nkv, hd)));
        Assert.Throws<ArgumentException>(() => Backend.Attention(o.View, q.View, k.View, v.View, [new(0, 3, 140, 8)], new AttentionHeads(nh, nkv, hd)));
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 20, 13)]
    [InlineData(3, 9, 1031)]
    public void CopyRows(int t, int s, int c)
    {
        Require(OpKind.CopyRows);
        using var source = Input(t, c, 30);
        using var destination = Input(s, c, 31);
        var rows = Enumerable.Range(0, t).Select(i => (i * 7 + 3) % s).ToArray();
        Backend.CopyRows(destination.View, source.View, rows);
        var expected = Random(s * c, 31).Select(x => (double)x).ToArray();
        var src = Random(t * c, 30);
        for (int i = 0; i < t; i++)
            for (int j = 0; j < c; j++) expected[rows[i] * c + j] = src[i * c + j];
        Assert.Equal(expected.Select(x => (float)x), destination.Read());
        if (t > 1) Assert.Throws<ArgumentException>(() => Backend.CopyRows(destination.View, source.View, rows.Select(_ => 0).ToArray()));
        Assert.Throws<ArgumentOutOfRangeException>(() => Backend.CopyRows(destination.View, source.View, rows.Select(_ => s).ToArray()));
    }

    [Theory]
    [InlineData("GroupStd", 1)]
    [InlineData("GroupStd", 8)]
    [InlineData("None", 5)]
    [InlineData("BatchStd", 16)]
    public void GroupAdvantage(string normalizationName, int groupSize)
    {
        var normalization = Enum.Parse<AdvantageNormalization>(normalizationName);
        Require(OpKind.GroupAdvantage);
        int n = groupSize * 7;
        // binary rewards with some all-equal groups (std 0: advantage 0, not NaN), and a few fractional ones
        var rewards = Enumerable.Range(0, n).Select(i => i / groupSize % 3 == 0 ? 1f : (i * 37 % 11 < 4 ? 1f : (i % 5 == 0 ? 0.25f : 0f))).ToArray();
        using var r = new Guarded(Backend, 1, n, rewards, DType.F32);
        using var a = new Guarded(Backend, 1, n, null, DType.F32);
        const float eps = 1e-4f;
        Backend.GroupAdvantage(a.View.Reshape(n), r.View.Reshape(n), groupSize, normalization, eps);
        static double Std(IReadOnlyList<double> x)
        {
            if (x.Count < 2) return 0;
            double m = x.Average();
            return Math.Sqrt(x.Sum(e => (e - m) * (e - m)) / (x.Count - 1));
        }
        double batchStd = Std(rewards.Select(x => (double)x).ToArray());
        var expected = new double[n];
        for (int g = 0; g < n; g += groupSize)
        {
            var group = rewards.Skip(g).Take(groupSize).Select(x => (double)x).ToArray();
            double mean = group.Average();
            double denominator = normalization switch
            {
                AdvantageNormalization.GroupStd => Std(group) + eps,
                AdvantageNormalization.BatchStd => batchStd + eps,
                _ => 1,
            };
            for (int i = 0; i < groupSize; i++) expected[g + i] = (group[i] - mean) / denominator;
        }
        var got = a.Read();
        Assert.All(got, x => Assert.True(float.IsFinite(x)));
        double err = Numerics.RelativeError(got, expected);
        Assert.True(err <= 1e-6, $"GroupAdvantage: relative error {err:E2}");
        Assert.Throws<ArgumentException>(() => Backend.GroupAdvantage(a.View.Reshape(n), r.View.Reshape(n), groupSize + 1 == n ? 2 * n : groupSize + n, normalization, eps));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 4097)]
    [InlineData(9, 40000)]
    public void SwiGluAndAdd(int t, int i)
    {
        Require(OpKind.SwiGlu);
        Require(OpKind.Add);
        using var g = Input(t, i, 11, 4f);
        using var u = Input(t, i, 12);
        using var y = Output(t, i);
        Backend.SwiGlu(y.View, g.View, u.View);
        var gs = Random(t * i, 11, 4f);
        var us = Random(t * i, 12);
        var silu = gs.Select((x, n) => x / (1 + Math.Exp(-x)) * us[n]).ToArray();
        AssertClose(y.Read(), silu, "SwiGlu");

        using var sum = Output(t, i);
        Backend.Add(sum.View, g.View, u.View);
        AssertClose(sum.Read(), gs.Select((x, n) => (double)x + us[n]).ToArray(), "Add");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(4, 7)]
    [InlineData(3, 50001)]
    public void SoftmaxAndLogSoftmax(int rows, int cols)
    {
        Require(OpKind.Softmax);
        Require(OpKind.LogSoftmax);
        using var x = Input(rows, cols, 13, 20f);
        using var p = Output(rows, cols);
        using var lp = Output(rows, cols);
        Backend.Softmax(p.View, x.View);
        Backend.LogSoftmax(lp.View, x.View);
        var xs = Random(rows * cols, 13, 20f);
        var expectedP = new double[xs.Length];
        var expectedLp = new double[xs.Length];
        for (int r = 0; r < rows; r++)
        {
            var row = xs.AsSpan(r * cols, cols).ToArray();
            double max = row.Max(), z = row.Sum(v => Math.Exp(v - max));
            for (int c = 0; c < cols; c++)
            {
                expectedLp[r * cols + c] = row[c] - max - Math.Log(z);
                expectedP[r * cols + c] = Math.Exp(expectedLp[r * cols + c]);
            }
        }
        AssertClose(p.Read(), expectedP, "Softmax");
        AssertClose(lp.Read(), expectedLp, "LogSoftmax");
    }

    [Fact]
    public void SoftmaxAndAttentionSurviveExtremeScores()
    {
        Require(OpKind.Softmax);
        Require(OpKind.Attention);
        using var x = new Guarded(Backend, 2, 2, [100f, 0f, -200f, -300f]);
        using var p = Output(2, 2);
        Backend.Softmax(p.View, x.View);
        var got = p.Read();
        AssertClose(got, [1.0, Math.Exp(-100), 1 / (1 + Math.Exp(-100)), Math.Exp(-100) / (1 + Math.Exp(-100))], "Softmax");

        // one query, one key: whatever the score (here q·k/√2 = −200), the output is exactly the value
        using var q = new Guarded(Backend, 1, 2, [20f, 0f]);
        using var k = new Guarded(Backend, 1, 2, [-14.142136f, 0f]);
        using var v = new Guarded(Backend, 1, 2, [0.5f, -2f]);
        using var o = Output(1, 2);
        Backend.Attention(o.View, q.View, k.View, v.View, [new AttentionSpan(0, 1, 0, 0)], new AttentionHeads(1, 1, 2));
        Assert.Equal([0.5f, -2f], o.Read());
        using var big = new Guarded(Backend, 2, 2, [100f, 0f, 50f, 0f]); // scores 100·20/√2 and 50·20/√2: far past exp's range
        using var vals = new Guarded(Backend, 2, 2, [1f, 2f, 3f, 4f]);
        using var q2 = new Guarded(Backend, 1, 2, [20f, 0f]);
        Backend.Attention(o.View, q2.View, big.View, vals.View, [new AttentionSpan(0, 1, 0, 1)], new AttentionHeads(1, 1, 2));
        Assert.Equal([1f, 2f], o.Read());
    }

    [Fact]
    public void CopyMovesRowsIntoAView()
    {
        Require(OpKind.Copy);
        using var src = Input(3, 5, 14);
        using var dst = Output(8, 5);
        Backend.Copy(dst.View.Rows(2, 3), src.View);
        var got = dst.Read();
        var expected = new float[40];
        Random(15, 14).CopyTo(expected, 10);
        Assert.Equal(expected, got);
    }

    [Fact]
    public void SampleIsGreedyAtZeroTemperatureAndReproducible()
    {
        Require(OpKind.Sample);
        const int v = 1000;
        var logits = Random(3 * v, 15, 4f); // as stored: rounding may tie logits, and ties go to the lower id everywhere
        using var x = new Guarded(Backend, 3, v, logits);
        var tokens = new int[3];
        Backend.Sample(tokens, x.View, [new(0f, 0, 1f, 0, 0), new(0f, 5, 0.5f, 3, 1), new(0f, 0, 1f, 9, 9)]);
        for (int r = 0; r < 3; r++) Assert.Equal(SamplingRule.Argmax(logits.AsSpan(r * v, v)), tokens[r]);

        var rows = new SamplingRow[] { new(1f, 0, 1f, 42, 0), new(0.7f, 50, 0.9f, 42, 1), new(2f, 3, 1f, 5, 2) };
        var again = new int[3];
        Backend.Sample(tokens, x.View, rows);
        Backend.Sample(again, x.View, rows);
        Assert.Equal(tokens, again);
        // top-k 3 keeps one of the three best of row 2
        var best3 = logits.AsSpan(2 * v, v).ToArray().Select((l, i) => (l, i)).OrderByDescending(p => p.l).Take(3).Select(p => p.i);
        Assert.Contains(tokens[2], best3);
    }
}

public sealed class CpuBackendOpsTests : BackendOpsTests
{
    private protected override IBackend Backend { get; } = new Native.Backends.Cpu.CpuBackend();
}
