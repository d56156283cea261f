using Spark.Native.Backends;
using Spark.Native.Backends.Cpu;
using Spark.Native.Backends.Cuda;
using Spark.Native.Tests.Fixtures;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Tests.Cuda;

/// <summary>
/// The attention kernels (kernels/attention.cu, attention_backward.cu) on the shapes the small op suite does not reach:
/// long prefill on tensor cores, a varlen batch, split-K decode against long caches, and the backward with its
/// determinism. Each case runs the CUDA backend and the CPU backend on the same inputs (the CUDA-stored bf16 values,
/// downloaded and handed to the CPU backend, which computes in fp32). Skips with the reason of
/// <see cref="CudaBackend.TryCreate"/> on a machine without a usable GPU.
/// </summary>
public sealed class AttentionKernelTests : IDisposable
{
    // Tolerances, as ‖cuda − cpu‖ / ‖cpu‖ over the whole tensor. The inputs are identical, so the difference is the
    // kernels' own rounding: P (forward) and dScore (backward) are rounded to bf16 before their tensor-core products
    // (2⁻⁹ ≈ 2e-3 relative each, mostly averaging out over the keys), the outputs are rounded to bf16 once (≤ 2e-3), and
    // fp32 sums run in another order. Typical results are a few 1e-3; an indexing, masking or scaling mistake gives
    // errors of order 1. The backward has one more rounded operand (dScore) and the rounding of the accumulated
    // gradient, so it gets twice the room.
    private const double ForwardTolerance = 1e-2;
    private const double BackwardTolerance = 2e-2;

    private readonly CudaBackend? _cuda;
    private readonly string _reason;
    private readonly CpuBackend _cpu = new();
    private readonly List<Tensor> _tensors = [];

    public AttentionKernelTests()
    {
        CudaBackend.TryCreate(out _cuda, out _reason);
    }

    private CudaBackend Cuda
    {
        get
        {
            if (_cuda is null) Assert.Skip(_reason);
            return _cuda!;
        }
    }

    public void Dispose()
    {
        foreach (var t in _tensors) t.Dispose();
        _cuda?.Dispose();
        _cpu.Dispose();
    }

    [Theory]
    [InlineData(64)]
    [InlineData(128)]
    public void LongPrefillMatchesCpu(int hd)
    {
        // one training sequence of 1000 rows, GQA 4:1: 16 query tiles, 16 key tiles for the last one
        var heads = new AttentionHeads(8, 2, hd);
        CompareForward(heads, queryRows: 1000, keyRows: 1000, [new AttentionSpan(0, 1000, 0, 0)], seed: 1);
    }

    [Theory]
    [InlineData(64)]   // tensor cores
    [InlineData(128)]  // tensor cores
    [InlineData(40)]   // not a multiple of 16: the row kernels
    public void VarlenBatchMatchesCpu(int hd)
    {
        // a full sequence, a chunk after a 30-position prefix (tile boundary not aligned to positions), a decode row,
        // a sequence of 130 (two tiles, the second partial), a 3-row chunk after 200 cached positions; row 299 uncovered
        AttentionSpan[] spans = [new(0, 100, 0, 0), new(100, 65, 150, 30), new(165, 1, 300, 77), new(166, 130, 400, 0), new(296, 3, 600, 200)];
        CompareForward(new AttentionHeads(6, 2, hd), queryRows: 300, keyRows: 803, spans, seed: 2);
    }

    [Theory]
    [InlineData(128, 1)]
    [InlineData(64, 2)]
    [InlineData(6, 1)]
    public void SplitDecodeMatchesCpu(int hd, int rowsPerSequence)
    {
        // 8 sequences with 4100-position caches each; every span has ≤ 4 rows and ≥ 1024 keys: the split-K path
        const int sequences = 8, cache = 4100;
        var spans = new AttentionSpan[sequences];
        for (int b = 0; b < sequences; b++)
            spans[b] = new AttentionSpan(b * rowsPerSequence, rowsPerSequence, b * cache, cache - rowsPerSequence);
        CompareForward(new AttentionHeads(8, 2, hd), queryRows: sequences * rowsPerSequence, keyRows: sequences * cache, spans, seed: 3);
    }

