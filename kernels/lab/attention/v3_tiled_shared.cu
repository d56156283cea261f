// Lab: causal attention v3 — tiled in shared memory, fp32 (FlashAttention-1's loop structure on CUDA cores).
// What changed from v2: a block owns 16 query rows of one head, and the 32-key tiles of K and V it loads into shared
// memory are reused by all 16 rows (v2 re-read K and V once per row: 16× less L2/HBM traffic here). Scores of a
// tile live in registers (lane j holds key j), the online softmax is updated once per tile per row (one warp_max and
// one warp_sum), and P·V broadcasts each p_j with a shuffle. Tiles past the block's last row are skipped (causal).
// Why not the end: fp32 FMAs on CUDA cores (≈ 60 TFLOP/s on an H100/H200) instead of bf16 tensor cores (≈ 990);
// the next step is mma.sync / wgmma on bf16 tiles (the engine's kernel, v4).
// Shared memory: Q 16×128, K 32×129 (padded: lane j reads row j without bank conflicts), V 32×128 floats ≈ 40.6 KB.
// Requires HD % 32 == 0 and HD ≤ 128. Dimensions and layout as v1.
#include "common.cuh"

#define V3_ROWS 16      // query rows per block: 4 warps × 4 rows
#define V3_KEYS 32      // keys per tile: one per lane
#define V3_MAX_HD 128
#define V3_ROWS_PER_WARP 4
#define V3_PER_LANE (V3_MAX_HD / 32)

// grid (ceil(L / 16), NH, B), block (128).
extern "C" __global__ void attention_v3(bf16* __restrict__ out, const bf16* __restrict__ q, const bf16* __restrict__ k,
                                        const bf16* __restrict__ v, int length, int heads, int kvHeads, int headDim)
{
    __shared__ float qs[V3_ROWS][V3_MAX_HD];
    __shared__ float ks[V3_KEYS][V3_MAX_HD + 1];
    __shared__ float vs[V3_KEYS][V3_MAX_HD];
    int h = blockIdx.y, b = blockIdx.z, g = h / (heads / kvHeads);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, per = headDim >> 5;
    int first = blockIdx.x * V3_ROWS;
    long long qStride = (long long)heads * headDim, kvStride = (long long)kvHeads * headDim;
    const bf16* qb = q + (long long)b * length * qStride + (long long)h * headDim;
    const bf16* kb = k + (long long)b * length * kvStride + (long long)g * headDim;
    const bf16* vb = v + (long long)b * length * kvStride + (long long)g * headDim;
    float scale = rsqrtf((float)headDim);

    for (int idx = threadIdx.x; idx < V3_ROWS * headDim; idx += blockDim.x)
    {
        int r = idx / headDim, d = idx % headDim;
        qs[r][d] = first + r < length ? bf16_to_float(qb[(first + r) * qStride + d]) * scale : 0.0f;
    }

    float m[V3_ROWS_PER_WARP], l[V3_ROWS_PER_WARP], acc[V3_ROWS_PER_WARP][V3_PER_LANE];
    for (int r = 0; r < V3_ROWS_PER_WARP; r++)
    {
        m[r] = -3.402823466e38f;
        l[r] = 0.0f;
        for (int e = 0; e < V3_PER_LANE; e++) acc[r][e] = 0.0f;
    }

    int last = min(first + V3_ROWS, length) - 1; // the block's last row sees keys 0 … last
    for (int tile = 0; tile <= last; tile += V3_KEYS)
    {
        __syncthreads(); // the previous tile is consumed (and qs is written before the first)
        for (int idx = threadIdx.x; idx < V3_KEYS * headDim; idx += blockDim.x)
        {
            int j = idx / headDim, d = idx % headDim;
            bool in = tile + j < length;
            ks[j][d] = in ? bf16_to_float(kb[(tile + j) * kvStride + d]) : 0.0f;
            vs[j][d] = in ? bf16_to_float(vb[(tile + j) * kvStride + d]) : 0.0f;
        }
        __syncthreads();
        for (int r = 0; r < V3_ROWS_PER_WARP; r++)
        {
            int row = warp * V3_ROWS_PER_WARP + r, i = first + row, j = tile + lane;
            float s = 0.0f;
            for (int d = 0; d < headDim; d++) s += qs[row][d] * ks[lane][d];
            bool visible = j <= i && j < length;
            float tileMax = warp_max(visible ? s : -3.402823466e38f);
            float mNew = fmaxf(m[r], tileMax);
            float p = visible ? __expf(s - mNew) : 0.0f;
            float correction = __expf(m[r] - mNew);
            l[r] = l[r] * correction + warp_sum(p);
            m[r] = mNew;
            for (int e = 0; e < V3_PER_LANE; e++) acc[r][e] *= correction;
            for (int jj = 0; jj < V3_KEYS; jj++)
            {
                float pj = __shfl_sync(0xffffffffu, p, jj);
                for (int e = 0; e < V3_PER_LANE; e++)
                    if (e < per) acc[r][e] += pj * vs[jj][lane + 32 * e];
            }
        }
    }
    for (int r = 0; r < V3_ROWS_PER_WARP; r++)
    {
        int i = first + warp * V3_ROWS_PER_WARP + r;
        if (i >= length) continue;
        bf16* o = out + ((long long)b * length + i) * qStride + (long long)h * headDim;
        for (int e = 0; e < per; e++) o[lane + 32 * e] = float_to_bf16(acc[r][e] / l[r]);
    }
}
