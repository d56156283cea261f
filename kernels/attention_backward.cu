// Backward of the fused causal GQA attention (attention.cu), FlashAttention-2 style and deterministic: no atomics, each
// gradient element is read-modified-written by exactly one thread, in a fixed order.
// Dimensions: T query rows, S key rows, NH query heads, NKV key/value heads, G = NH/NKV, HD head dim.
// q, dO, dQ [T, NH·HD]; k, v, dK, dV [S, NKV·HD] bf16; lse, D [T·NH] fp32 from attention_stats_* / attention_rows_stats.
// Gradients accumulate: dQ += …, dK += …, dV += … (fp32 sums, one bf16 rounding per element at the end).
//
// With s = q·k·scaleLog2, p = exp2(s − lse) (the softmax, recomputed), dp = dO·v, D = Σ p·dp = dO·O:
//   dV += Σ_q p·dO,   dScore = p·(dp − D)·scale,   dQ += Σ_k dScore·k,   dK += Σ_q dScore·q   (scale = 1/√HD)
//
// Work items (int tables built by the launcher):
//   tile item     (4 ints): qRow0, rows (≤ 64), keyRow, pos0 — as the forward's
//   key tile item (8 ints): keyRow0, keys (≤ 64), keyPos0, qRow (span's first query row), length, start, 0, 0
//   row item      (4 ints): qRow, keyRow, 0, keyEnd — as the forward's
//   key row item  (4 ints): kRow, qBegin, qEnd, unused — the query rows [qBegin, qEnd) that see key row kRow
//
// Kernels:
//   attention_dkdv_hd{64,128}   per (key tile item, kv head): loops over the G query heads and the query tiles that see
//                              the tile; dK, dV of its 64 keys in registers. grid (key tile items, NKV), block 128.
//   attention_dq_hd{64,128}     per (tile item, head): loops over key tiles like the forward. grid (tile items, NH), block 128.
//   attention_rows_dq          generic head dim: one warp per (row item, head).
//   attention_rows_dkdv        generic head dim: one warp per (key row item, kv head).
#include "attention_common.cuh"

#define ATTN_BWD_KEYS 64 // keys per dK/dV block (16 per warp)
#define ATTN_BWD_ROWS 64 // query rows per dQ block (16 per warp)

// Query rows per tile in the dK/dV loop and keys per tile in the dQ loop: 64, or 32 above HD 64 (fewer registers).
template <int HD> struct AttnBwdTile { static constexpr int N = HD <= 64 ? 64 : 32; };

