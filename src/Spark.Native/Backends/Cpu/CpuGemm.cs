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
            if (m == 1)
            {
                // c[1,N] = a[K] · op(B): op(B) column j is row j of B stored [N,K] (dot form), or column j of B [K,N].
                Gemv(pc, pb, pa, biasPtr, biasStride: 1, n, k, rowsAreContiguous: transB == Transpose.Yes, accumulate, threads);
                return;
            }
            if (n == 1)
            {
                // c[M,1] = op(A) · b[K]: row i of op(A) is row i of A [M,K], or column i of A stored [K,M].
                Gemv(pc, pa, pb, biasPtr, biasStride: 0, m, k, rowsAreContiguous: transA == Transpose.No, accumulate, threads);
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
    // Matrix–vector path (M = 1 or N = 1): memory-bound, so no packing; y[R] = V·x (+ y) (+ bias).

    /// <summary>
    /// y[r] = Σ_k V[r,k]·x[k] (+ y[r]) (+ bias[r·biasStride]) for r &lt; rows. V is stored [rows,K] when
    /// <paramref name="rowsAreContiguous"/> (each output is a dot product), else [K,rows] (a sum of scaled rows).
    /// </summary>
    private static void Gemv(float* y, float* v, float* x, float* bias, nint biasStride, int rows, int k,
        bool rowsAreContiguous, GemmAccumulate accumulate, int threads)
    {
        // Chunks of outputs: a few per thread for balance, at least 256 wide so the axpy form streams long rows.
        int chunk = threads == 1 ? rows : Math.Max(256, CeilDiv(rows, 4 * threads));
        chunk = RoundUp(chunk, 16);
        GemvJob.Rent().Run(y, v, x, bias, biasStride, rows, k, chunk, rowsAreContiguous, accumulate, threads);
    }

    /// <summary>State of one matrix–vector call, cached per calling thread like <see cref="BlockedJob{TKernel}"/>.</summary>
    private sealed class GemvJob
    {
        [ThreadStatic]
        private static GemvJob? s_cached;

        private readonly Action<int> _runChunk;
        private readonly ParallelOptions _parallelOptions = new();
        private float* _y, _v, _x, _bias;
        private nint _biasStride;
        private int _rows, _k, _chunk;
        private bool _rowsAreContiguous;
        private GemmAccumulate _accumulate;

        private GemvJob() => _runChunk = RunChunk;

        public static GemvJob Rent()
        {
            var job = s_cached ?? new GemvJob();
            s_cached = null;
            return job;
        }

        public void Run(float* y, float* v, float* x, float* bias, nint biasStride, int rows, int k, int chunk,
            bool rowsAreContiguous, GemmAccumulate accumulate, int threads)
        {
            _y = y; _v = v; _x = x; _bias = bias; _biasStride = biasStride;
            (_rows, _k, _chunk, _rowsAreContiguous, _accumulate) = (rows, k, chunk, rowsAreContiguous, accumulate);
            try
            {
                int chunks = CeilDiv(rows, chunk);
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
                _y = _v = _x = _bias = null;
                s_cached = this;
            }
        }

        private void RunChunk(int index)
        {
            int r0 = index * _chunk, r1 = Math.Min(_rows, r0 + _chunk), k = _k;
            float* y = _y, v = _v, bias = _bias;
            var xs = new ReadOnlySpan<float>(_x, k);
            bool add = _accumulate == GemmAccumulate.AddToOutput;
            if (_rowsAreContiguous)
            {
                for (int r = r0; r < r1; r++)
                {
                    float dot = TensorPrimitives.Dot(new ReadOnlySpan<float>(v + (nint)r * k, k), xs);
                    if (bias != null)
                        dot += bias[r * _biasStride];
                    y[r] = add ? y[r] + dot : dot;
                }
                return;
            }
            var ys = new Span<float>(y + r0, r1 - r0);
            if (!add)
                ys.Clear();
            if (bias != null)
            {
                for (int r = r0; r < r1; r++)
                    y[r] += bias[r * _biasStride];
            }
            for (int p = 0; p < k; p++)
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(v + (nint)p * _rows + r0, r1 - r0), xs[p], ys, ys);
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
