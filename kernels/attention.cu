// Fused causal GQA attention forward over a batch of variable-length spans, in one launch per op.
// Dimensions: T query rows, S key rows, NH query heads, NKV key/value heads (kv head = head / (NH/NKV)), HD head dim.
// q, out [T, NH·HD]; k, v [S, NKV·HD]; bf16 storage, fp32 softmax and accumulation.
//
// A span is Length query rows from QueryRow at positions StartPosition … StartPosition+Length−1; the query at position
// p sees the keys at positions 0 … p, stored at key rows KeyRow + position. The launcher turns the spans into work items
// (int tables, one row per block or per warp), so no kernel knows about spans:
//   tile item   (4 ints): qRow0, rows (≤ 64), keyRow, pos0 — 64 query rows at positions pos0 … of one span
//   row item    (4 ints): qRow, keyRow, keyBegin, keyEnd — one query row against key positions [keyBegin, keyEnd)
//   combine item(4 ints): qRow, slotBegin, slotEnd, unused — the split-K partial slots of one query row
//
// Kernels:
//   attention_forward_hd{HD}      tensor cores (mma.sync m16n8k16), flash-style online softmax, HD a multiple of 16
//                                 ≤ 128. grid (tile items, NH), block 128 (4 warps × 16 query rows), dynamic shared
//                                 memory (64 + 4·64)·(HD + 8)·2 bytes. With stats = 1 the same pass writes per (row,
//                                 head) lse (log2 units) and D = dO·O instead of O (the backward's recompute).
//   attention_rows_forward        generic head dim: one warp per (row item, head), lanes over keys then over dims.
//                                 grid ceil(items·NH/4), block 128, no shared memory.
//   attention_rows_stats          the generic statistics pass.
//   attention_rows_partial        split-K decode: the row item's key range → unnormalised partial (m, l, acc[HD]).
//   attention_combine             merges the partial slots of each row: one warp per (combine item, head).
#include "attention_common.cuh"

// ---- tensor-core forward

#define ATTN_TC_ROWS 64 // query rows per block (16 per warp)
#define ATTN_TC_KEYS 64 // keys per tile