// ---- dK, dV
//
// Each warp owns 16 keys and computes transposed tiles (keys × queries), so every product stays inside the warp:
//   Sᵀ = K·Qᵀ (A = K strip, B = Q rows as n × k)        dV += Pᵀ·dO (A = Pᵀ registers, B = dO row-major, .trans)
//   dPᵀ = V·dOᵀ (A = V strip, B = dO rows as n × k)     dK += dSᵀ·Q (A = dSᵀ registers, B = Q row-major, .trans)
// Shared memory: K, V [64][HD+8]; Q, dO double-buffered [2][BQ][HD+8]; lse, D double-buffered [2][BQ] fp32.
template <int HD>
__device__ __forceinline__ void attention_tc_dkdv(bf16* __restrict__ keysGrad, bf16* __restrict__ valuesGrad,
                                                  const bf16* __restrict__ outGrad, const bf16* __restrict__ q,
                                                  const bf16* __restrict__ k, const bf16* __restrict__ v,
                                                  const float* __restrict__ lse, const float* __restrict__ delta,
                                                  const int* __restrict__ items, int heads, int kvHeads, float scaleLog2, float scale)
{
    constexpr int BC = ATTN_BWD_KEYS, BQ = AttnBwdTile<HD>::N, LD = HD + 8;
    constexpr int KS = HD / 16, DT = HD / 8, NT = BQ / 8;
    bf16* sK = (bf16*)attention_smem;
    bf16* sV = sK + BC * LD;
    bf16* sQ = sV + BC * LD;        // [2][BQ][LD]
    bf16* sO = sQ + 2 * BQ * LD;    // dO, [2][BQ][LD]
    float* sL = (float*)(sO + 2 * BQ * LD); // lse [2][BQ]
    float* sD = sL + 2 * BQ;                // D [2][BQ]

    const int* item = items + 8 * blockIdx.x;
    const int keyRow0 = item[0], keys = item[1], keyPos0 = item[2], qRow = item[3], length = item[4], start = item[5];
    const int kvHead = blockIdx.y, group = heads / kvHeads;
    const long long qStride = (long long)heads * HD, kvStride = (long long)kvHeads * HD;
    const bf16* kg = k + (long long)keyRow0 * kvStride + kvHead * HD;
    const bf16* vg = v + (long long)keyRow0 * kvStride + kvHead * HD;

    // query rows i (0-based in the span) see this tile when start + i ≥ keyPos0
    const int firstTile = max(0, keyPos0 - start) / BQ, tileEnd = (length + BQ - 1) / BQ;
    const int perHead = tileEnd - firstTile, steps = group * perHead;

    // issue the loads of step n (query head, query tile) into buffer n & 1
    auto load_step = [&](int n) {
        int head = kvHead * group + n / perHead, i0 = (firstTile + n % perHead) * BQ, buffer = n & 1;
        int valid = min(BQ, length - i0);
        long long rowOffset = (long long)(qRow + i0) * qStride + head * HD;
        load_tile<HD, LD, BQ, 128>(sQ + buffer * BQ * LD, q + rowOffset, qStride, valid);
        load_tile<HD, LD, BQ, 128>(sO + buffer * BQ * LD, outGrad + rowOffset, qStride, valid);
        for (int r = threadIdx.x; r < BQ; r += 128)
        {
            long long stat = (long long)(qRow + i0 + r) * heads + head;
            // rows past the span get lse = +∞, so p = 0 there
            sL[buffer * BQ + r] = r < valid ? lse[stat] : ATTN_POS_INF;
            sD[buffer * BQ + r] = r < valid ? delta[stat] : 0.0f;
        }
    };

    load_tile<HD, LD, BC, 128>(sK, kg, kvStride, keys);
    load_tile<HD, LD, BC, 128>(sV, vg, kvStride, keys);
    if (steps > 0) load_step(0);
    cp_async_commit();

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int kPosA = keyPos0 + warp * 16 + g, kPosB = kPosA + 8; // positions of this thread's two keys
    float dk[DT][4], dv[DT][4];
#pragma unroll
    for (int i = 0; i < DT; i++)
#pragma unroll
        for (int e = 0; e < 4; e++) dk[i][e] = dv[i][e] = 0.0f;

    for (int n = 0; n < steps; n++)
    {
        if (n + 1 < steps)
        {
            load_step(n + 1);
            cp_async_commit();
            cp_async_wait<1>();
        }
        else
        {
            cp_async_wait<0>();
        }
        __syncthreads();

        const int buffer = n & 1, i0 = (firstTile + n % perHead) * BQ;
        const bf16* cQ = sQ + buffer * BQ * LD;
        const bf16* cO = sO + buffer * BQ * LD;
        const float* cL = sL + buffer * BQ;
        const float* cD = sD + buffer * BQ;
        const int qPos0 = start + i0; // position of the tile's first query row
        // skip when every query of the tile is before every key of this warp (warp-uniform, no barrier inside)
        if (qPos0 + BQ - 1 >= keyPos0 + warp * 16)
        {
            // Sᵀ = K·Qᵀ → Pᵀ
            float p[NT][4];
#pragma unroll
            for (int i = 0; i < NT; i++) p[i][0] = p[i][1] = p[i][2] = p[i][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < KS; kk++)
            {
                unsigned a[4];
                ldsm_x4(a[0], a[1], a[2], a[3], a_addr<LD>(sK, warp * 16, kk * 16, lane));
#pragma unroll
                for (int np = 0; np < NT / 2; np++)
                {
                    unsigned b0, b1, b2, b3;
                    ldsm_x4(b0, b1, b2, b3, b_pair_addr<LD>(cQ, np * 16, kk * 16, lane));
                    mma_bf16(p[2 * np], a, b0, b1);
                    mma_bf16(p[2 * np + 1], a, b2, b3);
                }
            }
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                {
                    int col = nt * 8 + 2 * t + (e & 1); // query row in the tile
                    int kPos = e < 2 ? kPosA : kPosB;
                    // causal: this key is after the query (also covers keys past the span, zero-filled)
                    p[nt][e] = kPos > qPos0 + col ? 0.0f : exp2f(p[nt][e] * scaleLog2 - cL[col]);
                }

            // dV += Pᵀ·dO
#pragma unroll
            for (int kq = 0; kq < BQ / 16; kq++)
            {
                unsigned a[4];
                pack_a(a, p[2 * kq], p[2 * kq + 1]);
#pragma unroll
                for (int dp = 0; dp < HD / 16; dp++)
                {
                    unsigned b0, b1, b2, b3;
                    ldsm_x4_trans(b0, b1, b2, b3, a_addr<LD>(cO, kq * 16, dp * 16, lane));
                    mma_bf16(dv[2 * dp], a, b0, b1);
                    mma_bf16(dv[2 * dp + 1], a, b2, b3);
                }
            }

            // dPᵀ = V·dOᵀ, then dSᵀ = Pᵀ ∘ (dPᵀ − D) (the scale is applied once at the end)
            float ds[NT][4];
#pragma unroll
            for (int i = 0; i < NT; i++) ds[i][0] = ds[i][1] = ds[i][2] = ds[i][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < KS; kk++)
            {
                unsigned a[4];
                ldsm_x4(a[0], a[1], a[2], a[3], a_addr<LD>(sV, warp * 16, kk * 16, lane));
#pragma unroll
                for (int np = 0; np < NT / 2; np++)
                {
                    unsigned b0, b1, b2, b3;
                    ldsm_x4(b0, b1, b2, b3, b_pair_addr<LD>(cO, np * 16, kk * 16, lane));
                    mma_bf16(ds[2 * np], a, b0, b1);
                    mma_bf16(ds[2 * np + 1], a, b2, b3);
                }
            }
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) ds[nt][e] = p[nt][e] * (ds[nt][e] - cD[nt * 8 + 2 * t + (e & 1)]);

            // dK += dSᵀ·Q
#pragma unroll
            for (int kq = 0; kq < BQ / 16; kq++)
            {
                unsigned a[4];
                pack_a(a, ds[2 * kq], ds[2 * kq + 1]);
#pragma unroll
                for (int dp = 0; dp < HD / 16; dp++)
                {
                    unsigned b0, b1, b2, b3;
                    ldsm_x4_trans(b0, b1, b2, b3, a_addr<LD>(cQ, kq * 16, dp * 16, lane));
                    mma_bf16(dk[2 * dp], a, b0, b1);
                    mma_bf16(dk[2 * dp + 1], a, b2, b3);
                }
            }
        }
        __syncthreads(); // the next step loads into the buffer this one read
    }

    // dK += scale·Σ, dV += Σ on the tile's valid keys
    const int kA = warp * 16 + g, kB = kA + 8;
    bf16* dkA = keysGrad + (long long)(keyRow0 + kA) * kvStride + kvHead * HD + 2 * t;
    bf16* dkB = keysGrad + (long long)(keyRow0 + kB) * kvStride + kvHead * HD + 2 * t;
    bf16* dvA = valuesGrad + (long long)(keyRow0 + kA) * kvStride + kvHead * HD + 2 * t;
    bf16* dvB = valuesGrad + (long long)(keyRow0 + kB) * kvStride + kvHead * HD + 2 * t;
