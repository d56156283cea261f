using Spark.Native.Backends;
using Spark.Native.Tests.Fixtures;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Tests.Cpu;

// Dimension legend: T tokens, H hidden, V vocabulary.

/// <summary>
/// LogProbGather and LogProbGatherBackward of a backend against a float64 reference written here with plain loops (the
/// full softmax of every row in double): odd shapes, vocabularies that are not a multiple of any chunk size and span
/// several chunks, token counts over one token block, targets including −1, temperatures 1 and 0.7. The gradients are
/// the analytic ones of L = Σ a_t·logp_t + Σ b_t·H_t in float64. Inputs for the reference are the values as the
/// backend stores them (an Upload/Download round trip), every output has guard rows of sentinels on both sides,
/// gradient buffers start with random values (the op must add), and NaN or ±∞ always fails. A backend gets the suite
/// by deriving one small class.
/// </summary>
public abstract class LogProbGatherTests : IDisposable
{
    private protected abstract IBackend Backend { get; }

    /// <summary>Largest ‖a−b‖/‖b‖ of the forward outputs (F32 backends: float32 GEMM and exp against float64).</summary>
    protected virtual double ForwardTolerance => 2e-6;

    /// <summary>
    /// Largest ‖a−b‖/‖b‖ of the gradients (F32 backends). Looser than the forward: p = exp(z − lse) inherits the
    /// float32 rounding of z in absolute terms (≈1e-5 when the huge-logit test makes |z| reach hundreds), and dHidden
    /// is a sum of V signed terms that partly cancel; measured 2.5e-6 (×2 hidden) and 4.2e-6 (×100 hidden).
    /// </summary>
    protected virtual double GradientTolerance => 2e-5;

    private const float Sentinel = 1234.5f;
    private readonly List<Tensor> _tensors = [];

    public void Dispose()
    {
        foreach (var t in _tensors) t.Dispose();
        DisposeBackend();
        GC.SuppressFinalize(this);
    }

    /// <summary>Disposes the backend (after the tensors of the test).</summary>
    protected virtual void DisposeBackend() => Backend.Dispose();

    private void Require(OpKind op) =>
        Assert.SkipUnless(Backend.Supports(op), $"the {Backend.Name} backend does not implement {op}");

    /// <summary>A [rows, cols] tensor with one guard row of sentinels on each side, filled with values (or zeros).</summary>
    private sealed class Guarded
    {
        private readonly IBackend _b;
        private readonly Tensor _owner;
        private readonly float _sentinel;
        private readonly int _cols;

        public Guarded(IBackend b, List<Tensor> owned, DType dtype, int rows, int cols, float[]? values)
        {
            _b = b;
            _cols = cols;
            _owner = b.Allocate(dtype, rows + 2, cols);
            owned.Add(_owner);
            var init = new float[(rows + 2) * cols];
            Array.Fill(init, Sentinel);
            if (values is null) Array.Fill(init, 0f, cols, rows * cols);
            else values.CopyTo(init, cols);
            b.Upload(_owner, init);
            var stored = new float[init.Length];
            b.Download(stored, _owner);
            _sentinel = stored[0]; // 1234.5 is exact in F32 and rounds to 1232 in BF16
            Stored = stored[cols..^cols];
            var view = _owner.Rows(1, rows);
            View = cols == 1 ? view.Reshape(rows) : view;
        }

        /// <summary>The rows as the backend stored them at creation.</summary>
        public float[] Stored { get; }

        public Tensor View { get; }

        /// <summary>The rows now, after checking the guards and that every value is finite.</summary>
        public float[] Read(string what)
        {
            var rows = ReadUnchecked(what);
            for (int i = 0; i < rows.Length; i++) Assert.True(float.IsFinite(rows[i]), $"{what}: {rows[i]} at {i}");
            return rows;
        }

