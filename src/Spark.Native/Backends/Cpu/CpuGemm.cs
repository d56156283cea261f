// CPU single-precision matrix multiply: C = op(A)·op(B) (+ C) (+ bias).
//
// Dimension legend
//   M  rows of C and of op(A)          N  columns of C and of op(B)      K  inner dimension
//   MR, NR  register tile of the micro-kernel (MR rows × NR columns of C live in registers; 12×32 with AVX-512)
//   KC  depth of one packed block      tile  up to 768 rows × 1024 columns of C, the unit of parallel work
//
// Layout (all row-major, dense):
//   A: [M,K] when transA = No, [K,M] when Yes      B: [K,N] when transB = No, [N,K] when Yes
//   C: [M,N]                                        bias: [N] (or empty)
//
// Design (GotoBLAS / BLIS): op(A) is packed into MR-tall micro-panels ([KC][MR] per KC block) and op(B) into
// NR-wide micro-panels ([KC][NR]); packing absorbs both transposes, so one micro-kernel serves all four
// layouts. A chunk of C (up to 16 MiB of packed A and of packed B, usually the whole problem) is packed in one
// parallel pass over micro-panels, then computed in a second parallel pass over tiles; within a tile, KC block
// by KC block, each A micro-panel (L1) runs over the tile's B block (L2). Edge panels are zero-padded and
// stored through a scratch tile, so any M, N, K ≥ 1 works. M = 1 or N = 1 is a matrix–vector product:
// memory-bound, so it skips packing. Results do not depend on the thread count (each element is summed in
// the same order whichever thread computes it).

using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Spark.Native.Backends.Cpu;

/// <summary>Whether an operand of <see cref="CpuGemm.MatMul(Span{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, int, int, Transpose, Transpose, GemmAccumulate)"/> is used as stored or transposed.</summary>
internal enum Transpose
{
    /// <summary>Use the operand as stored: A is [M,K], B is [K,N].</summary>
    No,
    /// <summary>Use the transpose of the stored operand: A is stored [K,M], B is stored [N,K].</summary>
    Yes,
}

/// <summary>Whether a matrix multiply overwrites its output or adds to it.</summary>
internal enum GemmAccumulate
{
    /// <summary>C = op(A)·op(B) (+ bias); the previous contents of C are ignored (even NaN).</summary>
    Overwrite,
    /// <summary>C = C + op(A)·op(B) (+ bias), e.g. for accumulating weight gradients.</summary>
    AddToOutput,
}

/// <summary>Which micro-kernel <see cref="CpuGemm"/> uses; <see cref="Auto"/> picks the widest the machine accelerates.</summary>
internal enum CpuGemmKernel
{
    /// <summary>Vector512 if accelerated, else Vector256 if accelerated, else scalar.</summary>
    Auto,
    /// <summary>Vector512 FMA micro-kernel (AVX-512).</summary>
    Vector512,
    /// <summary>Vector256 micro-kernel (AVX2, FMA when available).</summary>
    Vector256,
    /// <summary>Portable scalar micro-kernel.</summary>
    Scalar,
}

/// <summary>Blocked, packed, multithreaded float32 GEMM for the CPU backend.</summary>
internal static unsafe partial class CpuGemm
{
    // Block sizes for a core with a 48 KiB L1d and a 2 MiB L2 (Sapphire Rapids); measured on 2 cores, the GEMM is
    // flat (within noise) for KC 192–384, tile rows 384–768 and tile columns 512–2048.

    /// <summary>Largest depth of a packed block (KC). The A micro-panel (MR×KC×4 B = 12 KiB) stays in L1 while the
    /// B micro-panels of the tile stream past it (KC×NR×4 B = 32 KiB each).</summary>
    private const int KcMax = 256;

    /// <summary>Largest rows of one tile.</summary>
    private const int McMax = 768;

    /// <summary>Largest columns of one tile: its packed B block (KC×NC×4 B ≤ 1 MiB) stays in L2 while every A
    /// micro-panel of the tile runs over it.</summary>
    private const int NcTileMax = 1024;

    /// <summary>Largest columns of op(B) packed per pass.</summary>
    private const int NcMax = 4096;

    /// <summary>Largest packed A or B chunk, in floats (16 MiB each). A chunk spans as many KC blocks of K as fit,
    /// so that a whole chunk is packed in one parallel pass and computed in a second: two barriers per chunk.</summary>
    private const int PackBudgetFloats = 4 << 20;

    /// <summary>Tiles per thread in a parallel pass: a few, so that a core busy with something else does not hold up the call.</summary>
    private const int TilesPerThread = 4;