#pragma unroll
    for (int i = 0; i < DT; i++)
    {
        if (kA < keys)
        {
            unsigned* pk = (unsigned*)(dkA + i * 8);
            unsigned* pv = (unsigned*)(dvA + i * 8);
            unsigned xk = *pk, xv = *pv;
            *pk = pack_bf16(__uint_as_float(xk << 16) + dk[i][0] * scale, __uint_as_float(xk & 0xffff0000u) + dk[i][1] * scale);
            *pv = pack_bf16(__uint_as_float(xv << 16) + dv[i][0], __uint_as_float(xv & 0xffff0000u) + dv[i][1]);
        }
        if (kB < keys)
        {
            unsigned* pk = (unsigned*)(dkB + i * 8);
            unsigned* pv = (unsigned*)(dvB + i * 8);
            unsigned xk = *pk, xv = *pv;
            *pk = pack_bf16(__uint_as_float(xk << 16) + dk[i][2] * scale, __uint_as_float(xk & 0xffff0000u) + dk[i][3] * scale);
            *pv = pack_bf16(__uint_as_float(xv << 16) + dv[i][2], __uint_as_float(xv & 0xffff0000u) + dv[i][3]);
        }
    }
}

// ---- dQ
//
// Per warp 16 query rows, over the key tiles the rows see (as the forward):
//   S = Q·Kᵀ → P;  dP = dO·Vᵀ (A = dO strip, B = V rows as n × k);  dS = P ∘ (dP − D);  dQ += dS·K (B = K row-major, .trans)
// Shared memory: Q, dO [64][HD+8]; K, V double-buffered [2][BK][HD+8].
template <int HD>
__device__ __forceinline__ void attention_tc_dq(bf16* __restrict__ queryGrad, const bf16* __restrict__ outGrad,
                                                const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                                                const float* __restrict__ lse, const float* __restrict__ delta,
                                                const int* __restrict__ items, int heads, int kvHeads, float scaleLog2, float scale)
{
    constexpr int BR = ATTN_BWD_ROWS, BK = AttnBwdTile<HD>::N, LD = HD + 8;
    constexpr int KS = HD / 16, DT = HD / 8, NT = BK / 8;
    bf16* sQ = (bf16*)attention_smem;
    bf16* sO = sQ + BR * LD;
    bf16* sK = sO + BR * LD;       // [2][BK][LD]
    bf16* sV = sK + 2 * BK * LD;   // [2][BK][LD]

    const int* item = items + 4 * blockIdx.x;
    const int qRow0 = item[0], rows = item[1], keyRow = item[2], pos0 = item[3];
    const int head = blockIdx.y, kvHead = head / (heads / kvHeads);
    const long long qStride = (long long)heads * HD, kvStride = (long long)kvHeads * HD;
    const long long qOffset = (long long)qRow0 * qStride + head * HD;
    const bf16* kg = k + (long long)keyRow * kvStride + kvHead * HD;
    const bf16* vg = v + (long long)keyRow * kvStride + kvHead * HD;
    const int keyCount = pos0 + rows, tiles = (keyCount + BK - 1) / BK;

    load_tile<HD, LD, BR, 128>(sQ, q + qOffset, qStride, rows);
    load_tile<HD, LD, BR, 128>(sO, outGrad + qOffset, qStride, rows);
    load_tile<HD, LD, BK, 128>(sK, kg, kvStride, min(BK, keyCount));
    load_tile<HD, LD, BK, 128>(sV, vg, kvStride, min(BK, keyCount));
    cp_async_commit();

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int rowA = warp * 16 + g, rowB = rowA + 8;
    const int posA = pos0 + rowA, posB = posA + 8;
    const int warpLastPos = pos0 + warp * 16 + 15;
    const bool active = warp * 16 < rows;
    // rows past the span: lse = +∞ makes p = 0
    const float lseA = rowA < rows ? lse[(long long)(qRow0 + rowA) * heads + head] : ATTN_POS_INF;
    const float lseB = rowB < rows ? lse[(long long)(qRow0 + rowB) * heads + head] : ATTN_POS_INF;
    const float dA = rowA < rows ? delta[(long long)(qRow0 + rowA) * heads + head] : 0.0f;
    const float dB = rowB < rows ? delta[(long long)(qRow0 + rowB) * heads + head] : 0.0f;

    float dq[DT][4];
#pragma unroll
    for (int i = 0; i < DT; i++) dq[i][0] = dq[i][1] = dq[i][2] = dq[i][3] = 0.0f;

    for (int j = 0; j < tiles; j++)
    {
        if (j + 1 < tiles)
        {
            int next = (j + 1) * BK, buffer = (j + 1) & 1;
            load_tile<HD, LD, BK, 128>(sK + buffer * BK * LD, kg + (long long)next * kvStride, kvStride, min(BK, keyCount - next));
            load_tile<HD, LD, BK, 128>(sV + buffer * BK * LD, vg + (long long)next * kvStride, kvStride, min(BK, keyCount - next));
            cp_async_commit();
            cp_async_wait<1>();
        }
        else
        {
            cp_async_wait<0>();
        }
        __syncthreads();

        if (active && j * BK <= warpLastPos)
        {
            const bf16* cK = sK + (j & 1) * BK * LD;
            const bf16* cV = sV + (j & 1) * BK * LD;
            float p[NT][4], ds[NT][4];
#pragma unroll
            for (int i = 0; i < NT; i++)
#pragma unroll
                for (int e = 0; e < 4; e++) p[i][e] = ds[i][e] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < KS; kk++)
            {
                unsigned aq[4], ao[4];
                ldsm_x4(aq[0], aq[1], aq[2], aq[3], a_addr<LD>(sQ, warp * 16, kk * 16, lane));
                ldsm_x4(ao[0], ao[1], ao[2], ao[3], a_addr<LD>(sO, warp * 16, kk * 16, lane));
#pragma unroll
                for (int np = 0; np < NT / 2; np++)
                {
                    unsigned b0, b1, b2, b3;
                    ldsm_x4(b0, b1, b2, b3, b_pair_addr<LD>(cK, np * 16, kk * 16, lane));
                    mma_bf16(p[2 * np], aq, b0, b1);
                    mma_bf16(p[2 * np + 1], aq, b2, b3);
                    ldsm_x4(b0, b1, b2, b3, b_pair_addr<LD>(cV, np * 16, kk * 16, lane));
                    mma_bf16(ds[2 * np], ao, b0, b1);
                    mma_bf16(ds[2 * np + 1], ao, b2, b3);
                }
            }
#pragma unroll
            for (int nt = 0; nt < NT; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                {
                    int key = j * BK + nt * 8 + 2 * t + (e & 1);
                    bool upper = e < 2;
                    float pe = key > (upper ? posA : posB) ? 0.0f : exp2f(p[nt][e] * scaleLog2 - (upper ? lseA : lseB));
                    ds[nt][e] = pe * (ds[nt][e] - (upper ? dA : dB));
                }
            // dQ += dS·K
#pragma unroll
            for (int kk = 0; kk < BK / 16; kk++)
            {
                unsigned a[4];
                pack_a(a, ds[2 * kk], ds[2 * kk + 1]);
#pragma unroll
                for (int dp = 0; dp < HD / 16; dp++)
                {
                    unsigned b0, b1, b2, b3;
                    ldsm_x4_trans(b0, b1, b2, b3, a_addr<LD>(cK, kk * 16, dp * 16, lane));
                    mma_bf16(dq[2 * dp], a, b0, b1);
                    mma_bf16(dq[2 * dp + 1], a, b2, b3);
                }
            }
        }
        __syncthreads();
    }

    if (!active) return;
    bf16* gA = queryGrad + (long long)(qRow0 + rowA) * qStride + head * HD + 2 * t;
    bf16* gB = queryGrad + (long long)(qRow0 + rowB) * qStride + head * HD + 2 * t;
#pragma unroll
    for (int i = 0; i < DT; i++)
    {
        if (rowA < rows)
        {
            unsigned* pa = (unsigned*)(gA + i * 8);
            unsigned x = *pa;
            *pa = pack_bf16(__uint_as_float(x << 16) + dq[i][0] * scale, __uint_as_float(x & 0xffff0000u) + dq[i][1] * scale);
        }
        if (rowB < rows)
        {
            unsigned* pb = (unsigned*)(gB + i * 8);
            unsigned x = *pb;
            *pb = pack_bf16(__uint_as_float(x << 16) + dq[i][2] * scale, __uint_as_float(x & 0xffff0000u) + dq[i][3] * scale);
        }
    }
}

