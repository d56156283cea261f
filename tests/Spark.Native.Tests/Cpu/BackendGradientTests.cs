using Spark.Native.Backends;
using Spark.Native.Tests.Fixtures;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Tests.Cpu;

// Dimension legend: T rows, H hidden, I intermediate, V vocabulary, S cached positions, NH/NKV heads, HD head dim.

/// <summary>
/// The training ops of a backend against float64 references written here with plain loops. For each backward op,
/// L = Σ R ⊙ op(inputs) with a random R; the backend's gradients are compared with central finite differences of L
/// computed in float64 on the same inputs. F32 finite differences would be too noisy, so the forward is
/// re-implemented here instead of calling the backend's. Every gradient buffer starts with random values, which
/// checks that backward ops add to it rather than overwrite it. A backend gets the suite by deriving one small class.
/// Element types follow <see cref="IBackend"/>'s rules: activations, weights and activation gradients in the backend's
/// <see cref="IBackend.ActivationDType"/> (written <c>Act</c> below), parameter gradients, moments, master weights and
/// losses in F32. References are computed from the values as stored (an upload/download round trip: the inputs
/// themselves in F32, rounded in BF16), and a prefilled gradient's starting values are read back the same way, so a
/// backend is judged on its arithmetic, not on its storage. An op the backend does not implement skips its test.
/// </summary>
public abstract class BackendGradientTests : IDisposable
{
    private protected abstract IBackend Backend { get; }
    /// <summary>Largest relative error ‖a−b‖/‖b‖ of a gradient against the float64 finite difference (F32 backends).</summary>
    protected virtual double Tolerance => 2e-5;

    private const double Step = 1e-5; // central differences in float64: truncation ~Step², rounding ~1e-16/Step
    private readonly List<Tensor> _tensors = [];

    public virtual void Dispose()
    {
        foreach (var t in _tensors) t.Dispose();
        Backend.Dispose();
    }

    /// <summary>The backend's activation type: activations, weights and activation gradients.</summary>
    private protected DType Act => Backend.ActivationDType;

    /// <summary>Skips the test, with a reason, on a backend that does not implement the op.</summary>
    private protected void Require(OpKind op) =>
        Assert.SkipUnless(Backend.Supports(op), $"the {Backend.Name} backend does not implement {op}");

    private protected Tensor Make(DType dtype, float[] values, params int[] shape)
    {
        var t = Backend.Allocate(dtype, shape);
        Backend.Upload(t, values);
        _tensors.Add(t);
        return t;
    }

    private protected Tensor Random(DType dtype, int seed, params int[] shape) => Make(dtype, Numerics.RandomFloats(Length(shape), seed), shape);

    /// <summary>The values as the backend stores them in <paramref name="dtype"/>: an upload/download round trip.</summary>
    private float[] Stored(DType dtype, float[] values) => Read(Make(dtype, values, values.Length));

    private protected float[] Read(Tensor t)
    {
        var a = new float[t.Length];
        Backend.Download(a, t);
        return a;
    }

    private static int Length(int[] shape) => shape.Aggregate(1, (a, b) => a * b);
    private static double[] D(float[] a) => a.Select(x => (double)x).ToArray();
    private static double Dot(double[] a, double[] b) => a.Zip(b, (x, y) => x * y).Sum();

