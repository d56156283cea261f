using Spark.Native.Backends;
using Spark.Native.Tests.Fixtures;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Tests.Cpu;

// Dimension legend: T rows, H hidden, I intermediate, V vocabulary, S cached positions, NH/NKV heads, HD head dim.

/// <summary>
/// The training ops of a backend against float64 references written here with plain loops. For each backward op,
/// L = Σ R ⊙ op(inputs) with a random R; the backend's gradients are compared with central finite differences of L
/// computed in float64 on the same (float-valued) inputs. F32 finite differences would be too noisy, so the forward
/// is re-implemented here instead of calling the backend's. Every gradient buffer starts with random values, which
/// checks that backward ops add to it rather than overwrite it. A backend gets the suite by deriving one small class.
/// </summary>
public abstract class BackendGradientTests : IDisposable
{
    private protected abstract IBackend Backend { get; }
    /// <summary>Largest relative error ‖a−b‖/‖b‖ of an F32 gradient against the float64 finite difference.</summary>
    protected virtual double Tolerance => 2e-5;

    private const double Step = 1e-5; // central differences in float64: truncation ~Step², rounding ~1e-16/Step
    private readonly List<Tensor> _tensors = [];

    public virtual void Dispose()
    {
        foreach (var t in _tensors) t.Dispose();
        Backend.Dispose();
    }

    private Tensor Make(float[] values, params int[] shape)
    {
        var t = Backend.Allocate(DType.F32, shape);
        Backend.Upload(t, values);
        _tensors.Add(t);
        return t;
    }

    private Tensor Random(int seed, params int[] shape) => Make(Numerics.RandomFloats(Length(shape), seed), shape);

    private float[] Read(Tensor t)
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

    /// <summary>A gradient buffer with random starting values, and a copy of them.</summary>
    private (Tensor Grad, Tensor Before) Prefilled(int seed, params int[] shape)
    {
        var values = Numerics.RandomFloats(Length(shape), seed, 0.5f);
        return (Make(values, shape), Make(values, shape));
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
        var ids = Enumerable.Range(0, t).Select(i => i * 3 % v).ToArray(); // repeats when t > v
        var r = D(Numerics.RandomFloats(t * h, 1));
        var table = D(Numerics.RandomFloats(v * h, 2));
        var expected = Numeric(table, () => Dot(r, ids.SelectMany(id => table.Skip(id * h).Take(h)).ToArray()));
        var (grad, before) = Prefilled(3, v, h);
        Backend.EmbeddingBackward(grad, Make(Numerics.RandomFloats(t * h, 1), t, h), ids);
        AssertGradient(grad, before, expected, "EmbeddingBackward");
        Assert.Throws<ArgumentOutOfRangeException>(() => Backend.EmbeddingBackward(grad, Random(1, t, h), ids.Select(_ => v).ToArray()));
    }

    [Theory]
    [InlineData(1, 3)] // not H = 1: there y ≈ ±w whatever x, and the input gradient (~eps) is all F32 cancellation
    [InlineData(5, 17)]
    [InlineData(3, 67)]
    public void RmsNormBackward(int t, int h)
    {
        const float eps = 1e-5f;
        var x = Random(10, t, h);
        var w = Random(11, h);
        var dy = Random(12, t, h);
        double[] xd = D(Read(x)), wd = D(Read(w)), r = D(Read(dy));
        double L() => Dot(r, RmsNormRef(xd, wd, t, h, eps));
        var (dx, dxBefore) = Prefilled(13, t, h);
        var (dw, dwBefore) = Prefilled(14, h);
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
        var x = Random(20, m, k);
        var w = Random(21, n, k);
        var b = Random(22, n);
        var dy = Random(23, m, n);
        double[] xd = D(Read(x)), wd = D(Read(w)), bd = D(Read(b)), r = D(Read(dy));
        double L() => Dot(r, MatMulRef(xd, wd, withBias ? bd : null, m, n, k));
        var (dx, dxBefore) = Prefilled(24, m, k);
        var (dw, dwBefore) = Prefilled(25, n, k);
        var (db, dbBefore) = Prefilled(26, n);
        Backend.MatMulBackward(dx, dw, withBias ? db : null, dy, x, w);
        AssertGradient(dx, dxBefore, Numeric(xd, L), "MatMulBackward input");
        AssertGradient(dw, dwBefore, Numeric(wd, L), "MatMulBackward weight");
        AssertGradient(db, dbBefore, withBias ? Numeric(bd, L) : new double[n], "MatMulBackward bias");

        // without an input gradient only the weight gradient moves (here: by the same amount again)
        Backend.MatMulBackward(null, dw, null, dy, x, w);
        AssertGradient(dw, dwBefore, Numeric(wd, L).Select(g => 2 * g).ToArray(), "MatMulBackward weight, twice");
        Assert.Throws<ArgumentException>(() => Backend.MatMulBackward(dx, Random(27, n, k + 1), null, dy, x, w));
    }