    /// <summary>Up to this many rows of C, packing B costs more than it saves (see <see cref="SmallMJob"/>). Measured on
    /// 2 cores for N×K = 4864×896 and 896×4864: the few-row path is 2–3× faster at M = 2–4, 1.5–2× at M = 8, even
    /// at M = 12–16 and slower beyond.</summary>
    private const int SmallMMax = 8;

    /// <summary>Below this many multiply-adds a call runs on the calling thread only.</summary>
    private const long ParallelThresholdFmas = 1 << 18;

    /// <summary>
    /// Effectively computes C = op(A)·op(B), plus the previous C when <paramref name="accumulate"/> is
    /// <see cref="GemmAccumulate.AddToOutput"/>, plus <paramref name="bias"/> broadcast over the rows.
    /// </summary>
    /// <param name="c">C [M,N], the output.</param>
    /// <param name="a">A: [M,K] when <paramref name="transA"/> is No, [K,M] when Yes.</param>
    /// <param name="b">B: [K,N] when <paramref name="transB"/> is No, [N,K] when Yes (the linear layer's weight W [out,in]).</param>
    /// <param name="bias">bias [N], or empty for none.</param>
    /// <param name="m">Rows of C.</param>
    /// <param name="n">Columns of C.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="transA">Whether A is stored transposed.</param>
    /// <param name="transB">Whether B is stored transposed.</param>
    /// <param name="accumulate">Overwrite C or add to it.</param>
    public static void MatMul(Span<float> c, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> bias,
        int m, int n, int k, Transpose transA, Transpose transB, GemmAccumulate accumulate)
        => MatMul(c, a, b, bias, m, n, k, transA, transB, accumulate, CpuGemmKernel.Auto, maxThreads: -1);

