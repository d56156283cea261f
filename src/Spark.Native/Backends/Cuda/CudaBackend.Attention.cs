using Spark.Native.Generation;
using Spark.Native.Interop;
using Spark.Native.Tensors;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Backends.Cuda;

// Fused causal attention (kernels/attention.cu, kernels/attention_backward.cu): batched variable-length spans, GQA,
// prefill, training and decode against the KV cache, each op in a fixed number of launches whatever the span count.
// The spans become int work tables (one UploadInts per op); the kernels never see a span. Three paths:
//   tensor cores  HD a multiple of 16 up to 128 (backward: 64 and 128), operands 16-byte aligned: flash-style tiles
//   split decode  every span at most DecodeMaxRows rows and the longest at least DecodeMinKeys keys: each row's keys
//                 split into DecodeSplitKeys chunks over many warps, fp32 partials in scratch, then a combine kernel
//   rows          anything else (odd head dims, unaligned views): one warp per (row, head), online softmax
// The backward recomputes the softmax statistics (lse, D = dO·O) into fp32 scratch, then dK/dV per key tile and dQ per
// query tile, without atomics, so two runs give the same bits.
internal sealed unsafe partial class CudaBackend
{
    /// <summary>Head dims with a tensor-core forward (attention_forward_hd{HD}).</summary>
    private static readonly int[] TensorCoreHeadDims = [16, 32, 48, 64, 80, 96, 112, 128];

    /// <summary>
    /// Head dims with a tensor-core backward (attention_dkdv_hd{HD}, attention_dq_hd{HD}); the others take the row
    /// kernels. Fewer than the forward's because every instance adds seconds to the first NVRTC compile.
    /// </summary>
    private static readonly int[] TensorCoreBackwardHeadDims = [64, 128];

    private const int AttentionTileRows = 64;   // query rows of a forward / dQ block (ATTN_TC_ROWS, ATTN_BWD_ROWS)
    private const int AttentionKeyTile = 64;    // keys of a dK/dV block (ATTN_BWD_KEYS)
    private const uint AttentionThreads = 128;  // 4 warps in every attention kernel
    private const int DecodeMaxRows = 4;
    private const int DecodeMinKeys = 1024;
    private const int DecodeSplitKeys = 512;

    private static (string File, string[] Functions)[] AttentionKernels =>
    [
        ("attention.cu", [.. TensorCoreHeadDims.Select(hd => $"attention_forward_hd{hd}"),
            "attention_rows_forward", "attention_rows_partial", "attention_rows_stats", "attention_combine"]),
        ("attention_backward.cu", [.. TensorCoreBackwardHeadDims.SelectMany(hd => new[] { $"attention_dkdv_hd{hd}", $"attention_dq_hd{hd}" }),
            "attention_rows_dq", "attention_rows_dkdv"]),
    ];

    private static OpKind[] AttentionOps => [OpKind.Attention, OpKind.AttentionBackward];

    private CudaMemoryHandle? _attentionScratch;
    private long _attentionScratchBytes;
    private readonly Dictionary<string, int> _attentionSharedOptIn = new(StringComparer.Ordinal);

    private enum AttentionPath { TensorCore, SplitDecode, Rows }

