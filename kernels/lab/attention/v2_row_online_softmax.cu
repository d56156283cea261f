// Lab: causal attention v2 — one block per (query row, head), online softmax, nothing in global memory.
// What changed from v1: the score matrix is never stored. Each of the block's 4 warps walks every 4th key with its
// own running (max m, sum l, accumulator acc) — the online softmax of Milakov & Gimelshein 2018, as FlashAttention
// uses it: on a new max m', acc and l are rescaled by exp(m − m') — and the 4 partial states are merged once at the
// end through shared memory. Lanes split the head dimension (HD/32 values each), so a dot product is one warp_sum.
// Also unlike the engine's first kernel, no per-row score buffer in shared memory: any length runs.
// Why not the end: every block re-reads all of K and V of its prefix from L2/HBM (no reuse across query rows), and
// the dot products run on CUDA cores in fp32, one shuffle reduction per key.
// Requires HD % 32 == 0 and HD ≤ 128. Dimensions and layout as v1.
#include "common.cuh"

#define V2_WARPS 4
#define V2_MAX_PER_LANE 4 // HD ≤ 128

// grid (L, NH, B), block (128).
extern "C" __global__ void attention_v2(bf16* __restrict__ out, const bf16* __restrict__ q, const bf16* __restrict__ k,
                                        const bf16* __restrict__ v, int length, int heads, int kvHeads, int headDim)
{
    __shared__ float state_m[V2_WARPS], state_l[V2_WARPS];
    __shared__ float state_acc[V2_WARPS][V2_MAX_PER_LANE * 32];
    int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z, g = h / (heads / kvHeads);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, per = headDim >> 5;
    float scale = rsqrtf((float)headDim);
    const bf16* qi = q + ((long long)(b * length + i) * heads + h) * headDim;
    long long stride = (long long)kvHeads * headDim;
    const bf16* kb = k + (long long)b * length * stride + (long long)g * headDim;
    const bf16* vb = v + (long long)b * length * stride + (long long)g * headDim;

    float qr[V2_MAX_PER_LANE], acc[V2_MAX_PER_LANE];
    for (int e = 0; e < V2_MAX_PER_LANE; e++) { qr[e] = e < per ? bf16_to_float(qi[lane + 32 * e]) * scale : 0.0f; acc[e] = 0.0f; }
    float m = -3.402823466e38f, l = 0.0f;
    for (int j = warp; j <= i; j += V2_WARPS)
    {
        float dot = 0.0f;
        for (int e = 0; e < per; e++) dot += qr[e] * bf16_to_float(kb[j * stride + lane + 32 * e]);
        float s = warp_sum(dot);
        float mNew = fmaxf(m, s);
        float correction = __expf(m - mNew), p = __expf(s - mNew);
        l = l * correction + p;
        for (int e = 0; e < per; e++) acc[e] = acc[e] * correction + p * bf16_to_float(vb[j * stride + lane + 32 * e]);
        m = mNew;
    }
    if (lane == 0) { state_m[warp] = m; state_l[warp] = l; }
    for (int e = 0; e < per; e++) state_acc[warp][lane + 32 * e] = acc[e];
    __syncthreads();
    if (warp != 0) return;
    float mAll = state_m[0];
    for (int w = 1; w < V2_WARPS; w++) mAll = fmaxf(mAll, state_m[w]);
    float lAll = 0.0f;
    float total[V2_MAX_PER_LANE] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int w = 0; w < V2_WARPS; w++)
    {
        if (state_l[w] == 0.0f) continue; // a warp that saw no key (rows i < 3)
        float c = __expf(state_m[w] - mAll);
        lAll += state_l[w] * c;
        for (int e = 0; e < per; e++) total[e] += state_acc[w][lane + 32 * e] * c;
    }
    bf16* o = out + ((long long)(b * length + i) * heads + h) * headDim;
    for (int e = 0; e < per; e++) o[lane + 32 * e] = float_to_bf16(total[e] / lAll);
}