    /// <summary>∂loss/∂x by central differences, perturbing each element of x (which loss reads) in turn.</summary>
    private static double[] Numeric(double[] x, Func<double> loss)
    {
        var g = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double keep = x[i];
            x[i] = keep + Step;
            double up = loss();
            x[i] = keep - Step;
            double down = loss();
            x[i] = keep;
            g[i] = (up - down) / (2 * Step);
        }
        return g;
    }

    /// <summary>The gradient buffer minus its random starting values must match the expected gradient.</summary>
    private void AssertGradient(Tensor grad, Tensor before, double[] expected, string what, double? tolerance = null)
    {
        var actual = Read(grad);
        var start = Read(before);
        var delta = new double[actual.Length];
        for (int i = 0; i < actual.Length; i++)
        {
            Assert.False(float.IsNaN(actual[i]), $"{what}: NaN at {i}");
            delta[i] = actual[i] - (double)start[i];
        }
        double err = RelativeError(delta, expected);
        Assert.True(err <= (tolerance ?? Tolerance), $"{what}: relative error {err:E2} > {tolerance ?? Tolerance:E1}");
    }

    private static double RelativeError(double[] actual, double[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff = 0, norm = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            diff += (actual[i] - expected[i]) * (actual[i] - expected[i]);
            norm += expected[i] * expected[i];
        }
        return Math.Sqrt(diff / Math.Max(norm, 1e-300));
    }

    /// <summary>A gradient buffer with random starting values, and a copy of them (both rounded alike when stored).</summary>
    private (Tensor Grad, Tensor Before) Prefilled(DType dtype, int seed, params int[] shape)
    {
        var values = Numerics.RandomFloats(Length(shape), seed, 0.5f);
        return (Make(dtype, values, shape), Make(dtype, values, shape));
    }

    // ---- float64 forwards

    private static double[] RmsNormRef(double[] x, double[] w, int t, int h, double eps)
    {
        var y = new double[t * h];
        for (int r = 0; r < t; r++)
        {
            double ms = 0;
            for (int i = 0; i < h; i++) ms += x[r * h + i] * x[r * h + i];
            double s = 1 / Math.Sqrt(ms / h + eps);
            for (int i = 0; i < h; i++) y[r * h + i] = x[r * h + i] * s * w[i];
        }
        return y;
    }

    private static double[] MatMulRef(double[] x, double[] w, double[]? b, int m, int n, int k)
    {
        var y = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = b is null ? 0 : b[j];
                for (int p = 0; p < k; p++) s += x[i * k + p] * w[j * k + p];
                y[i * n + j] = s;
            }
        return y;
    }

    private static double[] RopeRef(double[] x, int[] positions, float[] invFreq, int width, int hd)
    {
        var y = (double[])x.Clone();
        int half = hd / 2;
        for (int t = 0; t < positions.Length; t++)
            for (int head = 0; head < width; head += hd)
                for (int j = 0; j < half; j++)
                {
                    float angle = positions[t] * invFreq[j]; // the forward's fp32 angle
                    double c = Math.Cos(angle), s = Math.Sin(angle);
                    int i = t * width + head + j;
                    y[i] = x[i] * c - x[i + half] * s;
                    y[i + half] = x[i + half] * c + x[i] * s;
                }
        return y;
    }

    private static double[] AttentionRef(double[] q, double[] k, double[] v, int t, int start, AttentionHeads heads)
    {
        int hd = heads.HeadDim, qw = heads.QueryWidth, kvw = heads.KeyValueWidth;
        var o = new double[t * qw];
        var p = new double[start + t];
        for (int r = 0; r < t; r++)
            for (int head = 0; head < heads.QueryHeads; head++)
            {
                int kvHead = head / heads.GroupSize, visible = start + r + 1;
                for (int s = 0; s < visible; s++)
                {
                    double dot = 0;
                    for (int d = 0; d < hd; d++) dot += q[r * qw + head * hd + d] * k[s * kvw + kvHead * hd + d];
                    p[s] = dot / Math.Sqrt(hd);
                }
                double max = p.Take(visible).Max(), sum = 0;
                for (int s = 0; s < visible; s++) sum += p[s] = Math.Exp(p[s] - max);
                for (int s = 0; s < visible; s++)
                    for (int d = 0; d < hd; d++) o[r * qw + head * hd + d] += p[s] / sum * v[s * kvw + kvHead * hd + d];
            }
        return o;
    }

    private static double[] SwiGluRef(double[] g, double[] u) =>
        g.Select((x, i) => x / (1 + Math.Exp(-x)) * u[i]).ToArray();

    private static double[] CrossEntropyRef(double[] logits, int[] targets, int v) =>
        targets.Select((target, t) =>
        {
            if (target < 0) return 0.0;
            var row = logits.AsSpan(t * v, v).ToArray();
            double max = row.Max();
            return max + Math.Log(row.Sum(x => Math.Exp(x - max))) - row[target];
        }).ToArray();

    // ---- gradients against finite differences

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 5, 3)]
    [InlineData(13, 11, 9)]
    public void EmbeddingBackward(int t, int v, int h)
    {
        Require(OpKind.EmbeddingBackward);
        var ids = Enumerable.Range(0, t).Select(i => i * 3 % v).ToArray(); // repeats when t > v
        var dy = Random(Act, 1, t, h);
        var r = D(Read(dy));
        var table = D(Numerics.RandomFloats(v * h, 2));
        var expected = Numeric(table, () => Dot(r, ids.SelectMany(id => table.Skip(id * h).Take(h)).ToArray()));
        var (grad, before) = Prefilled(DType.F32, 3, v, h);
        Backend.EmbeddingBackward(grad, dy, ids);
        AssertGradient(grad, before, expected, "EmbeddingBackward");
        Assert.Throws<ArgumentOutOfRangeException>(() => Backend.EmbeddingBackward(grad, dy, ids.Select(_ => v).ToArray()));
    }

    [Theory]
    [InlineData(1, 3)] // not H = 1: there y ≈ ±w whatever x, and the input gradient (~eps) is all F32 cancellation
    [InlineData(5, 17)]
    [InlineData(3, 67)]
    public void RmsNormBackward(int t, int h)
    {
        Require(OpKind.RmsNormBackward);
        const float eps = 1e-5f;
        var x = Random(Act, 10, t, h);
        var w = Random(Act, 11, h);
        var dy = Random(Act, 12, t, h);
        double[] xd = D(Read(x)), wd = D(Read(w)), r = D(Read(dy));
        double L() => Dot(r, RmsNormRef(xd, wd, t, h, eps));
        var (dx, dxBefore) = Prefilled(Act, 13, t, h);
        var (dw, dwBefore) = Prefilled(DType.F32, 14, h);
        Backend.RmsNormBackward(dx, dw, dy, x, w, eps);
        AssertGradient(dx, dxBefore, Numeric(xd, L), "RmsNormBackward input");
        AssertGradient(dw, dwBefore, Numeric(wd, L), "RmsNormBackward weight");
    }

    [Theory]
    [InlineData(1, 1, 1, true)]
    [InlineData(1, 9, 5, false)]
    [InlineData(7, 13, 11, true)]
    [InlineData(17, 5, 23, true)]
    public void MatMulBackward(int m, int n, int k, bool withBias)
    {
        Require(OpKind.MatMulBackward);
        var x = Random(Act, 20, m, k);
        var w = Random(Act, 21, n, k);
        var b = Random(Act, 22, n);
        var dy = Random(Act, 23, m, n);
        double[] xd = D(Read(x)), wd = D(Read(w)), bd = D(Read(b)), r = D(Read(dy));
        double L() => Dot(r, MatMulRef(xd, wd, withBias ? bd : null, m, n, k));
        var (dx, dxBefore) = Prefilled(Act, 24, m, k);
        var (dw, dwBefore) = Prefilled(DType.F32, 25, n, k);
        var (db, dbBefore) = Prefilled(DType.F32, 26, n);
        Backend.MatMulBackward(dx, dw, withBias ? db : null, dy, x, w);
        AssertGradient(dx, dxBefore, Numeric(xd, L), "MatMulBackward input");
        AssertGradient(dw, dwBefore, Numeric(wd, L), "MatMulBackward weight");
        AssertGradient(db, dbBefore, withBias ? Numeric(bd, L) : new double[n], "MatMulBackward bias");

        // without an input gradient only the weight gradient moves (here: by the same amount again)
        Backend.MatMulBackward(null, dw, null, dy, x, w);
        AssertGradient(dw, dwBefore, Numeric(wd, L).Select(g => 2 * g).ToArray(), "MatMulBackward weight, twice");
        Assert.Throws<ArgumentException>(() => Backend.MatMulBackward(dx, Random(DType.F32, 27, n, k + 1), null, dy, x, w));
    }

    [Theory]
    [InlineData(1, 1, 2, 0)]
    [InlineData(5, 3, 8, 11)]
    [InlineData(3, 2, 10, 1000)]
    public void RopeBackward(int t, int heads, int hd, int firstPosition)
    {
        Require(OpKind.RopeBackward);
        int width = heads * hd;
        var invFreq = Enumerable.Range(0, hd / 2).Select(j => (float)Math.Pow(10000, -2.0 * j / hd)).ToArray();
        var positions = Enumerable.Range(0, t).Select(i => firstPosition + 3 * i).ToArray();
        // RopeBackward works in place: ∂L/∂rope(x) = R becomes ∂L/∂x
        var grad = Random(Act, 30, t, width);
        var r = D(Read(grad));
        var xd = D(Numerics.RandomFloats(t * width, 31));
        var expected = Numeric(xd, () => Dot(r, RopeRef(xd, positions, invFreq, width, hd)));
        Backend.RopeBackward(grad, positions, Make(DType.F32, invFreq, hd / 2), hd);
        AssertGradient(grad, Make(Act, new float[t * width], t, width), expected, "RopeBackward");
    }

    [Theory]
    [InlineData(1, 1, 1, 4, 0, 1)]     // a single token
    [InlineData(3, 6, 2, 4, 5, 10)]    // GQA 6/2, new tokens after 5 cached ones, cache longer than used
    [InlineData(1, 4, 4, 6, 7, 8)]     // T = 1 decoding step at position 7
    [InlineData(5, 3, 1, 5, 0, 5)]     // odd head dim, one kv head for three query heads
    public void AttentionBackward(int t, int nh, int nkv, int hd, int start, int cacheRows)
    {
        Require(OpKind.AttentionBackward);
        var heads = new AttentionHeads(nh, nkv, hd);
        var q = Random(Act, 40, t, heads.QueryWidth);
        var k = Random(Act, 41, cacheRows, heads.KeyValueWidth);
        var v = Random(Act, 42, cacheRows, heads.KeyValueWidth);
        var dy = Random(Act, 43, t, heads.QueryWidth);
        double[] qd = D(Read(q)), kd = D(Read(k)), vd = D(Read(v)), r = D(Read(dy));
        double L() => Dot(r, AttentionRef(qd, kd, vd, t, start, heads));
        var (dq, dqBefore) = Prefilled(Act, 44, t, heads.QueryWidth);
        var (dk, dkBefore) = Prefilled(Act, 45, cacheRows, heads.KeyValueWidth);
        var (dv, dvBefore) = Prefilled(Act, 46, cacheRows, heads.KeyValueWidth);
        Backend.AttentionBackward(dq, dk, dv, dy, q, k, v, [new AttentionSpan(0, t, 0, start)], heads);
        AssertGradient(dq, dqBefore, Numeric(qd, L), "AttentionBackward query");
        AssertGradient(dk, dkBefore, Numeric(kd, L), "AttentionBackward keys");
        AssertGradient(dv, dvBefore, Numeric(vd, L), "AttentionBackward values");
        // rows past start + T are untouched
        int used = (start + t) * heads.KeyValueWidth;
        Assert.Equal(Read(dkBefore)[used..], Read(dk)[used..]);
        Assert.Equal(Read(dvBefore)[used..], Read(dv)[used..]);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 17)]
    [InlineData(7, 33)]
    public void SwiGluBackward(int t, int i)
    {
        Require(OpKind.SwiGluBackward);
        var g = Make(Act, Numerics.RandomFloats(t * i, 50, 4f), t, i);
        var u = Random(Act, 51, t, i);
        var dy = Random(Act, 52, t, i);
        double[] gd = D(Read(g)), ud = D(Read(u)), r = D(Read(dy));
        double L() => Dot(r, SwiGluRef(gd, ud));
        var (dg, dgBefore) = Prefilled(Act, 53, t, i);
        var (du, duBefore) = Prefilled(Act, 54, t, i);
        Backend.SwiGluBackward(dg, du, dy, g, u);
        AssertGradient(dg, dgBefore, Numeric(gd, L), "SwiGluBackward gate");
        AssertGradient(du, duBefore, Numeric(ud, L), "SwiGluBackward up");
    }

    [Theory]
    [InlineData(1, 1, 1f)]
    [InlineData(4, 7, 0.25f)]
    [InlineData(5, 37, 3f)]
    public void CrossEntropy(int t, int v, float gradScale)
    {
        Require(OpKind.CrossEntropy);
        var targets = Enumerable.Range(0, t).Select(i => i == 1 ? -1 : i * 5 % v).ToArray(); // row 1 is ignored
        var logits = Make(Act, Numerics.RandomFloats(t * v, 60, 5f), t, v);
        var losses = Make(DType.F32, new float[t], t);
        var grad = Random(Act, 61, t, v); // overwritten, not accumulated
        Backend.CrossEntropy(losses, grad, logits, targets, gradScale);

        var ld = D(Read(logits));
        var expectedLoss = CrossEntropyRef(ld, targets, v);
        Assert.True(RelativeError(D(Read(losses)), expectedLoss) <= Tolerance, "CrossEntropy loss");
        var expected = Numeric(ld, () => gradScale * CrossEntropyRef(ld, targets, v).Sum());
        AssertGradient(grad, Make(Act, new float[t * v], t, v), expected, "CrossEntropy gradient");
        if (t > 1)
        {
            Assert.Equal(0f, Read(losses)[1]);
            Assert.All(Read(grad)[v..(2 * v)], g => Assert.Equal(0f, g));
        }

        // the gradient may overwrite the logits in place, with the same result
        var losses2 = Make(DType.F32, new float[t], t);
        Backend.CrossEntropy(losses2, logits, logits, targets, gradScale);
        Assert.Equal(Read(grad), Read(logits));
        Assert.Equal(Read(losses), Read(losses2));
    }

    [Fact]
    public void CrossEntropyRejectsTargetsOutsideTheVocabulary()
    {
        Require(OpKind.CrossEntropy);
        var logits = Random(Act, 62, 3, 5);
        foreach (int bad in new[] { 5, -2 })
        {
            var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Backend.CrossEntropy(Random(DType.F32, 63, 3), Random(Act, 64, 3, 5), logits, [0, -1, bad], 1f));
            Assert.Contains("row 2", ex.Message);
            Assert.Contains(bad.ToString(System.Globalization.CultureInfo.InvariantCulture), ex.Message);
        }
    }

    // ---- optimizer and utilities

    /// <summary>float64 AdamW on p, m, v (the reference of every AdamW test).</summary>
    private static void AdamWRef(double[] p, double[] m, double[] v, float[] g, AdamWStep hp)
    {
        double b1 = hp.Beta1, b2 = hp.Beta2;
        for (int i = 0; i < p.Length; i++)
        {
            double gi = (double)g[i] * hp.GradScale;
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            double mHat = m[i] / (1 - Math.Pow(b1, hp.Step)), vHat = v[i] / (1 - Math.Pow(b2, hp.Step));
            p[i] -= hp.LearningRate * (mHat / (Math.Sqrt(vHat) + hp.Epsilon) + hp.WeightDecay * p[i]);
        }
    }

    [Theory]
    [InlineData(0f, 1f)]
    [InlineData(0.1f, 0.5f)]
    public void AdamW(float weightDecay, float gradScale)
    {
        Require(OpKind.AdamW);
        // F32 parameters without a master copy: the plain update, on every backend
        const int n = 37, steps = 4;
        var p = Random(DType.F32, 70, n);
        var m = Make(DType.F32, new float[n], n);
        var v = Make(DType.F32, new float[n], n);
        var pd = D(Read(p));
        var md = new double[n];
        var vd = new double[n];
        for (int step = 1; step <= steps; step++)
        {
            var g = Numerics.RandomFloats(n, 70 + step, 2f);
            var hp = new AdamWStep(1e-2f, 0.9f, 0.95f, 1e-8f, weightDecay, step, gradScale);
            Backend.AdamW(p, null, Make(DType.F32, g, n), m, v, hp);
            AdamWRef(pd, md, vd, g, hp);
        }
        Assert.True(RelativeError(D(Read(p)), pd) <= 1e-6, "AdamW parameters");
        Assert.True(RelativeError(D(Read(m)), md) <= 1e-6, "AdamW first moment");
        Assert.True(RelativeError(D(Read(v)), vd) <= 1e-6, "AdamW second moment");
        Assert.Throws<ArgumentOutOfRangeException>(() => Backend.AdamW(p, null, p, m, v, new AdamWStep(1e-2f, 0.9f, 0.95f, 1e-8f, 0f, 0, 1f)));
    }

    [Fact]
    public void AdamWWithAMasterCopy()
    {
        Require(OpKind.AdamW);
        // parameters in the activation type (BF16 on CUDA) with an F32 master: the update runs on the master in fp32,
        // and the parameters receive it rounded to their type (nearest even), exactly
        const int n = 300, steps = 4;
        var start = Numerics.RandomFloats(n, 75);
        var master = Make(DType.F32, start, n);
        var p = Make(Act, start, n);
        var m = Make(DType.F32, new float[n], n);
        var v = Make(DType.F32, new float[n], n);
        var pd = D(start);
        var md = new double[n];
        var vd = new double[n];
        for (int step = 1; step <= steps; step++)
        {
            var g = Numerics.RandomFloats(n, 75 + step, 2f);
            var hp = new AdamWStep(1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f);
            Backend.AdamW(p, master, Make(DType.F32, g, n), m, v, hp);
            AdamWRef(pd, md, vd, g, hp);
        }
        var masterValues = Read(master);
        Assert.True(RelativeError(D(masterValues), pd) <= 1e-6, "AdamW master");
        Assert.True(RelativeError(D(Read(m)), md) <= 1e-6, "AdamW first moment");
        Assert.True(RelativeError(D(Read(v)), vd) <= 1e-6, "AdamW second moment");
        Assert.Equal(Stored(Act, masterValues), Read(p));
    }

    [Fact]
    public void AdamWRoundsBF16ParametersStochasticallyWithoutAMaster()
    {
        Require(OpKind.AdamW);
        Assert.SkipUnless(Act == DType.BF16, $"the {Backend.Name} backend keeps parameters in {Act}: no stochastic rounding");
        // one step of updates smaller than a bf16 ulp: round-to-nearest would lose most of them; stochastic rounding
        // must land on one of the two bf16 neighbours of the exact update, and be right on average
        const int n = 1 << 16;
        var rng = new Random(77);
        var start = Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 1.5 + 0.5) * (rng.Next(2) * 2 - 1))).ToArray();
        // positive gradients: every update goes down, so round-to-nearest (which drops them) would show as a bias
        var g = Numerics.RandomFloats(n, 78).Select(x => 2f + x).ToArray();
        var hp = new AdamWStep(2e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1, 1f, Seed: 12345);
        var p = Make(DType.BF16, start, n);
        var stored = Read(p);
        var m = Make(DType.F32, new float[n], n);
        var v = Make(DType.F32, new float[n], n);
        Backend.AdamW(p, null, Make(DType.F32, g, n), m, v, hp);
        var exact = D(stored);
        var md = new double[n];
        var vd = new double[n];
        AdamWRef(exact, md, vd, g, hp);
        var got = Read(p);
        Assert.True(RelativeError(D(Read(m)), md) <= 1e-6, "AdamW first moment");
        Assert.True(RelativeError(D(Read(v)), vd) <= 1e-6, "AdamW second moment");
        double bias = 0, nearestBias = 0;
        int moved = 0;
        for (int i = 0; i < n; i++)
        {
            double ulp = Math.ScaleB(1, Math.ILogB(exact[i]) - 7); // bf16: 8 significant bits
            double error = got[i] - exact[i];
            Assert.True(Math.Abs(error) <= ulp * (1 + 1e-4), $"element {i}: {got[i]} is more than one bf16 ulp ({ulp}) from the exact update {exact[i]}");
            bias += error / ulp;
            nearestBias += (NearestBF16(exact[i]) - exact[i]) / ulp;
            if (got[i] != stored[i]) moved++;
        }
        bias /= n;
        nearestBias /= n;
        // each error / ulp has mean 0 and variance ≤ 1/4 when unbiased: the mean of 2^16 has a standard deviation ≤ 0.002
        Assert.True(Math.Abs(bias) < 0.02, $"stochastic rounding is biased: mean error {bias:F4} ulp (round to nearest: {nearestBias:F4})");
        Assert.True(moved > n / 20, $"only {moved} of {n} parameters moved");

        // reproducible: the same seed and step give the same bits
        var p2 = Make(DType.BF16, start, n);
        Backend.AdamW(p2, null, Make(DType.F32, g, n), Make(DType.F32, new float[n], n), Make(DType.F32, new float[n], n), hp);
        Assert.Equal(got, Read(p2));
    }

    /// <summary>x rounded to bf16, nearest even (finite x).</summary>
    private static double NearestBF16(double x)
    {
        uint u = BitConverter.SingleToUInt32Bits((float)x);
        u += 0x7fffu + ((u >> 16) & 1u);
        return BitConverter.UInt32BitsToSingle(u & 0xffff0000u);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FillAndSumOfSquares(bool activationType)
    {
        Require(OpKind.Fill);
        Require(OpKind.SumOfSquares);
        var dtype = activationType ? Act : DType.F32;
        const int n = 100_003; // several chunks and a ragged end
        var x = Make(dtype, Numerics.RandomFloats(n, 80, 3f), n);
        var values = Read(x); // as stored
        double expected = values.Sum(e => (double)e * e);
        Assert.Equal(expected, Backend.SumOfSquares(x), expected * 1e-12);
        Backend.Fill(x, 0.5f);
        Assert.All(Read(x), e => Assert.Equal(0.5f, e));
        Assert.Equal(n * 0.25, Backend.SumOfSquares(x), 1e-9);

        // a view: only its rows change, and only its elements count
        var rows = Make(dtype, new float[7 * 5], 7, 5);
        Backend.Fill(rows.Rows(2, 3), -1.5f);
        var filled = Read(rows);
        for (int i = 0; i < filled.Length; i++) Assert.Equal(i is >= 10 and < 25 ? -1.5f : 0f, filled[i]);
        Assert.Equal(15 * 2.25, Backend.SumOfSquares(rows.Rows(2, 3)), 1e-12);
        Assert.Equal(0.0, Backend.SumOfSquares(rows.Rows(0, 2)));
    }

    // ---- determinism

    /// <summary>
    /// Every backward op, cross-entropy, AdamW and the norm on shapes big enough for each to take its parallel path,
    /// into fresh gradient buffers; the outputs read back, and the norm. Two calls must agree bit for bit.
    /// </summary>
    private protected (float[][] Outputs, double Norm) DeterminismRun()
    {
        var heads = new AttentionHeads(8, 2, 32);
        int t = 16, start = 16, s = 40, h = 1031, vocab = 1000, n = 400_003;
        var targets = Enumerable.Range(0, 8).Select(i => i * 101 % vocab).ToArray();
        var outputs = new List<Tensor>();
        if (Backend.Supports(OpKind.AttentionBackward))
        {
            var dq = Random(Act, 100, t, heads.QueryWidth);
            var dk = Random(Act, 101, s, heads.KeyValueWidth);
            var dv = Random(Act, 102, s, heads.KeyValueWidth);
            Backend.AttentionBackward(dq, dk, dv, Random(Act, 93, t, heads.QueryWidth), Random(Act, 90, t, heads.QueryWidth),
                Random(Act, 91, s, heads.KeyValueWidth), Random(Act, 92, s, heads.KeyValueWidth), [new AttentionSpan(0, t, 0, start)], heads);
            outputs.AddRange([dq, dk, dv]);
        }
        var x = Random(Act, 94, 64, h);
        var dyNorm = Random(Act, 96, 64, h);
        var dx = Random(Act, 103, 64, h);
        var dw = Random(DType.F32, 104, h);
        Backend.RmsNormBackward(dx, dw, dyNorm, x, Random(Act, 95, h), 1e-5f);
        var dWeight = Random(DType.F32, 105, h, h);
        Backend.MatMulBackward(null, dWeight, null, dyNorm, x, Random(Act, 106, h, h));
        var losses = Make(DType.F32, new float[8], 8);
        var dLogits = Make(Act, new float[8 * vocab], 8, vocab);
        Backend.CrossEntropy(losses, dLogits, Make(Act, Numerics.RandomFloats(8 * vocab, 97, 4f), 8, vocab), targets, 0.5f);
        var big = Random(Act, 98, n);
        var big2 = Random(Act, 99, n);
        var dg = Random(Act, 107, n);
        var du = Random(Act, 108, n);
        Backend.SwiGluBackward(dg, du, big2, big, big2);
        var p = Random(Act, 109, n);
        var grads = Random(DType.F32, 98, n);
        Backend.AdamW(p, null, grads, Random(DType.F32, 110, n), Make(DType.F32, new float[n], n),
            new AdamWStep(1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f, 3, 0.7f, Seed: 5));
        outputs.AddRange([dx, dw, dWeight, losses, dLogits, dg, du, p]);
        return (outputs.Select(Read).ToArray(), Backend.SumOfSquares(grads) + Backend.SumOfSquares(big));
    }

    private protected static void AssertSameRuns((float[][] Outputs, double Norm) a, (float[][] Outputs, double Norm) b)
    {
        Assert.Equal(a.Outputs.Length, b.Outputs.Length);
        for (int i = 0; i < a.Outputs.Length; i++) Assert.Equal(a.Outputs[i], b.Outputs[i]);
        Assert.Equal(a.Norm, b.Norm);
    }

    [Fact]
    public void BackwardIsBitIdenticalFromRunToRun() => AssertSameRuns(DeterminismRun(), DeterminismRun());
}