// Instantiated for HD 64 and 128 only (other head dims take the row kernels): each instance costs NVRTC seconds at
// first use, and the templates work for any multiple of 16 up to 128 (add a wrapper pair and the C# list to enable one).
// One explicit wrapper per entry point, not a macro: NVRTC 11.8's ptxas crashes on sm_90 under -lineinfo when several
// entry points are expanded from one macro line.

extern "C" __global__ void __launch_bounds__(128) attention_dkdv_hd64(bf16* __restrict__ keysGrad, bf16* __restrict__ valuesGrad,
    const bf16* __restrict__ outGrad, const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
    const float* __restrict__ lse, const float* __restrict__ delta, const int* __restrict__ items, int heads, int kvHeads,
    float scaleLog2, float scale)
{
    attention_tc_dkdv<64>(keysGrad, valuesGrad, outGrad, q, k, v, lse, delta, items, heads, kvHeads, scaleLog2, scale);
}

extern "C" __global__ void __launch_bounds__(128) attention_dq_hd64(bf16* __restrict__ queryGrad, const bf16* __restrict__ outGrad,
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, const float* __restrict__ lse,
    const float* __restrict__ delta, const int* __restrict__ items, int heads, int kvHeads, float scaleLog2, float scale)
{
    attention_tc_dq<64>(queryGrad, outGrad, q, k, v, lse, delta, items, heads, kvHeads, scaleLog2, scale);
}