    [Theory]
    [InlineData(1, 1, 2, 0)]
    [InlineData(5, 3, 8, 11)]
    [InlineData(3, 2, 10, 1000)]
    public void RopeBackward(int t, int heads, int hd, int firstPosition)
    {
        int width = heads * hd;
        var invFreq = Enumerable.Range(0, hd / 2).Select(j => (float)Math.Pow(10000, -2.0 * j / hd)).ToArray();
        var positions = Enumerable.Range(0, t).Select(i => firstPosition + 3 * i).ToArray();
        var r = Numerics.RandomFloats(t * width, 30);
        var xd = D(Numerics.RandomFloats(t * width, 31));
        var expected = Numeric(xd, () => Dot(D(r), RopeRef(xd, positions, invFreq, width, hd)));
        // RopeBackward works in place: ∂L/∂rope(x) = R becomes ∂L/∂x
        var grad = Make(r, t, width);
        Backend.RopeBackward(grad, positions, Make(invFreq, hd / 2), hd);
        AssertGradient(grad, Make(new float[t * width], t, width), expected, "RopeBackward");
    }

    [Theory]
    [InlineData(1, 1, 1, 4, 0, 1)]     // a single token
    [InlineData(3, 6, 2, 4, 5, 10)]    // GQA 6/2, new tokens after 5 cached ones, cache longer than used
    [InlineData(1, 4, 4, 6, 7, 8)]     // T = 1 decoding step at position 7
    [InlineData(5, 3, 1, 5, 0, 5)]     // odd head dim, one kv head for three query heads
    public void AttentionBackward(int t, int nh, int nkv, int hd, int start, int cacheRows)
    {
        var heads = new AttentionHeads(nh, nkv, hd);
        var q = Random(40, t, heads.QueryWidth);
        var k = Random(41, cacheRows, heads.KeyValueWidth);
        var v = Random(42, cacheRows, heads.KeyValueWidth);
        var dy = Random(43, t, heads.QueryWidth);
        double[] qd = D(Read(q)), kd = D(Read(k)), vd = D(Read(v)), r = D(Read(dy));
        double L() => Dot(r, AttentionRef(qd, kd, vd, t, start, heads));
        var (dq, dqBefore) = Prefilled(44, t, heads.QueryWidth);
        var (dk, dkBefore) = Prefilled(45, cacheRows, heads.KeyValueWidth);
        var (dv, dvBefore) = Prefilled(46, cacheRows, heads.KeyValueWidth);
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
        var g = Make(Numerics.RandomFloats(t * i, 50, 4f), t, i);
        var u = Random(51, t, i);
        var dy = Random(52, t, i);
        double[] gd = D(Read(g)), ud = D(Read(u)), r = D(Read(dy));
        double L() => Dot(r, SwiGluRef(gd, ud));
        var (dg, dgBefore) = Prefilled(53, t, i);
        var (du, duBefore) = Prefilled(54, t, i);
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
        var logitValues = Numerics.RandomFloats(t * v, 60, 5f);
        var targets = Enumerable.Range(0, t).Select(i => i == 1 ? -1 : i * 5 % v).ToArray(); // row 1 is ignored
        var logits = Make(logitValues, t, v);
        var losses = Make(new float[t], t);
        var grad = Make(Numerics.RandomFloats(t * v, 61), t, v); // overwritten, not accumulated
        Backend.CrossEntropy(losses, grad, logits, targets, gradScale);

        var ld = D(logitValues);
        var expectedLoss = CrossEntropyRef(ld, targets, v);
        Assert.True(RelativeError(D(Read(losses)), expectedLoss) <= Tolerance, "CrossEntropy loss");
        var expected = Numeric(ld, () => gradScale * CrossEntropyRef(ld, targets, v).Sum());
        AssertGradient(grad, Make(new float[t * v], t, v), expected, "CrossEntropy gradient");
        if (t > 1)
        {
            Assert.Equal(0f, Read(losses)[1]);
            Assert.All(Read(grad)[v..(2 * v)], g => Assert.Equal(0f, g));
        }

        // the gradient may overwrite the logits in place, with the same result
        var losses2 = Make(new float[t], t);
        Backend.CrossEntropy(losses2, logits, logits, targets, gradScale);
        Assert.Equal(Read(grad), Read(logits));
        Assert.Equal(Read(losses), Read(losses2));
    }