        /// <summary>The rows now, after checking the guards only.</summary>
        public float[] ReadUnchecked(string what)
        {
            var all = new float[_owner.Length];
            _b.Download(all, _owner);
            for (int i = 0; i < _cols; i++)
            {
                Assert.True(all[i] == _sentinel, $"{what}: guard before the output was overwritten at {i}");
                Assert.True(all[^(i + 1)] == _sentinel, $"{what}: guard after the output was overwritten at {i}");
            }
            return all[_cols..^_cols];
        }
    }

    private Guarded Activations(int rows, int cols, float[]? values) => new(Backend, _tensors, Backend.ActivationDType, rows, cols, values);
    private Guarded Floats(int rows, int cols, float[]? values) => new(Backend, _tensors, DType.F32, rows, cols, values);

    private static void AssertClose(float[] actual, double[] expected, double tolerance, string what)
    {
        foreach (float a in actual) Assert.True(float.IsFinite(a), $"{what}: {a}");
        double err = Numerics.RelativeError(actual, expected);
        Assert.True(err <= tolerance, $"{what}: relative error {err:E2} > {tolerance:E1}");
    }

    private static int[] Targets(int t, int v) =>
        Enumerable.Range(0, t).Select(i => t > 1 && i % 4 == 3 ? -1 : (i * 7919 + v - 1) % v).ToArray();

    // ---- float64 reference

    private sealed record Reference(double[] LogProbs, double[] Entropies, double[] LogSumExp, double[] HiddenGrad, double[] WeightGrad);

    /// <summary>
    /// Forward and the gradients of L = Σ a_t·logp_t + Σ b_t·H_t (b null: no entropy term), all in float64 with the
    /// whole softmax of each row: dz = a·(onehot − p) − b·p·(log p + H), dHidden = dz·W/τ, dW = dzᵀ·hidden/τ.
    /// </summary>
    private static Reference Compute(float[] hidden, float[] weight, int[] targets, int t, int h, int v, double temperature,
        float[]? a = null, float[]? b = null)
    {
        var logp = new double[t];
        var entropy = new double[t];
        var lse = new double[t];
        var dHidden = new double[t * h];
        var dWeight = new double[v * h];
        var z = new double[v];
        for (int r = 0; r < t; r++)
        {
            for (int j = 0; j < v; j++)
            {
                double s = 0;
                for (int k = 0; k < h; k++) s += (double)hidden[r * h + k] * weight[j * h + k];
                z[j] = s / temperature;
            }
            double max = z.Max(), sum = 0;
            foreach (double zj in z) sum += Math.Exp(zj - max);
            lse[r] = max + Math.Log(sum);
            double ent = 0;
            foreach (double zj in z) ent -= Math.Exp(zj - lse[r]) * (zj - lse[r]);
            entropy[r] = ent;
            logp[r] = targets[r] < 0 ? 0 : z[targets[r]] - lse[r];
            if (a is null) continue;
            double ga = targets[r] < 0 ? 0 : a[r], gb = b is null ? 0 : b[r];
            for (int j = 0; j < v; j++)
            {
                double lpj = z[j] - lse[r], p = Math.Exp(lpj);
                double dz = ga * ((j == targets[r] ? 1 : 0) - p) - gb * p * (lpj + ent);
                if (dz == 0) continue;
                for (int k = 0; k < h; k++)
                {
                    dHidden[r * h + k] += dz * weight[j * h + k] / temperature;
                    dWeight[j * h + k] += dz * hidden[r * h + k] / temperature;
                }
            }
        }
        return new Reference(logp, entropy, lse, dHidden, dWeight);
    }

    // ---- forward