extern "C" __global__ void __launch_bounds__(128) attention_dkdv_hd128(bf16* __restrict__ keysGrad, bf16* __restrict__ valuesGrad,
    const bf16* __restrict__ outGrad, const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
    const float* __restrict__ lse, const float* __restrict__ delta, const int* __restrict__ items, int heads, int kvHeads,
    float scaleLog2, float scale)
{
    attention_tc_dkdv<128>(keysGrad, valuesGrad, outGrad, q, k, v, lse, delta, items, heads, kvHeads, scaleLog2, scale);
}

extern "C" __global__ void __launch_bounds__(128) attention_dq_hd128(bf16* __restrict__ queryGrad, const bf16* __restrict__ outGrad,
    const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, const float* __restrict__ lse,
    const float* __restrict__ delta, const int* __restrict__ items, int heads, int kvHeads, float scaleLog2, float scale)
{
    attention_tc_dq<128>(queryGrad, outGrad, q, k, v, lse, delta, items, heads, kvHeads, scaleLog2, scale);
}

// ---- generic head dim

// dQ of one query row and head: lanes over keys for p and dScore, then lanes over dims for Σ dScore·k.
extern "C" __global__ void attention_rows_dq(bf16* __restrict__ queryGrad, const bf16* __restrict__ outGrad,
                                             const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                                             const float* __restrict__ lse, const float* __restrict__ delta,
                                             const int* __restrict__ items, int itemCount, int heads, int kvHeads, int headDim,
                                             float scaleLog2, float scale, int vec)
{
    const int lane = threadIdx.x & 31;
    const long long w = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (w >= (long long)itemCount * heads) return;
    const int itemIndex = (int)(w / heads), head = (int)(w % heads), kvHead = head / (heads / kvHeads);
    const int* item = items + 4 * itemIndex;
    const int qRow = item[0], keyRow = item[1], keyEnd = item[3];
    const long long kvStride = (long long)kvHeads * headDim;
    const long long qOffset = ((long long)qRow * heads + head) * headDim;
    const bf16* kp = k + (long long)keyRow * kvStride + (long long)kvHead * headDim;
    const bf16* vp = v + (long long)keyRow * kvStride + (long long)kvHead * headDim;
    const float rowLse = lse[(long long)qRow * heads + head], rowD = delta[(long long)qRow * heads + head];

    for (int dBase = 0; dBase < headDim; dBase += ATTN_ROW_PASS)
    {
        float acc[ATTN_ROW_DIMS];
#pragma unroll
        for (int i = 0; i < ATTN_ROW_DIMS; i++) acc[i] = 0.0f;
        for (int j0 = 0; j0 < keyEnd; j0 += 32)
        {
            int key = j0 + lane;
            float ds = 0.0f;
            if (key < keyEnd)
            {
                float p = exp2f(dot_bf16(q + qOffset, kp + key * kvStride, headDim, vec) * scaleLog2 - rowLse);
                float dp = dot_bf16(outGrad + qOffset, vp + key * kvStride, headDim, vec);
                ds = p * (dp - rowD);
            }
            int n = min(32, keyEnd - j0);
            for (int jj = 0; jj < n; jj++)
            {
                float dsj = __shfl_sync(0xffffffffu, ds, jj);
                const bf16* kr = kp + (long long)(j0 + jj) * kvStride;
#pragma unroll
                for (int i = 0; i < ATTN_ROW_DIMS; i++)
                {
                    int d = dBase + lane + 32 * i;
                    if (d < headDim) acc[i] += dsj * bf16_to_float(kr[d]);
                }
            }
        }
#pragma unroll
        for (int i = 0; i < ATTN_ROW_DIMS; i++)
        {
            int d = dBase + lane + 32 * i;
            if (d < headDim) queryGrad[qOffset + d] = float_to_bf16(bf16_to_float(queryGrad[qOffset + d]) + acc[i] * scale);
        }
    }
}