public sealed class CpuBackendGradientTests : BackendGradientTests
{
    private protected override IBackend Backend { get; } = new Native.Backends.Cpu.CpuBackend();

    // ---- thread independence (the CPU backend's parallel loops)

    /// <summary>
    /// Runs the action on a scheduler: the backend's parallel loops run on TaskScheduler.Current. Both sides of a
    /// comparison name their scheduler explicitly, because the test runner's own may be neither one thread nor all.
    /// The exclusive scheduler of a ConcurrentExclusiveSchedulerPair has a maximum concurrency level of 1. (CpuGemm
    /// keeps its own threads; it sums each element in a fixed order and CpuGemmTests cover its thread independence.)
    /// </summary>
    private static void On(TaskScheduler scheduler, Action action)
    {
        var task = Task.Factory.StartNew(action, CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(task.Wait(TimeSpan.FromSeconds(30)), "run did not finish");
    }

    private static TaskScheduler OneThread => new ConcurrentExclusiveSchedulerPair(TaskScheduler.Default, 1).ExclusiveScheduler;

    [Fact]
    public void OneThreadRunsParallelLoopsOnOneThread()
    {
        var threads = new HashSet<int>();
        On(OneThread, () => Parallel.For(0, 64, new ParallelOptions { TaskScheduler = TaskScheduler.Current }, _ => { lock (threads) threads.Add(Environment.CurrentManagedThreadId); Thread.SpinWait(10_000); }));
        Assert.Single(threads);
    }

    [Fact]
    public void BackwardIsBitIdenticalOnOneThreadAndOnAll()
    {
        (float[][] Outputs, double Norm) one = ([], 0), all = ([], 0);
        On(OneThread, () => one = DeterminismRun());
        On(TaskScheduler.Default, () => all = DeterminismRun());
        AssertSameRuns(one, all);
    }
}