    [Theory]
    [InlineData(1, 5, 3, 1.0f)]         // one token
    [InlineData(7, 1031, 13, 0.7f)]     // odd sizes, one chunk
    [InlineData(5, 9000, 16, 1.0f)]     // three CPU chunks, two CUDA chunks, neither a multiple
    [InlineData(3, 8192, 5, 0.7f)]      // exactly two CPU chunks, one CUDA chunk
    [InlineData(1030, 261, 6, 1.0f)]    // more tokens than one block on every backend
    public void Forward(int t, int v, int h, float temperature)
    {
        Require(OpKind.LogProbGather);
        var hidden = Activations(t, h, Numerics.RandomFloats(t * h, 1, 2f));
        var weight = Activations(v, h, Numerics.RandomFloats(v * h, 2));
        var logProbs = Floats(t, 1, null);
        var entropies = Floats(t, 1, null);
        var lse = Floats(t, 1, null);
        var targets = Targets(t, v);
        Backend.LogProbGather(logProbs.View, entropies.View, lse.View, hidden.View, weight.View, targets, temperature);
        var expected = Compute(hidden.Stored, weight.Stored, targets, t, h, v, temperature);
        AssertClose(logProbs.Read("logProbs"), expected.LogProbs, ForwardTolerance, "logProbs");
        AssertClose(entropies.Read("entropies"), expected.Entropies, ForwardTolerance, "entropies");
        AssertClose(lse.Read("logSumExp"), expected.LogSumExp, ForwardTolerance, "logSumExp");
        var lp = logProbs.Read("logProbs");
        for (int r = 0; r < t; r++)
            if (targets[r] < 0) Assert.Equal(0f, lp[r]);
    }

    // ---- backward

    [Theory]
    [InlineData(1, 5, 3, 1.0f)]
    [InlineData(7, 1031, 13, 0.7f)]
    [InlineData(5, 9000, 16, 1.0f)]
    [InlineData(1030, 261, 6, 0.7f)]
    public void Backward(int t, int v, int h, float temperature)
    {
        Require(OpKind.LogProbGatherBackward);
        foreach (bool withEntropy in new[] { true, false })
            CheckBackward(t, v, h, temperature, hiddenScale: 2f, withEntropy);
    }

    private void CheckBackward(int t, int v, int h, float temperature, float hiddenScale, bool withEntropy)
    {
        var hidden = Activations(t, h, Numerics.RandomFloats(t * h, 3, hiddenScale));
        var weight = Activations(v, h, Numerics.RandomFloats(v * h, 4));
        var targets = Targets(t, v);
        var a = Numerics.RandomFloats(t, 5);
        var b = Numerics.RandomFloats(t, 6, 0.5f);
        var logProbs = Floats(t, 1, null);
        var entropies = Floats(t, 1, null);
        var lse = Floats(t, 1, null);
        Backend.LogProbGather(logProbs.View, entropies.View, lse.View, hidden.View, weight.View, targets, temperature);
        var expected = Compute(hidden.Stored, weight.Stored, targets, t, h, v, temperature, a, withEntropy ? b : null);
        // prefilled with random values of the gradients' own size, so an overwrite or a lost addition both show
        var hiddenGrad = Activations(t, h, Scaled(Numerics.RandomFloats(t * h, 7), expected.HiddenGrad));
        var weightGrad = Floats(v, h, Scaled(Numerics.RandomFloats(v * h, 8), expected.WeightGrad));
        var gradLp = Floats(t, 1, a);
        var gradH = Floats(t, 1, b);
        Backend.LogProbGatherBackward(hiddenGrad.View, weightGrad.View, gradLp.View, withEntropy ? gradH.View : null,
            lse.View, entropies.View, hidden.View, weight.View, targets, temperature);
        string what = withEntropy ? "with entropy gradient" : "without entropy gradient";
        AssertClose(Delta(hiddenGrad.Read("hiddenGrad"), hiddenGrad.Stored), expected.HiddenGrad, GradientTolerance, $"hiddenGrad {what}");
        AssertClose(Delta(weightGrad.Read("weightGrad"), weightGrad.Stored), expected.WeightGrad, GradientTolerance, $"weightGrad {what}");
    }

    private static float[] Scaled(float[] random, double[] like)
    {
        double rms = Math.Sqrt(like.Sum(x => x * x) / Math.Max(1, like.Length));
        return random.Select(x => (float)(x * rms)).ToArray();
    }

    private static float[] Delta(float[] after, float[] before) => after.Select((x, i) => x - before[i]).ToArray();

    // ---- numerics