// Shared memory: Q tile [64][HD+8], K and V tiles double-buffered [2][64][HD+8] each (rows padded by 16 bytes so that
// the eight row addresses of an ldmatrix fall in different bank groups).
// stats = 0: writes out. stats = 1: writes lse (log2 units) and D = dO·O per (row, head) instead, for the backward.
template <int HD>
__device__ __forceinline__ void attention_tc_forward(bf16* __restrict__ out, float* __restrict__ lseOut, float* __restrict__ dOut,
                                                     const bf16* __restrict__ outGrad, const bf16* __restrict__ q,
                                                     const bf16* __restrict__ k, const bf16* __restrict__ v,
                                                     const int* __restrict__ items, int heads, int kvHeads, float scaleLog2, int stats)
{
    constexpr int BR = ATTN_TC_ROWS, BC = ATTN_TC_KEYS, LD = HD + 8;
    constexpr int KS = HD / 16; // k steps of Q·Kᵀ
    constexpr int DT = HD / 8;  // n tiles of the output
    constexpr int NT = BC / 8;  // n tiles of the scores
    bf16* sQ = (bf16*)attention_smem;
    bf16* sK = sQ + BR * LD;
    bf16* sV = sK + 2 * BC * LD;

    const int* item = items + 4 * blockIdx.x;
    const int qRow0 = item[0], rows = item[1], keyRow = item[2], pos0 = item[3];
    const int head = blockIdx.y, kvHead = head / (heads / kvHeads);
    const long long qStride = (long long)heads * HD, kvStride = (long long)kvHeads * HD;
    const bf16* qg = q + (long long)qRow0 * qStride + head * HD;
    const bf16* kg = k + (long long)keyRow * kvStride + kvHead * HD;
    const bf16* vg = v + (long long)keyRow * kvStride + kvHead * HD;
    const int keyCount = pos0 + rows; // keys the last row sees
    const int tiles = (keyCount + BC - 1) / BC;

    load_tile<HD, LD, BR, 128>(sQ, qg, qStride, rows);
    cp_async_commit();
    load_tile<HD, LD, BC, 128>(sK, kg, kvStride, min(BC, keyCount));
    load_tile<HD, LD, BC, 128>(sV, vg, kvStride, min(BC, keyCount));
    cp_async_commit();

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int posA = pos0 + warp * 16 + g, posB = posA + 8; // positions of this thread's two rows
    const int warpLastPos = pos0 + warp * 16 + 15;
    const bool active = warp * 16 < rows; // warps past the span's rows only help load

    // the Q fragments stay in registers for the whole key loop
    cp_async_wait<1>(); // the Q group (the K/V tile 0 group may still be in flight)
    __syncthreads();
    unsigned qf[KS][4];
#pragma unroll
    for (int kk = 0; kk < KS; kk++)
        ldsm_x4(qf[kk][0], qf[kk][1], qf[kk][2], qf[kk][3], a_addr<LD>(sQ, warp * 16, kk * 16, lane));

    float o[DT][4];
#pragma unroll
    for (int i = 0; i < DT; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    float mA = ATTN_NEG_INF, mB = ATTN_NEG_INF, lA = 0.0f, lB = 0.0f; // l: this thread's part of the row sums

    for (int j = 0; j < tiles; j++)
    {
        if (j + 1 < tiles)
        {
            int next = (j + 1) * BC, buffer = (j + 1) & 1;
            load_tile<HD, LD, BC, 128>(sK + buffer * BC * LD, kg + (long long)next * kvStride, kvStride, min(BC, keyCount - next));
            load_tile<HD, LD, BC, 128>(sV + buffer * BC * LD, vg + (long long)next * kvStride, kvStride, min(BC, keyCount - next));
            cp_async_commit();
            cp_async_wait<1>();
        }
        else
        {
            cp_async_wait<0>();
        }
        __syncthreads();

        // key 0 is in tile 0 and every row sees it, so each row's max is finite from the first tile on; a later tile
        // that is entirely in a warp's future is skipped (warp-uniform branch, no barrier inside)
        if (active && j * BC <= warpLastPos)
        {
            const bf16* cK = sK + (j & 1) * BC * LD;
            const bf16* cV = sV + (j & 1) * BC * LD;
            float s[NT][4];
#pragma unroll
            for (int i = 0; i < NT; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < KS; kk++)
#pragma unroll
                for (int np = 0; np < NT / 2; np++)
                {
                    unsigned b0, b1, b2, b3;
                    ldsm_x4(b0, b1, b2, b3, b_pair_addr<LD>(cK, np * 16, kk * 16, lane));
                    mma_bf16(s[2 * np], qf[kk], b0, b1);
                    mma_bf16(s[2 * np + 1], qf[kk], b2, b3);
                }

            // scale, causal mask (a key after the row's position; this also masks the zero rows past keyCount)
            float mxA = ATTN_NEG_INF, mxB = ATTN_NEG_INF;
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                {
                    int key = j * BC + nt * 8 + 2 * t + (e & 1);
                    float x = key > (e < 2 ? posA : posB) ? ATTN_NEG_INF : s[nt][e] * scaleLog2;
                    s[nt][e] = x;
                    if (e < 2) mxA = fmaxf(mxA, x); else mxB = fmaxf(mxB, x);
                }
            // a row's 64 scores sit in the 4 lanes of a quad
            mxA = fmaxf(mxA, __shfl_xor_sync(0xffffffffu, mxA, 1));
            mxA = fmaxf(mxA, __shfl_xor_sync(0xffffffffu, mxA, 2));
            mxB = fmaxf(mxB, __shfl_xor_sync(0xffffffffu, mxB, 1));
            mxB = fmaxf(mxB, __shfl_xor_sync(0xffffffffu, mxB, 2));
            float newA = fmaxf(mA, mxA), newB = fmaxf(mB, mxB);
            float corrA = exp2f(mA - newA), corrB = exp2f(mB - newB); // 0 on the first tile (mA = −∞)
            mA = newA;
            mB = newB;
            float sumA = 0.0f, sumB = 0.0f;
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
            {
                s[nt][0] = exp2f(s[nt][0] - newA);
                s[nt][1] = exp2f(s[nt][1] - newA);
                s[nt][2] = exp2f(s[nt][2] - newB);
                s[nt][3] = exp2f(s[nt][3] - newB);
                sumA += s[nt][0] + s[nt][1];
                sumB += s[nt][2] + s[nt][3];
            }
            lA = lA * corrA + sumA;
            lB = lB * corrB + sumB;
#pragma unroll
            for (int i = 0; i < DT; i++)
            {
                o[i][0] *= corrA;
                o[i][1] *= corrA;
                o[i][2] *= corrB;
                o[i][3] *= corrB;
            }

            // O += P·V: P (16 rows × 64 keys) from the score registers, V row-major (k = key, n = d) via ldmatrix.trans
#pragma unroll
            for (int kk = 0; kk < BC / 16; kk++)
            {
                unsigned a[4];
                pack_a(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
                for (int dp = 0; dp < HD / 16; dp++)
                {
                    unsigned b0, b1, b2, b3;
                    ldsm_x4_trans(b0, b1, b2, b3, a_addr<LD>(cV, kk * 16, dp * 16, lane));
                    mma_bf16(o[2 * dp], a, b0, b1);
                    mma_bf16(o[2 * dp + 1], a, b2, b3);
                }
            }
        }
        __syncthreads(); // the next iteration loads into the buffer this one read
    }

    if (!active) return;
    lA += __shfl_xor_sync(0xffffffffu, lA, 1);
    lA += __shfl_xor_sync(0xffffffffu, lA, 2);
    lB += __shfl_xor_sync(0xffffffffu, lB, 1);
    lB += __shfl_xor_sync(0xffffffffu, lB, 2);
    const float invA = 1.0f / lA, invB = 1.0f / lB;
    const int rowA = warp * 16 + g, rowB = rowA + 8;
    if (!stats)
    {
        bf16* oA = out + (long long)(qRow0 + rowA) * qStride + head * HD + 2 * t;
        bf16* oB = out + (long long)(qRow0 + rowB) * qStride + head * HD + 2 * t;
#pragma unroll
        for (int i = 0; i < DT; i++)
        {
            if (rowA < rows) *(unsigned*)(oA + i * 8) = pack_bf16(o[i][0] * invA, o[i][1] * invA);
            if (rowB < rows) *(unsigned*)(oB + i * 8) = pack_bf16(o[i][2] * invB, o[i][3] * invB);
        }
    }
    else
    {
        // D = Σ_d dO·O with O in fp32 (before any bf16 rounding); rows past the span read nothing
        float dA = 0.0f, dB = 0.0f;
        const bf16* gA = outGrad + (long long)(qRow0 + rowA) * qStride + head * HD + 2 * t;
        const bf16* gB = outGrad + (long long)(qRow0 + rowB) * qStride + head * HD + 2 * t;
#pragma unroll
        for (int i = 0; i < DT; i++)
        {
            if (rowA < rows)
            {
                unsigned x = *(const unsigned*)(gA + i * 8);
                dA += __uint_as_float(x << 16) * o[i][0] + __uint_as_float(x & 0xffff0000u) * o[i][1];
            }
            if (rowB < rows)
            {
                unsigned x = *(const unsigned*)(gB + i * 8);
                dB += __uint_as_float(x << 16) * o[i][2] + __uint_as_float(x & 0xffff0000u) * o[i][3];
            }
        }
        dA += __shfl_xor_sync(0xffffffffu, dA, 1);
        dA += __shfl_xor_sync(0xffffffffu, dA, 2);
        dB += __shfl_xor_sync(0xffffffffu, dB, 1);
        dB += __shfl_xor_sync(0xffffffffu, dB, 2);
        if (t == 0 && rowA < rows)
        {
            long long r = (long long)(qRow0 + rowA) * heads + head;
            lseOut[r] = mA + log2f(lA);
            dOut[r] = dA * invA;
        }
        if (t == 0 && rowB < rows)
        {
            long long r = (long long)(qRow0 + rowB) * heads + head;
            lseOut[r] = mB + log2f(lB);
            dOut[r] = dB * invB;
        }
    }
}

// One explicit wrapper per head dim, not a macro: NVRTC 11.8's ptxas crashes on sm_90 under -lineinfo when several
// entry points are expanded from one macro line. stats = 0: out [T, NH·HD] (lse, delta, outGrad unused, may be null);
// stats = 1: lse, delta [T·NH] fp32 from outGrad [T, NH·HD] (out unused).

extern "C" __global__ void __launch_bounds__(128) attention_forward_hd16(bf16* __restrict__ out, float* __restrict__ lse,
    float* __restrict__ delta, const bf16* __restrict__ outGrad, const bf16* __restrict__ q, const bf16* __restrict__ k,
    const bf16* __restrict__ v, const int* __restrict__ items, int heads, int kvHeads, float scaleLog2, int stats)
{
    attention_tc_forward<16>(out, lse, delta, outGrad, q, k, v, items, heads, kvHeads, scaleLog2, stats);
}

extern "C" __global__ void __launch_bounds__(128) attention_forward_hd32(bf16* __restrict__ out, float* __restrict__ lse,
    float* __restrict__ delta, const bf16* __restrict__ outGrad, const bf16* __restrict__ q, const bf16* __restrict__ k,
    const bf16* __restrict__ v, const int* __restrict__ items, int heads, int kvHeads, float scaleLog2, int stats)
{
    attention_tc_forward<32>(out, lse, delta, outGrad, q, k, v, items, heads, kvHeads, scaleLog2, stats);
}

extern "C" __global__ void __launch_bounds__(128) attention_forward_hd48(bf16* __restrict__ out, float* __restrict__ lse,
    float* __restrict__ delta, const bf16* __restrict__ outGrad, const bf16* __restrict__ q, const bf16* __restrict__ k,
    const bf16* __restrict__ v, const int* __restrict__ items, int heads, int kvHeads, float scaleLog2, int stats)
{
    attention_tc_forward<48>(out, lse, delta, outGrad, q, k, v, items, heads, kvHeads, scaleLog2, stats);
}

extern "C" __global__ void __launch_bounds__(128) attention_forward_hd64(bf16* __restrict__ out, float* __restrict__ lse,
    float* __restrict__ delta, const bf16* __restrict__ outGrad, const bf16* __restrict__ q, const bf16* __restrict__ k,
    const bf16* __restrict__ v, const int* __restrict__ items, int heads, int kvHeads, float scaleLog2, int stats)
{
    attention_tc_forward<64>(out, lse, delta, outGrad, q, k, v, items, heads, kvHeads, scaleLog2, stats);
}

extern "C" __global__ void __launch_bounds__(128) attention_forward_hd80(bf16* __restrict__ out, float* __restrict__ lse,
    float* __restrict__ delta, const bf16* __restrict__ outGrad, const bf16* __restrict__ q, const bf16* __restrict__ k,
    const bf16* __restrict__ v, const int* __restrict__ items, int heads, int kvHeads, float scaleLog2, int stats)
{
    attention_tc_forward<80>(out, lse, delta, outGrad, q, k, v, items, heads, kvHeads, scaleLog2, stats);
}

extern "C" __global__ void __launch_bounds__(128) attention_forward_hd96(bf16* __restrict__ out, float* __restrict__ lse,
    float* __restrict__ delta, const bf16* __restrict__ outGrad, const bf16* __restrict__ q, const bf16* __restrict__ k,
    const bf16* __restrict__ v, const int* __restrict__ items, int heads, int kvHeads, float scaleLog2, int stats)
{
    attention_tc_forward<96>(out, lse, delta, outGrad, q, k, v, items, heads, kvHeads, scaleLog2, stats);
}

extern "C" __global__ void __launch_bounds__(128) attention_forward_hd112(bf16* __restrict__ out, float* __restrict__ lse,
    float* __restrict__ delta, const bf16* __restrict__ outGrad, const bf16* __restrict__ q, const bf16* __restrict__ k,
    const bf16* __restrict__ v, const int* __restrict__ items, int heads, int kvHeads, float scaleLog2, int stats)
{
    attention_tc_forward<112>(out, lse, delta, outGrad, q, k, v, items, heads, kvHeads, scaleLog2, stats);
}

extern "C" __global__ void __launch_bounds__(128) attention_forward_hd128(bf16* __restrict__ out, float* __restrict__ lse,
    float* __restrict__ delta, const bf16* __restrict__ outGrad, const bf16* __restrict__ q, const bf16* __restrict__ k,
    const bf16* __restrict__ v, const int* __restrict__ items, int heads, int kvHeads, float scaleLog2, int stats)
{
    attention_tc_forward<128>(out, lse, delta, outGrad, q, k, v, items, heads, kvHeads, scaleLog2, stats);
}

// ---- generic head dim: one warp per (row item, head)

enum { RowsOutput = 0, RowsPartial = 1, RowsStats = 2 };

// Online softmax over key positions [keyBegin, keyEnd) (non-empty) of one query row and head. Lanes take 32 keys at a
// time for the scores, then lanes over dims accumulate p·v for those keys (p broadcast by shuffle). Output:
//   RowsOutput:  out row = acc / l (bf16)
//   RowsPartial: partial slot (item·NH + head) = [m, l, acc[0 … HD)] unnormalised, m in log2 units
//   RowsStats:   lse = m + log2 l and D = dO·(acc / l) at (qRow·NH + head)
template <int MODE>
__device__ __forceinline__ void attention_row(bf16* __restrict__ out, float* __restrict__ partial, float* __restrict__ lseOut,
                                              float* __restrict__ dOut, const bf16* __restrict__ outGrad,
                                              const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                                              const int* __restrict__ items, int itemCount, int heads, int kvHeads, int headDim,
                                              float scaleLog2, int vec)
{
    const int lane = threadIdx.x & 31;
    const long long w = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (w >= (long long)itemCount * heads) return; // whole warps only: no barriers below
    const int itemIndex = (int)(w / heads), head = (int)(w % heads), kvHead = head / (heads / kvHeads);
    const int* item = items + 4 * itemIndex;
    const int qRow = item[0], keyRow = item[1], keyBegin = item[2], keyEnd = item[3];
    const long long kvStride = (long long)kvHeads * headDim;
    const long long qOffset = ((long long)qRow * heads + head) * headDim;
    const bf16* qp = q + qOffset;
    const bf16* kp = k + (long long)keyRow * kvStride + (long long)kvHead * headDim;
    const bf16* vp = v + (long long)keyRow * kvStride + (long long)kvHead * headDim;

    float delta = 0.0f, m = ATTN_NEG_INF, l = 0.0f;
    for (int dBase = 0; dBase < headDim; dBase += ATTN_ROW_PASS)
    {
        float acc[ATTN_ROW_DIMS];
#pragma unroll
        for (int i = 0; i < ATTN_ROW_DIMS; i++) acc[i] = 0.0f;
        m = ATTN_NEG_INF;
        l = 0.0f;
        for (int j0 = keyBegin; j0 < keyEnd; j0 += 32)
        {
            int key = j0 + lane;
            float s = key < keyEnd ? dot_bf16(qp, kp + key * kvStride, headDim, vec) * scaleLog2 : ATTN_NEG_INF;
            float mNew = fmaxf(m, warp_max(s)); // finite: lane 0's key j0 < keyEnd
            float p = key < keyEnd ? exp2f(s - mNew) : 0.0f;
            float corr = exp2f(m - mNew);
            l = l * corr + warp_sum(p);
            m = mNew;
#pragma unroll
            for (int i = 0; i < ATTN_ROW_DIMS; i++) acc[i] *= corr;
            int n = min(32, keyEnd - j0);
            for (int jj = 0; jj < n; jj++)
            {
                float pj = __shfl_sync(0xffffffffu, p, jj);
                const bf16* vr = vp + (long long)(j0 + jj) * kvStride;
#pragma unroll
                for (int i = 0; i < ATTN_ROW_DIMS; i++)
                {
                    int d = dBase + lane + 32 * i;
                    if (d < headDim) acc[i] += pj * bf16_to_float(vr[d]);
                }
            }
        }
#pragma unroll
        for (int i = 0; i < ATTN_ROW_DIMS; i++)
        {
            int d = dBase + lane + 32 * i;
            if (d >= headDim) continue;
            if (MODE == RowsOutput) out[qOffset + d] = float_to_bf16(acc[i] / l);
            if (MODE == RowsPartial) partial[w * (headDim + 2) + 2 + d] = acc[i];
            if (MODE == RowsStats) delta += bf16_to_float(outGrad[qOffset + d]) * (acc[i] / l);
        }
    }
    if (MODE == RowsPartial && lane == 0)
    {
        partial[w * (headDim + 2)] = m;
        partial[w * (headDim + 2) + 1] = l;
    }
    if (MODE == RowsStats)
    {
        delta = warp_sum(delta);
        if (lane == 0)
        {
            lseOut[(long long)qRow * heads + head] = m + log2f(l);
            dOut[(long long)qRow * heads + head] = delta;
        }
    }
}

extern "C" __global__ void attention_rows_forward(bf16* __restrict__ out, const bf16* __restrict__ q, const bf16* __restrict__ k,
                                                  const bf16* __restrict__ v, const int* __restrict__ items, int itemCount,
                                                  int heads, int kvHeads, int headDim, float scaleLog2, int vec)
{
    attention_row<RowsOutput>(out, nullptr, nullptr, nullptr, nullptr, q, k, v, items, itemCount, heads, kvHeads, headDim, scaleLog2, vec);
}

extern "C" __global__ void attention_rows_partial(float* __restrict__ partial, const bf16* __restrict__ q, const bf16* __restrict__ k,
                                                  const bf16* __restrict__ v, const int* __restrict__ items, int itemCount,
                                                  int heads, int kvHeads, int headDim, float scaleLog2, int vec)
{
    attention_row<RowsPartial>(nullptr, partial, nullptr, nullptr, nullptr, q, k, v, items, itemCount, heads, kvHeads, headDim, scaleLog2, vec);
}

extern "C" __global__ void attention_rows_stats(float* __restrict__ lse, float* __restrict__ delta, const bf16* __restrict__ outGrad,
                                                const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                                                const int* __restrict__ items, int itemCount, int heads, int kvHeads, int headDim,
                                                float scaleLog2, int vec)
{
    attention_row<RowsStats>(nullptr, nullptr, lse, delta, outGrad, q, k, v, items, itemCount, heads, kvHeads, headDim, scaleLog2, vec);
}

// Split-K decode, second pass: out = Σ_s exp2(m_s − M)·acc_s / Σ_s exp2(m_s − M)·l_s over the row's partial slots
// (slot s of head h at partial[(s·NH + h)·(HD + 2)]), M = max m_s. One warp per (combine item, head), lanes over dims.
extern "C" __global__ void attention_combine(bf16* __restrict__ out, const float* __restrict__ partial, const int* __restrict__ items,
                                             int itemCount, int heads, int headDim)
{
    const int lane = threadIdx.x & 31;
    const long long w = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (w >= (long long)itemCount * heads) return;
    const int itemIndex = (int)(w / heads), head = (int)(w % heads);
    const int* item = items + 4 * itemIndex;
    const int qRow = item[0], slotBegin = item[1], slotEnd = item[2];
    const long long slotSize = headDim + 2;
    float mMax = ATTN_NEG_INF;
    for (int s = slotBegin; s < slotEnd; s++) mMax = fmaxf(mMax, partial[((long long)s * heads + head) * slotSize]);
    float l = 0.0f;
    for (int s = slotBegin; s < slotEnd; s++)
    {
        const float* p = partial + ((long long)s * heads + head) * slotSize;
        l += exp2f(p[0] - mMax) * p[1];
    }
    const float inv = 1.0f / l;
    bf16* o = out + ((long long)qRow * heads + head) * headDim;
    for (int d = lane; d < headDim; d += 32)
    {
        float acc = 0.0f;
        for (int s = slotBegin; s < slotEnd; s++)
        {
            const float* p = partial + ((long long)s * heads + head) * slotSize;
            acc += exp2f(p[0] - mMax) * p[2 + d];
        }
        o[d] = float_to_bf16(acc * inv);
    }
}