    public void Attention(Tensor output, Tensor query, Tensor keys, Tensor values, ReadOnlySpan<AttentionSpan> spans, AttentionHeads heads)
    {
        ulong o = Activation(output, nameof(Attention), nameof(output));
        ulong q = Activation(query, nameof(Attention), nameof(query));
        ulong k = Activation(keys, nameof(Attention), nameof(keys));
        ulong v = Activation(values, nameof(Attention), nameof(values));
        AttentionChecks.Validate(nameof(Attention), query, keys, values, spans, heads, disjointKeys: false);
        Check.SameShape(query, output, nameof(output));
        int maxLength = 0, longest = 0;
        foreach (var s in spans)
        {
            if (s.Length == 0) continue;
            maxLength = Math.Max(maxLength, s.Length);
            longest = Math.Max(longest, s.KeyCount);
        }
        if (maxLength == 0) return;

        int nh = heads.QueryHeads, nkv = heads.KeyValueHeads, hd = heads.HeadDim;
        float scaleLog2 = ScaleLog2(hd);
        bool aligned = Aligned16(o, q, k, v);
        int vec = hd % 8 == 0 && aligned ? 1 : 0;
        var path = maxLength <= DecodeMaxRows && longest >= DecodeMinKeys ? AttentionPath.SplitDecode
            : UseTensorCores(TensorCoreHeadDims, hd, aligned, ForwardShared(hd)) ? AttentionPath.TensorCore
            : AttentionPath.Rows;
        switch (path)
        {
            case AttentionPath.TensorCore:
            {
                int[] table = TileItems(spans);
                ulong items = UploadInts(table);
                string kernel = $"attention_forward_hd{hd}";
                ulong none = 0;
                int stats = 0;
                Launch(kernel, ((uint)(table.Length / 4), (uint)nh, 1), AttentionThreads, SharedFor(kernel, ForwardShared(hd)),
                    (IntPtr)(&o), (IntPtr)(&none), (IntPtr)(&none), (IntPtr)(&none), (IntPtr)(&q), (IntPtr)(&k), (IntPtr)(&v),
                    (IntPtr)(&items), (IntPtr)(&nh), (IntPtr)(&nkv), (IntPtr)(&scaleLog2), (IntPtr)(&stats));
                break;
            }
            case AttentionPath.Rows:
            {
                int[] table = RowItems(spans);
                ulong items = UploadInts(table);
                int count = table.Length / 4;
                Launch("attention_rows_forward", (WarpBlocks(count, nh), 1, 1), AttentionThreads, 0,
                    (IntPtr)(&o), (IntPtr)(&q), (IntPtr)(&k), (IntPtr)(&v), (IntPtr)(&items), (IntPtr)(&count),
                    (IntPtr)(&nh), (IntPtr)(&nkv), (IntPtr)(&hd), (IntPtr)(&scaleLog2), (IntPtr)(&vec));
                break;
            }
            case AttentionPath.SplitDecode:
            {
                // one table: the split items (partial slot = item index), then the combine items of each query row
                var (table, splitCount, combineCount) = SplitItems(spans);
                ulong items = UploadInts(table);
                ulong combineItems = items + (ulong)splitCount * 4 * sizeof(int);
                ulong partial = AttentionScratch((long)splitCount * nh * (hd + 2));
                Launch("attention_rows_partial", (WarpBlocks(splitCount, nh), 1, 1), AttentionThreads, 0,
                    (IntPtr)(&partial), (IntPtr)(&q), (IntPtr)(&k), (IntPtr)(&v), (IntPtr)(&items), (IntPtr)(&splitCount),
                    (IntPtr)(&nh), (IntPtr)(&nkv), (IntPtr)(&hd), (IntPtr)(&scaleLog2), (IntPtr)(&vec));
                Launch("attention_combine", (WarpBlocks(combineCount, nh), 1, 1), AttentionThreads, 0,
                    (IntPtr)(&o), (IntPtr)(&partial), (IntPtr)(&combineItems), (IntPtr)(&combineCount), (IntPtr)(&nh), (IntPtr)(&hd));
                break;
            }
        }
    }