// dK, dV of one key row and kv head: over the G query heads and the query rows [qBegin, qEnd) that see it, lanes over
// query rows for p and dScore, then lanes over dims for Σ p·dO and Σ dScore·q.
extern "C" __global__ void attention_rows_dkdv(bf16* __restrict__ keysGrad, bf16* __restrict__ valuesGrad,
                                               const bf16* __restrict__ outGrad, const bf16* __restrict__ q,
                                               const bf16* __restrict__ k, const bf16* __restrict__ v,
                                               const float* __restrict__ lse, const float* __restrict__ delta,
                                               const int* __restrict__ items, int itemCount, int heads, int kvHeads, int headDim,
                                               float scaleLog2, float scale, int vec)
{
    const int lane = threadIdx.x & 31;
    const long long w = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (w >= (long long)itemCount * kvHeads) return;
    const int itemIndex = (int)(w / kvHeads), kvHead = (int)(w % kvHeads), group = heads / kvHeads;
    const int* item = items + 4 * itemIndex;
    const int kRow = item[0], qBegin = item[1], qEnd = item[2];
    const long long kvOffset = (long long)kRow * kvHeads * headDim + (long long)kvHead * headDim;
    const long long qStride = (long long)heads * headDim;

    for (int dBase = 0; dBase < headDim; dBase += ATTN_ROW_PASS)
    {
        float dk[ATTN_ROW_DIMS], dv[ATTN_ROW_DIMS];
#pragma unroll
        for (int i = 0; i < ATTN_ROW_DIMS; i++) dk[i] = dv[i] = 0.0f;
        for (int head = kvHead * group; head < (kvHead + 1) * group; head++)
            for (int r0 = qBegin; r0 < qEnd; r0 += 32)
            {
                int r = r0 + lane;
                float p = 0.0f, ds = 0.0f;
                if (r < qEnd)
                {
                    long long qOffset = (long long)r * qStride + (long long)head * headDim, stat = (long long)r * heads + head;
                    p = exp2f(dot_bf16(q + qOffset, k + kvOffset, headDim, vec) * scaleLog2 - lse[stat]);
                    float dp = dot_bf16(outGrad + qOffset, v + kvOffset, headDim, vec);
                    ds = p * (dp - delta[stat]);
                }
                int n = min(32, qEnd - r0);
                for (int jj = 0; jj < n; jj++)
                {
                    float pj = __shfl_sync(0xffffffffu, p, jj), dsj = __shfl_sync(0xffffffffu, ds, jj);
                    long long rowOffset = (long long)(r0 + jj) * qStride + (long long)head * headDim;
#pragma unroll
                    for (int i = 0; i < ATTN_ROW_DIMS; i++)
                    {
                        int d = dBase + lane + 32 * i;
                        if (d < headDim)
                        {
                            dv[i] += pj * bf16_to_float(outGrad[rowOffset + d]);
                            dk[i] += dsj * bf16_to_float(q[rowOffset + d]);
                        }
                    }
                }
            }
#pragma unroll
        for (int i = 0; i < ATTN_ROW_DIMS; i++)
        {
            int d = dBase + lane + 32 * i;
            if (d >= headDim) continue;
            keysGrad[kvOffset + d] = float_to_bf16(bf16_to_float(keysGrad[kvOffset + d]) + dk[i] * scale);
            valuesGrad[kvOffset + d] = float_to_bf16(bf16_to_float(valuesGrad[kvOffset + d]) + dv[i]);
        }
    }
}