    [Fact]
    public void CrossEntropyRejectsTargetsOutsideTheVocabulary()
    {
        var logits = Random(62, 3, 5);
        foreach (int bad in new[] { 5, -2 })
        {
            var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Backend.CrossEntropy(Random(63, 3), Random(64, 3, 5), logits, [0, -1, bad], 1f));
            Assert.Contains("row 2", ex.Message);
            Assert.Contains(bad.ToString(System.Globalization.CultureInfo.InvariantCulture), ex.Message);
        }
    }

    // ---- optimizer and utilities

    [Theory]
    [InlineData(0f, 1f)]
    [InlineData(0.1f, 0.5f)]
    public void AdamW(float weightDecay, float gradScale)
    {
        const int n = 37, steps = 4;
        var p = Random(70, n);
        var m = Make(new float[n], n);
        var v = Make(new float[n], n);
        var pd = D(Read(p));
        var md = new double[n];
        var vd = new double[n];
        for (int step = 1; step <= steps; step++)
        {
            var g = Numerics.RandomFloats(n, 70 + step, 2f);
            var hp = new AdamWStep(1e-2f, 0.9f, 0.95f, 1e-8f, weightDecay, step, gradScale);
            Backend.AdamW(p, null, Make(g, n), m, v, hp);
            for (int i = 0; i < n; i++)
            {
                double gi = (double)g[i] * gradScale;
                md[i] = 0.9 * md[i] + 0.1 * gi;
                vd[i] = 0.95 * vd[i] + 0.05 * gi * gi;
                double mHat = md[i] / (1 - Math.Pow(0.9, step)), vHat = vd[i] / (1 - Math.Pow(0.95, step));
                pd[i] -= 1e-2 * (mHat / (Math.Sqrt(vHat) + 1e-8) + weightDecay * pd[i]);
            }
        }
        Assert.True(RelativeError(D(Read(p)), pd) <= 1e-6, "AdamW parameters");
        Assert.True(RelativeError(D(Read(m)), md) <= 1e-6, "AdamW first moment");
        Assert.True(RelativeError(D(Read(v)), vd) <= 1e-6, "AdamW second moment");
        Assert.Throws<ArgumentOutOfRangeException>(() => Backend.AdamW(p, null, p, m, v, new AdamWStep(1e-2f, 0.9f, 0.95f, 1e-8f, 0f, 0, 1f)));
    }

    [Fact]
    public void FillAndSumOfSquares()
    {
        const int n = 100_003; // several chunks and a ragged end
        var values = Numerics.RandomFloats(n, 80, 3f);
        var x = Make(values, n);
        double expected = values.Sum(e => (double)e * e);
        Assert.Equal(expected, Backend.SumOfSquares(x), expected * 1e-12);
        Backend.Fill(x, 0.5f);
        Assert.All(Read(x), e => Assert.Equal(0.5f, e));
        Assert.Equal(n * 0.25, Backend.SumOfSquares(x), 1e-9);
    }

    // ---- determinism

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
        // shapes big enough for every op to take its parallel path
        var heads = new AttentionHeads(8, 2, 32);
        int t = 16, start = 16, s = 40, h = 1031, vocab = 1000, n = 400_003;
        var inputs = new
        {
            Q = Random(90, t, heads.QueryWidth), K = Random(91, s, heads.KeyValueWidth), V = Random(92, s, heads.KeyValueWidth),
            Dy = Random(93, t, heads.QueryWidth), X = Random(94, 64, h), W = Random(95, h), DyNorm = Random(96, 64, h),
            Logits = Make(Numerics.RandomFloats(8 * vocab, 97, 4f), 8, vocab), Big = Random(98, n), Big2 = Random(99, n),
        };
        var targets = Enumerable.Range(0, 8).Select(i => i * 101 % vocab).ToArray();
        (float[][] Outputs, double Norm) Run()
        {
            var dq = Random(100, t, heads.QueryWidth);
            var dk = Random(101, s, heads.KeyValueWidth);
            var dv = Random(102, s, heads.KeyValueWidth);
            Backend.AttentionBackward(dq, dk, dv, inputs.Dy, inputs.Q, inputs.K, inputs.V, [new AttentionSpan(0, t, 0, start)], heads);
            var dx = Random(103, 64, h);
            var dw = Random(104, h);
            Backend.RmsNormBackward(dx, dw, inputs.DyNorm, inputs.X, inputs.W, 1e-5f);
            var dWeight = Random(105, h, h);
            Backend.MatMulBackward(null, dWeight, null, inputs.DyNorm, inputs.X, Random(106, h, h));
            var losses = Make(new float[8], 8);
            var dLogits = Make(new float[8 * vocab], 8, vocab);
            Backend.CrossEntropy(losses, dLogits, inputs.Logits, targets, 0.5f);
            var dg = Random(107, n);
            var du = Random(108, n);
            Backend.SwiGluBackward(dg, du, inputs.Big2, inputs.Big, inputs.Big2);
            var p = Random(109, n);
            Backend.AdamW(p, null, inputs.Big, Random(110, n), Make(new float[n], n), new AdamWStep(1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f, 3, 0.7f));
            var outputs = new[] { dq, dk, dv, dx, dw, dWeight, losses, dLogits, dg, du, p }.Select(Read).ToArray();
            return (outputs, Backend.SumOfSquares(inputs.Big));
        }
        (float[][] Outputs, double Norm) one = ([], 0), all = ([], 0);
        On(OneThread, () => one = Run());
        On(TaskScheduler.Default, () => all = Run());
        for (int i = 0; i < all.Outputs.Length; i++) Assert.Equal(one.Outputs[i], all.Outputs[i]);
        Assert.Equal(one.Norm, all.Norm);
    }
}

public sealed class CpuBackendGradientTests : BackendGradientTests
{
    private protected override IBackend Backend { get; } = new Native.Backends.Cpu.CpuBackend();
}