    public void AttentionBackward(Tensor queryGrad, Tensor keysGrad, Tensor valuesGrad, Tensor outputGrad,
        Tensor query, Tensor keys, Tensor values, ReadOnlySpan<AttentionSpan> spans, AttentionHeads heads)
    {
        const string op = nameof(AttentionBackward);
        ulong dq = Activation(queryGrad, op, nameof(queryGrad));
        ulong dk = Activation(keysGrad, op, nameof(keysGrad));
        ulong dv = Activation(valuesGrad, op, nameof(valuesGrad));
        ulong dout = Activation(outputGrad, op, nameof(outputGrad));
        ulong q = Activation(query, op, nameof(query));
        ulong k = Activation(keys, op, nameof(keys));
        ulong v = Activation(values, op, nameof(values));
        AttentionChecks.Validate(op, query, keys, values, spans, heads, disjointKeys: true);
        Check.SameShape(query, queryGrad, nameof(queryGrad));
        Check.SameShape(query, outputGrad, nameof(outputGrad));
        Check.SameShape(keys, keysGrad, nameof(keysGrad));
        Check.SameShape(keys, valuesGrad, nameof(valuesGrad));
        bool any = false;
        foreach (var s in spans) any |= s.Length > 0;
        if (!any) return;

        int nh = heads.QueryHeads, nkv = heads.KeyValueHeads, hd = heads.HeadDim;
        float scaleLog2 = ScaleLog2(hd), scale = 1f / MathF.Sqrt(hd);
        bool aligned = Aligned16(dq, dk, dv, dout, q, k, v);
        int vec = hd % 8 == 0 && aligned ? 1 : 0;
        // lse [T·NH] then D [T·NH], indexed by (query row, head)
        long statCount = (long)query.Shape[0] * nh;
        ulong lse = AttentionScratch(2 * statCount);
        ulong delta = lse + (ulong)(statCount * sizeof(float));

        bool tensorCores = UseTensorCores(TensorCoreBackwardHeadDims, hd, aligned, ForwardShared(hd), DkDvShared(hd), DqShared(hd));
        int[] queryTable = tensorCores ? TileItems(spans) : RowItems(spans);
        int[] keyTable = tensorCores ? KeyTileItems(spans) : KeyRowItems(spans);
        ulong queryItems = UploadInts([.. queryTable, .. keyTable]);
        ulong keyItems = queryItems + (ulong)queryTable.Length * sizeof(int);
        if (tensorCores)
        {
            uint tiles = (uint)(queryTable.Length / 4), keyTiles = (uint)(keyTable.Length / 8);
            string forward = $"attention_forward_hd{hd}", dkdv = $"attention_dkdv_hd{hd}", dqKernel = $"attention_dq_hd{hd}";
            ulong none = 0;
            int stats = 1;
            Launch(forward, (tiles, (uint)nh, 1), AttentionThreads, SharedFor(forward, ForwardShared(hd)),
                (IntPtr)(&none), (IntPtr)(&lse), (IntPtr)(&delta), (IntPtr)(&dout), (IntPtr)(&q), (IntPtr)(&k), (IntPtr)(&v),
                (IntPtr)(&queryItems), (IntPtr)(&nh), (IntPtr)(&nkv), (IntPtr)(&scaleLog2), (IntPtr)(&stats));
            Launch(dkdv, (keyTiles, (uint)nkv, 1), AttentionThreads, SharedFor(dkdv, DkDvShared(hd)),
                (IntPtr)(&dk), (IntPtr)(&dv), (IntPtr)(&dout), (IntPtr)(&q), (IntPtr)(&k), (IntPtr)(&v), (IntPtr)(&lse), (IntPtr)(&delta),
                (IntPtr)(&keyItems), (IntPtr)(&nh), (IntPtr)(&nkv), (IntPtr)(&scaleLog2), (IntPtr)(&scale));
            Launch(dqKernel, (tiles, (uint)nh, 1), AttentionThreads, SharedFor(dqKernel, DqShared(hd)),
                (IntPtr)(&dq), (IntPtr)(&dout), (IntPtr)(&q), (IntPtr)(&k), (IntPtr)(&v), (IntPtr)(&lse), (IntPtr)(&delta),
                (IntPtr)(&queryItems), (IntPtr)(&nh), (IntPtr)(&nkv), (IntPtr)(&scaleLog2), (IntPtr)(&scale));
            return;
        }
        int rows = queryTable.Length / 4, keyRows = keyTable.Length / 4;
        Launch("attention_rows_stats", (WarpBlocks(rows, nh), 1, 1), AttentionThreads, 0,
            (IntPtr)(&lse), (IntPtr)(&delta), (IntPtr)(&dout), (IntPtr)(&q), (IntPtr)(&k), (IntPtr)(&v), (IntPtr)(&queryItems),
            (IntPtr)(&rows), (IntPtr)(&nh), (IntPtr)(&nkv), (IntPtr)(&hd), (IntPtr)(&scaleLog2), (IntPtr)(&vec));
        Launch("attention_rows_dkdv", (WarpBlocks(keyRows, nkv), 1, 1), AttentionThreads, 0,
            (IntPtr)(&dk), (IntPtr)(&dv), (IntPtr)(&dout), (IntPtr)(&q), (IntPtr)(&k), (IntPtr)(&v), (IntPtr)(&lse), (IntPtr)(&delta),
            (IntPtr)(&keyItems), (IntPtr)(&keyRows), (IntPtr)(&nh), (IntPtr)(&nkv), (IntPtr)(&hd), (IntPtr)(&scaleLog2), (IntPtr)(&scale), (IntPtr)(&vec));
        Launch("attention_rows_dq", (WarpBlocks(rows, nh), 1, 1), AttentionThreads, 0,
            (IntPtr)(&dq), (IntPtr)(&dout), (IntPtr)(&q), (IntPtr)(&k), (IntPtr)(&v), (IntPtr)(&lse), (IntPtr)(&delta),
            (IntPtr)(&queryItems), (IntPtr)(&rows), (IntPtr)(&nh), (IntPtr)(&nkv), (IntPtr)(&hd), (IntPtr)(&scaleLog2), (IntPtr)(&scale), (IntPtr)(&vec));
    }