    [Fact]
    public void HugeLogitsStayFinite()
    {
        Require(OpKind.LogProbGatherBackward);
        // hidden ×100: |z| reaches hundreds, far past exp's float range (88); only the max-shifted sums survive
        int t = 6, v = 9000, h = 13;
        float temperature = 0.7f;
        var hidden = Activations(t, h, Numerics.RandomFloats(t * h, 9, 100f));
        var weight = Activations(v, h, Numerics.RandomFloats(v * h, 10));
        var targets = Targets(t, v);
        var logProbs = Floats(t, 1, null);
        var entropies = Floats(t, 1, null);
        var lse = Floats(t, 1, null);
        Backend.LogProbGather(logProbs.View, entropies.View, lse.View, hidden.View, weight.View, targets, temperature);
        var expected = Compute(hidden.Stored, weight.Stored, targets, t, h, v, temperature);
        Assert.True(expected.LogSumExp.Max() > 200, "the test needs logits beyond exp's range");
        AssertClose(logProbs.Read("logProbs"), expected.LogProbs, ForwardTolerance, "logProbs");
        AssertClose(lse.Read("logSumExp"), expected.LogSumExp, ForwardTolerance, "logSumExp");
        // rows this peaked have entropies near 0 (down to 1e-20): compared in nats, not relatively
        var ent = entropies.Read("entropies");
        for (int r = 0; r < t; r++)
            Assert.True(Math.Abs(ent[r] - expected.Entropies[r]) <= 1e-3, $"entropy of row {r}: {ent[r]} vs {expected.Entropies[r]}");
        CheckBackward(t, v, h, temperature, hiddenScale: 100f, withEntropy: true);
    }

    [Fact]
    public void IsBitIdenticalOnOneThreadAndOnAll()
    {
        Require(OpKind.LogProbGatherBackward);
        int t = 300, v = 5000, h = 24; // more than one token block and one vocabulary chunk, parallel row loops
        var hidden = Activations(t, h, Numerics.RandomFloats(t * h, 11));
        var weight = Activations(v, h, Numerics.RandomFloats(v * h, 12));
        var targets = Targets(t, v);
        var gradLp = Floats(t, 1, Numerics.RandomFloats(t, 13));
        var gradH = Floats(t, 1, Numerics.RandomFloats(t, 14));
        float[][] Run()
        {
            var lp = Floats(t, 1, null);
            var ent = Floats(t, 1, null);
            var lse = Floats(t, 1, null);
            var dx = Activations(t, h, null);
            var dw = Floats(v, h, null);
            Backend.LogProbGather(lp.View, ent.View, lse.View, hidden.View, weight.View, targets, 0.7f);
            Backend.LogProbGatherBackward(dx.View, dw.View, gradLp.View, gradH.View, lse.View, ent.View, hidden.View, weight.View, targets, 0.7f);
            return [lp.Read("logProbs"), ent.Read("entropies"), lse.Read("logSumExp"), dx.Read("hiddenGrad"), dw.Read("weightGrad")];
        }
        float[][] one = [], all = [];
        On(new ConcurrentExclusiveSchedulerPair(TaskScheduler.Default, 1).ExclusiveScheduler, () => one = Run());
        On(TaskScheduler.Default, () => all = Run());
        for (int i = 0; i < one.Length; i++) Assert.Equal(one[i], all[i]);
    }

    /// <summary>Runs the action on a scheduler (the CPU backend's parallel loops run on TaskScheduler.Current).</summary>
    private static void On(TaskScheduler scheduler, Action action)
    {
        var task = Task.Factory.StartNew(action, CancellationToken.None, TaskCreationOptions.None, scheduler);
        Assert.True(task.Wait(TimeSpan.FromSeconds(60)), "run did not finish");
    }