    [Theory]
    [InlineData(64)]   // tensor cores
    [InlineData(128)]  // tensor cores, the 32-row backward tiles
    [InlineData(5)]    // odd head dim: the row kernels
    public void BackwardMatchesCpuAndIsDeterministic(int hd)
    {
        // two training sequences (keys = their own rows) and a chunk of 40 after 33 cached positions, key rows disjoint
        AttentionSpan[] spans = [new(0, 150, 0, 0), new(150, 70, 150, 0), new(220, 40, 400, 33)];
        int t = 260, s = 473;
        var heads = new AttentionHeads(8, 2, hd);
        var (q, qc) = Pair(t, heads.QueryWidth, 10);
        var (k, kc) = Pair(s, heads.KeyValueWidth, 11);
        var (v, vc) = Pair(s, heads.KeyValueWidth, 12);
        var (dOut, dOutc) = Pair(t, heads.QueryWidth, 13);
        // gradients accumulate: start from small non-zero values
        var (_, dq0) = Pair(t, heads.QueryWidth, 14, 0.01f);
        var (_, dk0) = Pair(s, heads.KeyValueWidth, 15, 0.01f);
        var (_, dv0) = Pair(s, heads.KeyValueWidth, 16, 0.01f);

        float[][] RunCuda()
        {
            var dq = Upload(Cuda, dq0, t, heads.QueryWidth);
            var dk = Upload(Cuda, dk0, s, heads.KeyValueWidth);
            var dv = Upload(Cuda, dv0, s, heads.KeyValueWidth);
            Cuda.AttentionBackward(dq, dk, dv, dOut, q, k, v, spans, heads);
            return [Read(Cuda, dq), Read(Cuda, dk), Read(Cuda, dv)];
        }
        var first = RunCuda();
        var second = RunCuda();

        var cq = Upload(_cpu, dq0, t, heads.QueryWidth);
        var ck = Upload(_cpu, dk0, s, heads.KeyValueWidth);
        var cv = Upload(_cpu, dv0, s, heads.KeyValueWidth);
        _cpu.AttentionBackward(cq, ck, cv, Upload(_cpu, dOutc, t, heads.QueryWidth), Upload(_cpu, qc, t, heads.QueryWidth),
            Upload(_cpu, kc, s, heads.KeyValueWidth), Upload(_cpu, vc, s, heads.KeyValueWidth), spans, heads);
        float[][] expected = [Read(_cpu, cq), Read(_cpu, ck), Read(_cpu, cv)];
        float[][] before = [dq0, dk0, dv0];
        string[] names = ["queryGrad", "keysGrad", "valuesGrad"];
        for (int i = 0; i < 3; i++)
        {
            // judge the increments, so the starting values cannot hide a wrong gradient
            AssertClose(Minus(first[i], before[i]), Minus(expected[i], before[i]), BackwardTolerance, $"{names[i]} (head dim {hd})");
            Assert.True(first[i].AsSpan().SequenceEqual(second[i]), $"{names[i]}: two backward runs differ (head dim {hd})");
        }
    }

    // ---- helpers

    private void CompareForward(AttentionHeads heads, int queryRows, int keyRows, AttentionSpan[] spans, int seed)
    {
        var (q, qc) = Pair(queryRows, heads.QueryWidth, seed);
        var (k, kc) = Pair(keyRows, heads.KeyValueWidth, seed + 100);
        var (v, vc) = Pair(keyRows, heads.KeyValueWidth, seed + 200);
        var o = Upload(Cuda, new float[queryRows * heads.QueryWidth], queryRows, heads.QueryWidth);
        Cuda.Attention(o, q, k, v, spans, heads);
        var co = Upload(_cpu, new float[queryRows * heads.QueryWidth], queryRows, heads.QueryWidth);
        _cpu.Attention(co, Upload(_cpu, qc, queryRows, heads.QueryWidth), Upload(_cpu, kc, keyRows, heads.KeyValueWidth),
            Upload(_cpu, vc, keyRows, heads.KeyValueWidth), spans, heads);
        AssertClose(Read(Cuda, o), Read(_cpu, co), ForwardTolerance, $"Attention (head dim {heads.HeadDim})");
    }

    /// <summary>Random values stored on the GPU as bf16, and those stored values (for the CPU backend).</summary>
    private (Tensor Cuda, float[] Stored) Pair(int rows, int cols, int seed, float scale = 1f)
    {
        var values = Numerics.RandomFloats(rows * cols, seed, scale);
        var t = Upload(Cuda, values, rows, cols);
        return (t, Read(Cuda, t));
    }

    private Tensor Upload(IBackend backend, float[] values, int rows, int cols)
    {
        var t = backend.Allocate(backend.ActivationDType, rows, cols);
        _tensors.Add(t);
        backend.Upload(t, values);
        return t;
    }

    private static float[] Read(IBackend backend, Tensor t)
    {
        var values = new float[t.Length];
        backend.Download(values, t);
        return values;
    }

    private static float[] Minus(float[] a, float[] b)
    {
        var d = new float[a.Length];
        for (int i = 0; i < a.Length; i++) d[i] = a[i] - b[i];
        return d;
    }

    private static void AssertClose(float[] actual, float[] expected, double tolerance, string what)
    {
        for (int i = 0; i < actual.Length; i++)
            Assert.True(float.IsFinite(actual[i]), $"{what}: {actual[i]} at index {i}");
        double error = Numerics.RelativeError(actual, expected);
        Assert.True(error <= tolerance, $"{what}: relative error {error:E2} over the tolerance {tolerance:E0}");
    }
}