    // ---- work tables (layouts documented at the top of the .cu files)

    /// <summary>Tile items (qRow0, rows ≤ 64, keyRow, pos0), the tiles with the most keys first (they run longest).</summary>
    private static int[] TileItems(ReadOnlySpan<AttentionSpan> spans)
    {
        var tiles = new List<(int QueryRow, int Rows, int KeyRow, int Position)>();
        foreach (var s in spans)
            for (int i0 = 0; i0 < s.Length; i0 += AttentionTileRows)
                tiles.Add((s.QueryRow + i0, Math.Min(AttentionTileRows, s.Length - i0), s.KeyRow, s.StartPosition + i0));
        tiles.Sort((a, b) => (b.Position + b.Rows).CompareTo(a.Position + a.Rows));
        var table = new int[tiles.Count * 4];
        for (int i = 0; i < tiles.Count; i++)
            (table[4 * i], table[4 * i + 1], table[4 * i + 2], table[4 * i + 3]) = tiles[i];
        return table;
    }

    /// <summary>Row items (qRow, keyRow, 0, keyEnd): each query row against key positions [0, position + 1).</summary>
    private static int[] RowItems(ReadOnlySpan<AttentionSpan> spans)
    {
        var table = new List<int>();
        foreach (var s in spans)
            for (int i = 0; i < s.Length; i++)
                table.AddRange([s.QueryRow + i, s.KeyRow, 0, s.StartPosition + i + 1]);
        return [.. table];
    }

    /// <summary>
    /// Split-K decode: row items (qRow, keyRow, keyBegin, keyEnd) of at most DecodeSplitKeys keys each, then one combine
    /// item (qRow, first slot, end slot, 0) per query row; a slot is the index of its split item.
    /// </summary>
    private static (int[] Table, int SplitCount, int CombineCount) SplitItems(ReadOnlySpan<AttentionSpan> spans)
    {
        var splits = new List<int>();
        var combine = new List<int>();
        foreach (var s in spans)
            for (int i = 0; i < s.Length; i++)
            {
                int visible = s.StartPosition + i + 1, first = splits.Count / 4;
                for (int begin = 0; begin < visible; begin += DecodeSplitKeys)
                    splits.AddRange([s.QueryRow + i, s.KeyRow, begin, Math.Min(visible, begin + DecodeSplitKeys)]);
                combine.AddRange([s.QueryRow + i, first, splits.Count / 4, 0]);
            }
        return ([.. splits, .. combine], splits.Count / 4, combine.Count / 4);
    }