    [Fact]
    public void NaNInputPropagates()
    {
        Require(OpKind.LogProbGather);
        int t = 3, v = 20, h = 4;
        var values = Numerics.RandomFloats(t * h, 15);
        values[h + 2] = float.NaN; // row 1
        var hidden = Activations(t, h, values);
        var weight = Activations(v, h, Numerics.RandomFloats(v * h, 16));
        var logProbs = Floats(t, 1, null);
        var entropies = Floats(t, 1, null);
        var lse = Floats(t, 1, null);
        Backend.LogProbGather(logProbs.View, entropies.View, lse.View, hidden.View, weight.View, [1, 2, 3], 1f);
        // a NaN must surface in its row (not be hidden by a max), and the other rows stay finite
        foreach (var (output, what) in new[] { (logProbs, "logProbs"), (entropies, "entropies"), (lse, "logSumExp") })
        {
            var rows = output.ReadUnchecked(what);
            Assert.True(float.IsNaN(rows[1]), $"{what} of row 1: {rows[1]}");
            Assert.True(float.IsFinite(rows[0]) && float.IsFinite(rows[2]), $"{what}: rows 0 and 2 are {rows[0]}, {rows[2]}");
            Assert.ThrowsAny<Exception>(() => output.Read(what)); // and Read, which every other test uses, fails on it
        }
    }

    // ---- validation

    [Fact]
    public void RejectsBadOperands()
    {
        Require(OpKind.LogProbGather);
        int t = 3, v = 11, h = 4;
        var hidden = Activations(t, h, Numerics.RandomFloats(t * h, 17));
        var weight = Activations(v, h, Numerics.RandomFloats(v * h, 18));
        var wrongWeight = Activations(v, h + 1, Numerics.RandomFloats(v * (h + 1), 19));
        var lp = Floats(t, 1, null);
        var ent = Floats(t, 1, null);
        var lse = Floats(t, 1, null);
        var shortLp = Floats(t - 1, 1, null);
        int[] targets = [0, -1, v - 1];
        void Forward(Tensor w, Tensor logProbs, int[] ids, float temperature) =>
            Backend.LogProbGather(logProbs, ent.View, lse.View, hidden.View, w, ids, temperature);

        Assert.Contains("weight", Assert.Throws<ArgumentException>(() => Forward(wrongWeight.View, lp.View, targets, 1f)).Message, StringComparison.Ordinal);
        Assert.Contains("logProbs", Assert.Throws<ArgumentException>(() => Forward(weight.View, shortLp.View, targets, 1f)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Forward(weight.View, lp.View, [0, 1], 1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Forward(weight.View, lp.View, [0, v, 1], 1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Forward(weight.View, lp.View, [0, -2, 1], 1f));
        foreach (float bad in new[] { 0f, -1f, float.NaN, float.PositiveInfinity })
            Assert.Throws<ArgumentOutOfRangeException>(() => Forward(weight.View, lp.View, targets, bad));

        Require(OpKind.LogProbGatherBackward);
        var dx = Activations(t, h, null);
        var dw = Floats(v, h, null);
        var grad = Floats(t, 1, null);
        Backend.LogProbGather(lp.View, ent.View, lse.View, hidden.View, weight.View, targets, 1f);
        var wrongDx = Activations(t + 1, h, null);
        Assert.Contains("hiddenGrad", Assert.Throws<ArgumentException>(() => Backend.LogProbGatherBackward(wrongDx.View, dw.View, grad.View, null,
            lse.View, ent.View, hidden.View, weight.View, targets, 1f)).Message, StringComparison.Ordinal);
        Assert.Contains("entropyGrad", Assert.Throws<ArgumentException>(() => Backend.LogProbGatherBackward(dx.View, dw.View, grad.View, shortLp.View,
            lse.View, ent.View, hidden.View, weight.View, targets, 1f)).Message, StringComparison.Ordinal);
        if (Backend.ActivationDType != DType.F32)
        {
            // the weight gradient is F32 on every backend, even where weights are not
            var activationDw = Activations(v, h, null);
            Assert.Contains("weightGrad", Assert.Throws<ArgumentException>(() => Backend.LogProbGatherBackward(dx.View, activationDw.View, grad.View, null,
                lse.View, ent.View, hidden.View, weight.View, targets, 1f)).Message, StringComparison.Ordinal);
        }
    }
}

public sealed class CpuLogProbGatherTests : LogProbGatherTests
{
    private protected override IBackend Backend { get; } = new Native.Backends.Cpu.CpuBackend();
}