    /// <summary>
    /// As the public overload, with the micro-kernel and the number of threads chosen explicitly
    /// (for tests of every code path and for benchmarks).
    /// </summary>
    /// <param name="c">C [M,N], the output.</param>
    /// <param name="a">A: [M,K] when <paramref name="transA"/> is No, [K,M] when Yes.</param>
    /// <param name="b">B: [K,N] when <paramref name="transB"/> is No, [N,K] when Yes.</param>
    /// <param name="bias">bias [N], or empty for none.</param>
    /// <param name="m">Rows of C.</param>
    /// <param name="n">Columns of C.</param>
    /// <param name="k">Inner dimension.</param>
    /// <param name="transA">Whether A is stored transposed.</param>
    /// <param name="transB">Whether B is stored transposed.</param>
    /// <param name="accumulate">Overwrite C or add to it.</param>
    /// <param name="kernel">Micro-kernel; one the machine does not accelerate still runs, slowly.</param>
    /// <param name="maxThreads">Largest number of threads; -1 for <see cref="Environment.ProcessorCount"/>.</param>
    public static void MatMul(Span<float> c, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> bias,
        int m, int n, int k, Transpose transA, Transpose transB, GemmAccumulate accumulate, CpuGemmKernel kernel, int maxThreads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(m, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        CheckLength(c.Length, (long)m * n, nameof(c), $"C [{m},{n}]");
        CheckLength(a.Length, (long)m * k, nameof(a), transA == Transpose.No ? $"A [{m},{k}]" : $"A stored [{k},{m}]");
        CheckLength(b.Length, (long)k * n, nameof(b), transB == Transpose.No ? $"B [{k},{n}]" : $"B stored [{n},{k}]");
        if (!bias.IsEmpty)
            CheckLength(bias.Length, n, nameof(bias), $"bias [{n}] (or empty)");
        if (maxThreads == 0 || maxThreads < -1)
            throw new ArgumentOutOfRangeException(nameof(maxThreads), maxThreads, "Expected -1 (all processors) or a positive thread count.");

        long fmas = (long)m * n * k;
        int threads = fmas < ParallelThresholdFmas ? 1 : maxThreads == -1 ? Environment.ProcessorCount : maxThreads;

        fixed (float* pc = c, pa = a, pb = b, pbias = bias)
        {
            float* biasPtr = bias.IsEmpty ? null : pbias;
            if (n == 1 && m > 1)
            {
                // C[M,1] = op(A)·b[K] is the 1-row problem Cᵀ[1,M] = bᵀ·op(A)ᵀ, whose B operand is A with the
                // opposite flag (A stored [M,K] is op(A)ᵀ stored [N,K]); the one bias value applies to every output.
                SmallMJob.Rent().Run(pc, pb, pa, biasPtr, biasStride: 0, 1, m, k, Transpose.No,
                    transA == Transpose.No ? Transpose.Yes : Transpose.No, accumulate, threads);
                return;
            }
            if (m <= SmallMMax && (transA == Transpose.No || transB == Transpose.No))
            {
                SmallMJob.Rent().Run(pc, pa, pb, biasPtr, biasStride: 1, m, n, k, transA, transB, accumulate, threads);
                return;
            }
            switch (Resolve(kernel))
            {
                case CpuGemmKernel.Vector512:
                    BlockedJob<Avx512Kernel12x32>.Rent().Run(pc, pa, pb, biasPtr, m, n, k, transA, transB, accumulate, threads);
                    break;
                case CpuGemmKernel.Vector256:
                    BlockedJob<Avx2Kernel6x16>.Rent().Run(pc, pa, pb, biasPtr, m, n, k, transA, transB, accumulate, threads);
                    break;
                default:
                    BlockedJob<ScalarKernel4x4>.Rent().Run(pc, pa, pb, biasPtr, m, n, k, transA, transB, accumulate, threads);
                    break;
            }
        }
    }

    /// <summary>The micro-kernel <see cref="CpuGemmKernel.Auto"/> resolves to on this machine.</summary>
    public static CpuGemmKernel Resolve(CpuGemmKernel kernel) => kernel switch
    {
        CpuGemmKernel.Auto when Vector512.IsHardwareAccelerated => CpuGemmKernel.Vector512,
        CpuGemmKernel.Auto when Vector256.IsHardwareAccelerated => CpuGemmKernel.Vector256,
        CpuGemmKernel.Auto => CpuGemmKernel.Scalar,
        _ => kernel,
    };

    /// <summary>The micro-kernel and block sizes <see cref="CpuGemmKernel.Auto"/> uses here, for benchmark reports.</summary>
    public static string Describe()
    {
        (string name, int mr, int nr) = Resolve(CpuGemmKernel.Auto) switch
        {
            CpuGemmKernel.Vector512 => ("Vector512", Avx512Kernel12x32.MR, Avx512Kernel12x32.NR),
            CpuGemmKernel.Vector256 => ("Vector256", Avx2Kernel6x16.MR, Avx2Kernel6x16.NR),
            _ => ("Scalar", ScalarKernel4x4.MR, ScalarKernel4x4.NR),
        };
        return $"{name} {mr}x{nr} micro-kernel, KC {KcMax}, tile ≤ {McMax}x{NcTileMax}";
    }

    private static void CheckLength(long actual, long expected, string paramName, string shape)
    {
        if (actual != expected)
            throw new ArgumentException($"{paramName} must hold {shape} = {expected} floats, but has {actual}.", paramName);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Few-row path (M ≤ SmallMMax; N = 1 is turned into M = 1): the product is memory-bound on B, and packing B
    // would cost as much as the product itself, so B is read in place, once.

    /// <summary>
    /// C[M,N] for a few rows without packing, in chunks of columns (the unit of parallel work). With B stored
    /// [N,K] (a linear layer's weight) each C[i,j] is a dot product of row i of A [M,K] with row j of B, which stays
    /// in L1 while it meets the M rows of A. With B stored [K,N], C[i, chunk] accumulates A(i,p)·B[p, chunk] over
    /// p: the M partial rows of C stay in L1 while each row of B streams past once; A may have either layout.
    /// </summary>
    private sealed class SmallMJob
    {
        [ThreadStatic]
        private static SmallMJob? s_cached;

        private readonly Action<int> _runChunk;
        private readonly ParallelOptions _parallelOptions = new();
        private float* _c, _a, _b, _bias;
        private nint _biasStride, _aRow, _aK;
        private int _m, _n, _k, _chunk;
        private bool _dotForm;
        private GemmAccumulate _accumulate;

        private SmallMJob() => _runChunk = RunChunk;

        public static SmallMJob Rent()
        {
            var job = s_cached ?? new SmallMJob();
            s_cached = null;
            return job;
        }

        /// <summary>As <see cref="MatMul(Span{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, int, int, Transpose, Transpose, GemmAccumulate)"/>,
        /// with bias[j·biasStride] added to column j; B stored [N,K] needs A stored [M,K].</summary>
        public void Run(float* c, float* a, float* b, float* bias, nint biasStride, int m, int n, int k,
            Transpose transA, Transpose transB, GemmAccumulate accumulate, int threads)
        {
            Debug.Assert(transB == Transpose.No || transA == Transpose.No);
            _c = c; _a = a; _b = b; _bias = bias; _biasStride = biasStride;
            _m = m; _n = n; _k = k; _accumulate = accumulate;
            (_aRow, _aK) = transA == Transpose.No ? ((nint)k, (nint)1) : (1, m);
            _dotForm = transB == Transpose.Yes;
            // A few chunks per thread for balance, at least 256 columns so the row form streams long rows of B.
            _chunk = RoundUp(threads == 1 ? n : Math.Max(256, CeilDiv(n, TilesPerThread * threads)), 16);
            try
            {
                int chunks = CeilDiv(n, _chunk);
                if (chunks == 1)
                {
                    RunChunk(0);
                }
                else
                {
                    _parallelOptions.MaxDegreeOfParallelism = threads;
                    Parallel.For(0, chunks, _parallelOptions, _runChunk);
                }
            }
            finally
            {
                _c = _a = _b = _bias = null;
                s_cached = this;
            }
        }

        private void RunChunk(int index)
        {
            int j0 = index * _chunk, j1 = Math.Min(_n, j0 + _chunk), m = _m, n = _n, k = _k;
            bool add = _accumulate == GemmAccumulate.AddToOutput;
            if (_dotForm && m > 1 && Vector512.IsHardwareAccelerated && n >= 4)
            {
                // Blocks of 4 rows of A × 4 rows of B; the last block of each direction overlaps the one before
                // it (for a chunk narrower than 4, reaching into the previous chunk's columns, which it only reads)
                // and stores only what that one did not, so every element is summed the same way whatever the
                // chunking. (For one row, TensorPrimitives.Dot measured faster.)
                float* sums = stackalloc float[16];
                for (int j = j0; j < j1; j += 4)
                {
                    int jb = Math.Min(j, j1 - 4);
                    for (int i = 0; i < m; i += 4)
                    {
                        // Fewer than 4 rows: the missing ones repeat the last row (their loads hit L1, and the
                        // product stays bound by reading B).
                        int ib = Math.Max(0, Math.Min(i, m - 4));
                        float* a0 = _a + (nint)ib * k;
                        float* a1 = _a + (nint)Math.Min(ib + 1, m - 1) * k;
                        float* a2 = _a + (nint)Math.Min(ib + 2, m - 1) * k;
                        float* a3 = _a + (nint)Math.Min(ib + 3, m - 1) * k;
                        Dot4x4(a0, a1, a2, a3, _b + (nint)jb * k, k, sums);
                        StoreDots(sums, ib, jb, Math.Min(4, m), firstRow: i, firstCol: j, add);
                    }
                }
                return;
            }
            if (_dotForm)
            {
                for (int j = j0; j < j1; j++)
                {
                    var bj = new ReadOnlySpan<float>(_b + (nint)j * k, k);
                    float biasJ = _bias == null ? 0f : _bias[j * _biasStride];
                    for (int i = 0; i < m; i++)
                    {
                        float value = TensorPrimitives.Dot(new ReadOnlySpan<float>(_a + (nint)i * k, k), bj) + biasJ;
                        float* dst = _c + (nint)i * n + j;
                        *dst = add ? *dst + value : value;
                    }
                }
                return;
            }
            int width = j1 - j0;
            for (int i = 0; i < m; i++)
            {
                float* ci = _c + (nint)i * n + j0;
                if (!add)
                    new Span<float>(ci, width).Clear();
                if (_bias != null)
                {
                    for (int j = 0; j < width; j++)
                        ci[j] += _bias[(j0 + j) * _biasStride];
                }
            }
            for (int p = 0; p < k; p++)
            {
                var bp = new ReadOnlySpan<float>(_b + (nint)p * n + j0, width);
                for (int i = 0; i < m; i++)
                {
                    var ci = new Span<float>(_c + (nint)i * n + j0, width);
                    TensorPrimitives.MultiplyAdd(bp, _a[i * _aRow + p * _aK], ci, ci);
                }
            }
        }

        /// <summary>Stores sums[r·4 + t] (+ bias) into C[row + r, col + t] for r &lt; rows, t &lt; 4, skipping
        /// rows before <paramref name="firstRow"/> and columns before <paramref name="firstCol"/>.</summary>
        private void StoreDots(float* sums, int row, int col, int rows, int firstRow, int firstCol, bool add)
        {
            for (int r = Math.Max(0, firstRow - row); r < rows; r++)
            {
                for (int t = Math.Max(0, firstCol - col); t < 4; t++)
                {
                    float value = sums[r * 4 + t] + (_bias == null ? 0f : _bias[(col + t) * _biasStride]);
                    float* dst = _c + (nint)(row + r) * _n + col + t;
                    *dst = add ? *dst + value : value;
                }
            }
        }
    }

    /// <summary>
    /// sums[i·4 + j] = Σ_p a_i[p]·b[j·k + p] for i, j &lt; 4: a 4×4 block of dot products of length k that shares
    /// every loaded vector of A and of B (16 accumulators + 4 + 1 of the 32 zmm registers).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4x4(float* a0, float* a1, float* a2, float* a3, float* b, int k, float* sums)
    {
        Vector512<float> s00 = default, s01 = default, s02 = default, s03 = default;
        Vector512<float> s10 = default, s11 = default, s12 = default, s13 = default;
        Vector512<float> s20 = default, s21 = default, s22 = default, s23 = default;
        Vector512<float> s30 = default, s31 = default, s32 = default, s33 = default;
        float* b1 = b + k, b2 = b1 + k, b3 = b2 + k;
        int p = 0;
        for (; p + 16 <= k; p += 16)
        {
            Vector512<float> w0 = Vector512.Load(b + p), w1 = Vector512.Load(b1 + p);
            Vector512<float> w2 = Vector512.Load(b2 + p), w3 = Vector512.Load(b3 + p);
            Vector512<float> x = Vector512.Load(a0 + p);
            s00 = Vector512.FusedMultiplyAdd(x, w0, s00); s01 = Vector512.FusedMultiplyAdd(x, w1, s01); s02 = Vector512.FusedMultiplyAdd(x, w2, s02); s03 = Vector512.FusedMultiplyAdd(x, w3, s03);
            x = Vector512.Load(a1 + p);
            s10 = Vector512.FusedMultiplyAdd(x, w0, s10); s11 = Vector512.FusedMultiplyAdd(x, w1, s11); s12 = Vector512.FusedMultiplyAdd(x, w2, s12); s13 = Vector512.FusedMultiplyAdd(x, w3, s13);
            x = Vector512.Load(a2 + p);
            s20 = Vector512.FusedMultiplyAdd(x, w0, s20); s21 = Vector512.FusedMultiplyAdd(x, w1, s21); s22 = Vector512.FusedMultiplyAdd(x, w2, s22); s23 = Vector512.FusedMultiplyAdd(x, w3, s23);
            x = Vector512.Load(a3 + p);
            s30 = Vector512.FusedMultiplyAdd(x, w0, s30); s31 = Vector512.FusedMultiplyAdd(x, w1, s31); s32 = Vector512.FusedMultiplyAdd(x, w2, s32); s33 = Vector512.FusedMultiplyAdd(x, w3, s33);
        }
        sums[0] = Vector512.Sum(s00); sums[1] = Vector512.Sum(s01); sums[2] = Vector512.Sum(s02); sums[3] = Vector512.Sum(s03);
        sums[4] = Vector512.Sum(s10); sums[5] = Vector512.Sum(s11); sums[6] = Vector512.Sum(s12); sums[7] = Vector512.Sum(s13);
        sums[8] = Vector512.Sum(s20); sums[9] = Vector512.Sum(s21); sums[10] = Vector512.Sum(s22); sums[11] = Vector512.Sum(s23);
        sums[12] = Vector512.Sum(s30); sums[13] = Vector512.Sum(s31); sums[14] = Vector512.Sum(s32); sums[15] = Vector512.Sum(s33);
        for (; p < k; p++)
        {
            for (int j = 0; j < 4; j++)
            {
                float bj = b[j * k + p];
                sums[j] += a0[p] * bj;
                sums[4 + j] += a1[p] * bj;
                sums[8 + j] += a2[p] * bj;
                sums[12 + j] += a3[p] * bj;
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Blocked path.

    /// <summary>
    /// Per-call state of the blocked GEMM plus its packing buffers; one instance is cached per calling thread
    /// (rented while in use, so a re-entrant call gets its own) and its buffers grow to the largest call seen.
    /// </summary>
    private sealed class BlockedJob<TKernel> where TKernel : struct, IMicroKernel
    {
        [ThreadStatic]
        private static BlockedJob<TKernel>? s_cached;

        private readonly Action<int> _packPanel;
        private readonly Action<int> _computeTile;
        private readonly ParallelOptions _parallelOptions = new();
        private float[]? _aBuffer, _bBuffer;
        private float* _aPack, _bPack;

        // The call: element (i,p) of op(A) is at _a[i·_aRow + p·_aK]; element (p,j) of op(B) at _b[p·_bK + j·_bCol].
        private float* _a, _b, _c, _bias;
        private nint _aRow, _aK, _bCol, _bK;
        private int _n, _k, _kcBlock;
        private GemmAccumulate _accumulate;

        // The current chunk: rows [_ic, _ic+_mc), columns [_jc, _jc+_nc), depth [_kc0, _kc0+_kChunk) in KC blocks.
        private int _ic, _mc, _jc, _nc, _kc0, _kChunk, _kBlocks;
        private int _aPanels, _bPanels, _bPanelsToPack;
        private nint _aBlockStride, _bBlockStride;
        private int _tilePanelsM, _tilePanelsN, _tilesN;

        private BlockedJob()
        {
            _packPanel = PackPanel;
            _computeTile = ComputeTile;
        }

        public static BlockedJob<TKernel> Rent()
        {
            var job = s_cached ?? new BlockedJob<TKernel>();
            s_cached = null;
            return job;
        }

        public void Run(float* c, float* a, float* b, float* bias, int m, int n, int k,
            Transpose transA, Transpose transB, GemmAccumulate accumulate, int threads)
        {
            int mr = TKernel.MR, nr = TKernel.NR;
            _a = a; _b = b; _c = c; _bias = bias; _n = n; _k = k; _accumulate = accumulate;
            (_aRow, _aK) = transA == Transpose.No ? ((nint)k, (nint)1) : (1, m);
            (_bCol, _bK) = transB == Transpose.No ? ((nint)1, (nint)n) : (k, 1);

            // Equal-sized pieces rather than full ones plus a sliver: K = 300 is 150 + 150, not 256 + 44.
            int kBlocks = CeilDiv(k, KcMax);
            _kcBlock = CeilDiv(k, kBlocks);
            int ncChunk = RoundUp(CeilDiv(n, CeilDiv(n, NcMax)), nr);
            int blocksPerChunk = Math.Max(1, PackBudgetFloats / (ncChunk * _kcBlock));
            blocksPerChunk = CeilDiv(kBlocks, CeilDiv(kBlocks, blocksPerChunk));
            int kChunkMax = blocksPerChunk * _kcBlock;
            int mcMax = Math.Max(mr, PackBudgetFloats / kChunkMax);
            int mcChunk = RoundUp(CeilDiv(m, CeilDiv(m, mcMax)), mr);
            EnsureBuffers((long)Math.Min(mcChunk, RoundUp(m, mr)) * kChunkMax, (long)Math.Min(ncChunk, RoundUp(n, nr)) * kChunkMax);
            _parallelOptions.MaxDegreeOfParallelism = threads;

            try
            {
                for (_jc = 0; _jc < n; _jc += ncChunk)
                {
                    _nc = Math.Min(ncChunk, n - _jc);
                    _bPanels = CeilDiv(_nc, nr);
                    _bBlockStride = (nint)_bPanels * nr * _kcBlock;
                    for (_kc0 = 0; _kc0 < k; _kc0 += kChunkMax)
                    {
                        _kChunk = Math.Min(kChunkMax, k - _kc0);
                        _kBlocks = CeilDiv(_kChunk, _kcBlock);
                        for (_ic = 0; _ic < m; _ic += mcChunk)
                        {
                            _mc = Math.Min(mcChunk, m - _ic);
                            _aPanels = CeilDiv(_mc, mr);
                            _aBlockStride = (nint)_aPanels * mr * _kcBlock;
                            _bPanelsToPack = _ic == 0 ? _bPanels : 0;
                            int tiles = PlanTiles(threads);
                            For(_bPanelsToPack + _aPanels, _packPanel, threads);
                            For(tiles, _computeTile, threads);
                        }
                    }
                }
            }
            finally
            {
                _a = _b = _c = _bias = null;
                s_cached = this;
            }
        }

        /// <summary>Cuts the current chunk into tiles of whole micro-panels; returns the tile count.</summary>
        private int PlanTiles(int threads)
        {
            int mr = TKernel.MR, nr = TKernel.NR;
            int pm = Math.Min(_aPanels, Math.Max(1, McMax / mr)), pn = Math.Min(_bPanels, Math.Max(1, NcTileMax / nr));
            // A few tiles per thread so that a core busy with something else does not stall the call, but never
            // thinner than 8 row panels or 4 column panels: each tile reloads its blocks into L2.
            int target = threads == 1 ? 1 : TilesPerThread * threads;
            while (CeilDiv(_aPanels, pm) * CeilDiv(_bPanels, pn) < target)
            {
                if (pm * mr >= pn * nr && pm >= 16)
                    pm = CeilDiv(pm, 2);
                else if (pn >= 8)
                    pn = CeilDiv(pn, 2);
                else if (pm >= 16)
                    pm = CeilDiv(pm, 2);
                else
                    break;
            }
            // Even out the tiles: 86 panels in 2 tiles are 43 + 43, not 64 + 22.
            _tilePanelsM = CeilDiv(_aPanels, CeilDiv(_aPanels, pm));
            _tilePanelsN = CeilDiv(_bPanels, CeilDiv(_bPanels, pn));
            _tilesN = CeilDiv(_bPanels, _tilePanelsN);
            return CeilDiv(_aPanels, _tilePanelsM) * _tilesN;
        }

        private void For(int count, Action<int> body, int threads)
        {
            if (threads == 1 || count == 1)
            {
                for (int i = 0; i < count; i++)
                    body(i);
            }
            else
            {
                Parallel.For(0, count, _parallelOptions, body);
            }
        }

        /// <summary>
        /// Packs B micro-panel <paramref name="index"/> (or A micro-panel index − _bPanelsToPack) for every KC block
        /// of the chunk. Block q of panel p lies at q·blockStride + p·width·kc, kc being block q's depth.
        /// </summary>
        private void PackPanel(int index)
        {
            for (int q = 0; q < _kBlocks; q++)
            {
                int p0 = _kc0 + q * _kcBlock, kc = Math.Min(_kcBlock, _k - p0);
                if (index < _bPanelsToPack)
                {
                    int j = index * TKernel.NR;
                    Pack(_b + (_jc + j) * _bCol + p0 * _bK, _bCol, _bK, Math.Min(TKernel.NR, _nc - j), kc,
                        TKernel.NR, _bPack + q * _bBlockStride + (nint)j * kc);
                }
                else
                {
                    int i = (index - _bPanelsToPack) * TKernel.MR;
                    Pack(_a + (_ic + i) * _aRow + p0 * _aK, _aRow, _aK, Math.Min(TKernel.MR, _mc - i), kc,
                        TKernel.MR, _aPack + q * _aBlockStride + (nint)i * kc);
                }
            }
        }

        /// <summary>
        /// One tile, KC block by KC block: each A micro-panel (in L1) runs over all B micro-panels of the tile
        /// (the tile's B block, in L2). Measured a few percent faster than the opposite order (B micro-panel in L1).
        /// </summary>
        private void ComputeTile(int tile)
        {
            int pm0 = tile / _tilesN * _tilePanelsM, pm1 = Math.Min(_aPanels, pm0 + _tilePanelsM);
            int pn0 = tile % _tilesN * _tilePanelsN, pn1 = Math.Min(_bPanels, pn0 + _tilePanelsN);
            float* edge = stackalloc float[TKernel.MR * TKernel.NR];
            for (int q = 0; q < _kBlocks; q++)
            {
                for (int pm = pm0; pm < pm1; pm++)
                {
                    for (int pn = pn0; pn < pn1; pn++)
                        RunPanel(q, pm, pn, edge);
                }
            }
        }

        /// <summary>Runs the micro-kernel on KC block <paramref name="q"/> of A micro-panel <paramref name="pm"/> × B micro-panel <paramref name="pn"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void RunPanel(int q, int pm, int pn, float* edge)
        {
            int mr = TKernel.MR, nr = TKernel.NR;
            int p0 = _kc0 + q * _kcBlock, kc = Math.Min(_kcBlock, _k - p0);
            bool first = p0 == 0;
            bool addToC = !first || _accumulate == GemmAccumulate.AddToOutput;
            nint ldc = _n;
            int j = pn * nr, col = _jc + j, cols = Math.Min(nr, _nc - j);
            int i = pm * mr, rows = Math.Min(mr, _mc - i);
            float* bPanel = _bPack + q * _bBlockStride + (nint)j * kc;
            float* aPanel = _aPack + q * _aBlockStride + (nint)i * kc;
            float* bias = first && _bias != null ? _bias + col : null;
            float* cTile = _c + (_ic + i) * ldc + col;
            if (rows == mr && cols == nr)
            {
                TKernel.Run(kc, aPanel, bPanel, cTile, ldc, bias, addToC);
                return;
            }
            TKernel.Run(kc, aPanel, bPanel, edge, nr, null, addToC: false);
            for (int r = 0; r < rows; r++)
            {
                for (int t = 0; t < cols; t++)
                {
                    float value = edge[r * nr + t];
                    if (bias != null)
                        value += bias[t];
                    float* dst = cTile + r * ldc + t;
                    *dst = addToC ? *dst + value : value;
                }
            }
        }

        private void EnsureBuffers(long aFloats, long bFloats)
        {
            Ensure(ref _aBuffer, ref _aPack, aFloats);
            Ensure(ref _bBuffer, ref _bPack, bFloats);

            static void Ensure(ref float[]? buffer, ref float* aligned, long floats)
            {
                if (buffer != null && buffer.Length - 16 >= floats)
                    return;
                // Pinned so the aligned pointer stays valid; 16 spare floats to align to 64 bytes.
                buffer = GC.AllocateUninitializedArray<float>(checked((int)floats + 16), pinned: true);
                nint address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
                aligned = (float*)((address + 63) & ~(nint)63);
            }
        }
    }

    /// <summary>
    /// Packs a panel of <paramref name="rows"/> ≤ <paramref name="width"/> lines of a strided operand into
    /// dst[p·width + r] for p &lt; kc, zero-padding the lines past <paramref name="rows"/>. Element (r,p) of the
    /// source is src[r·rowStride + p·kStride]; one of the strides is 1.
    /// </summary>
    private static void Pack(float* src, nint rowStride, nint kStride, int rows, int kc, int width, float* dst)
    {
        if (kStride == 1 && rowStride != 1)
            PackTransposed(src, rowStride, rows, kc, width, dst);
        else
            PackCopy(src, kStride, rows, kc, width, dst);
        if (rows < width)
        {
            for (int p = 0; p < kc; p++)
                new Span<float>(dst + p * width + rows, width - rows).Clear();
        }
    }

    /// <summary>Lines contiguous along r: each k step copies <paramref name="rows"/> adjacent floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // fully optimized from the first call: tier-0 is 3× slower
    private static void PackCopy(float* src, nint kStride, int rows, int kc, int width, float* dst)
    {
        for (int p = 0; p < kc; p++, src += kStride, dst += width)
        {
            int r = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                for (; r + 8 <= rows; r += 8)
                    Vector256.Store(Vector256.Load(src + r), dst + r);
            }
            for (; r < rows; r++)
                dst[r] = src[r];
        }
    }

    /// <summary>
    /// Lines contiguous along k: a transpose, done in 8×8 (AVX) and 4×4 (SSE) register blocks, reading eight or
    /// four lines at once and writing eight or four adjacent floats per k.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // fully optimized from the first call: tier-0 is 3× slower
    private static void PackTransposed(float* src, nint rowStride, int rows, int kc, int width, float* dst)
    {
        int r = 0;
        if (Avx.IsSupported)
        {
            for (; r + 8 <= rows; r += 8)
            {
                float* s = src + r * rowStride;
                float* d = dst + r;
                int p = 0;
                for (; p + 8 <= kc; p += 8, d += 8 * width)
                    Transpose8x8(s + p, rowStride, d, width);
                for (; p < kc; p++, d += width)
                {
                    for (int t = 0; t < 8; t++)
                        d[t] = s[t * rowStride + p];
                }
            }
        }
        if (Sse.IsSupported)
        {
            for (; r + 4 <= rows; r += 4)
            {
                float* s = src + r * rowStride;
                float* d = dst + r;
                int p = 0;
                for (; p + 4 <= kc; p += 4, d += 4 * width)
                    Transpose4x4(s + p, rowStride, d, width);
                for (; p < kc; p++, d += width)
                {
                    for (int t = 0; t < 4; t++)
                        d[t] = s[t * rowStride + p];
                }
            }
        }
        for (; r < rows; r++)
        {
            float* s = src + r * rowStride;
            float* d = dst + r;
            for (int p = 0; p < kc; p++, d += width)
                *d = s[p];
        }
    }

    /// <summary>d[q·width + t] = s[t·stride + q] for t, q &lt; 8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(float* s, nint stride, float* d, int width)
    {
        Vector256<float> r0 = Avx.LoadVector256(s), r1 = Avx.LoadVector256(s + stride);
        Vector256<float> r2 = Avx.LoadVector256(s + 2 * stride), r3 = Avx.LoadVector256(s + 3 * stride);
        Vector256<float> r4 = Avx.LoadVector256(s + 4 * stride), r5 = Avx.LoadVector256(s + 5 * stride);
        Vector256<float> r6 = Avx.LoadVector256(s + 6 * stride), r7 = Avx.LoadVector256(s + 7 * stride);
        // Interleave pairs of lines, then pairs of pairs (within 128-bit lanes), then swap lanes.
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1);
        Vector256<float> t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5);
        Vector256<float> t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE);
        Vector256<float> u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(d, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(d + width, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(d + 2 * width, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(d + 3 * width, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(d + 4 * width, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(d + 5 * width, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(d + 6 * width, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(d + 7 * width, Avx.Permute2x128(u3, u7, 0x31));
    }

    /// <summary>d[q·width + t] = s[t·stride + q] for t, q &lt; 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose4x4(float* s, nint stride, float* d, int width)
    {
        Vector128<float> r0 = Sse.LoadVector128(s), r1 = Sse.LoadVector128(s + stride);
        Vector128<float> r2 = Sse.LoadVector128(s + 2 * stride), r3 = Sse.LoadVector128(s + 3 * stride);
        Vector128<float> t0 = Sse.UnpackLow(r0, r1), t1 = Sse.UnpackLow(r2, r3);
        Vector128<float> t2 = Sse.UnpackHigh(r0, r1), t3 = Sse.UnpackHigh(r2, r3);
        Sse.Store(d, Sse.MoveLowToHigh(t0, t1));
        Sse.Store(d + width, Sse.MoveHighToLow(t1, t0));
        Sse.Store(d + 2 * width, Sse.MoveLowToHigh(t2, t3));
        Sse.Store(d + 3 * width, Sse.MoveHighToLow(t3, t2));
    }

    private static int CeilDiv(int x, int y) => (x + y - 1) / y;

    private static int RoundUp(int x, int multiple) => CeilDiv(x, multiple) * multiple;
}