    /// <summary>Key tile items (keyRow0, keys ≤ 64, keyPos0, span QueryRow, Length, StartPosition, 0, 0) over each span's keys.</summary>
    private static int[] KeyTileItems(ReadOnlySpan<AttentionSpan> spans)
    {
        var table = new List<int>();
        foreach (var s in spans)
        {
            if (s.Length == 0) continue;
            for (int j0 = 0; j0 < s.KeyCount; j0 += AttentionKeyTile)
                table.AddRange([s.KeyRow + j0, Math.Min(AttentionKeyTile, s.KeyCount - j0), j0, s.QueryRow, s.Length, s.StartPosition, 0, 0]);
        }
        return [.. table];
    }

    /// <summary>Key row items (kRow, qBegin, qEnd, 0): the query rows whose position is at least the key's.</summary>
    private static int[] KeyRowItems(ReadOnlySpan<AttentionSpan> spans)
    {
        var table = new List<int>();
        foreach (var s in spans)
        {
            if (s.Length == 0) continue;
            for (int j = 0; j < s.KeyCount; j++)
                table.AddRange([s.KeyRow + j, s.QueryRow + Math.Max(0, j - s.StartPosition), s.QueryRow + s.Length, 0]);
        }
        return [.. table];
    }

    // ---- helpers

    /// <summary>log2(e)/√HD: the kernels' softmax runs on exp2.</summary>
    private static float ScaleLog2(int headDim) => (float)(1.4426950408889634 / Math.Sqrt(headDim));

    private static bool Aligned16(params ReadOnlySpan<ulong> pointers)
    {
        foreach (ulong p in pointers)
            if (p % 16 != 0) return false;
        return true;
    }

    /// <summary>Blocks of 4 warps for one warp per (item, head).</summary>
    private static uint WarpBlocks(int items, int heads) => (uint)Math.Max(1, ((long)items * heads + 3) / 4);

    // Dynamic shared memory (bytes) of the tensor-core kernels; rows are padded to HD + 8 elements.
    private static int ForwardShared(int hd) => (AttentionTileRows + 4 * AttentionKeyTile) * (hd + 8) * 2;
    private static int BackwardTile(int hd) => hd <= 64 ? 64 : 32;
    private static int DkDvShared(int hd) => (2 * AttentionKeyTile + 4 * BackwardTile(hd)) * (hd + 8) * 2 + 4 * BackwardTile(hd) * sizeof(float);
    private static int DqShared(int hd) => (2 * AttentionTileRows + 4 * BackwardTile(hd)) * (hd + 8) * 2;

    private bool UseTensorCores(int[] headDims, int hd, bool aligned, params ReadOnlySpan<int> sharedBytes)
    {
        if (!aligned || Array.IndexOf(headDims, hd) < 0) return false;
        foreach (int bytes in sharedBytes)
            if (bytes > _device.MaxSharedMemoryPerBlockOptin) return false;
        return true;
    }

    /// <summary>Opts the kernel in to <paramref name="bytes"/> of dynamic shared memory when over the default 48 KiB (once).</summary>
    private uint SharedFor(string kernel, int bytes)
    {
        if (bytes > DefaultDynamicSharedMemory && (!_attentionSharedOptIn.TryGetValue(kernel, out int set) || set < bytes))
        {
            _device.MakeCurrent();
            CudaDevice.SetMaxDynamicSharedMemory(Function(kernel), bytes);
            _attentionSharedOptIn[kernel] = bytes;
        }
        return (uint)bytes;
    }

    /// <summary>
    /// An fp32 scratch buffer of at least <paramref name="floats"/> elements, grown on demand and kept for the next
    /// call. Reuse without waiting is safe: every launch is on the legacy default stream, in order.
    /// </summary>
    private ulong AttentionScratch(long floats)
    {
        long bytes = Math.Max(1, floats) * sizeof(float);
        if (_attentionScratch is null || _attentionScratchBytes < bytes)
        {
            _attentionScratch?.Dispose();
            _attentionScratch = null;
            _attentionScratchBytes = Math.Max(bytes, Math.Min(2 * _attentionScratchBytes, bytes + (256L << 20)));
            _attentionScratch = _device.Allocate(_attentionScratchBytes);
        }
        return _attentionScratch.Pointer;
    }

    private void DisposeAttention()
    {
        _attentionScratch?.Dispose();
        _attentionScratch = null;
        _attentionScratchBytes = 0;
    }
}
