// Causal GQA attention, first versions: one block per (query row, query head), scores in shared memory.
// Simple and exact (fp32 softmax); the flash-style tensor-core kernels replace these for long sequences.
// Dimensions: T query rows of one sequence at positions start … start+T−1, S ≥ start+T cached positions,
// NH query heads, NKV key/value heads, HD head dim (≤ 256). q, out [T, NH·HD]; k, v [S, NKV·HD]; all bf16.
#include "common.cuh"

// grid (T, NH), block (128), dynamic shared memory (start + T) floats.
extern "C" __global__ void attention_forward_rows(bf16* __restrict__ out, const bf16* __restrict__ q,
                                                 const bf16* __restrict__ k, const bf16* __restrict__ v,
                                                 int start, int heads, int kvHeads, int headDim)
{
    extern __shared__ float scores[];
    __shared__ float scratch[32];
    int t = blockIdx.x, head = blockIdx.y, kvHead = head / (heads / kvHeads);
    int visible = start + t + 1;
    long long qBase = ((long long)t * heads + head) * headDim;
    float scale = rsqrtf((float)headDim);

    // scores: one warp per key, lanes over the head dimension
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int s = warp; s < visible; s += warps)
    {
        long long kBase = ((long long)s * kvHeads + kvHead) * headDim;
        float dot = 0.0f;
        for (int d = lane; d < headDim; d += 32) dot += bf16_to_float(q[qBase + d]) * bf16_to_float(k[kBase + d]);
        dot = warp_sum(dot);
        if (lane == 0) scores[s] = dot * scale;
    }
    __syncthreads();

    float m = -3.402823466e38f;
    for (int s = threadIdx.x; s < visible; s += blockDim.x) m = fmaxf(m, scores[s]);
    m = block_max(m, scratch);
    float sum = 0.0f;
    for (int s = threadIdx.x; s < visible; s += blockDim.x)
    {
        float e = __expf(scores[s] - m);
        scores[s] = e;
        sum += e;
    }
    float inv = 1.0f / block_sum(sum, scratch);
    __syncthreads();

    for (int d = threadIdx.x; d < headDim; d += blockDim.x)
    {
        float acc = 0.0f;
        for (int s = 0; s < visible; s++) acc += scores[s] * bf16_to_float(v[((long long)s * kvHeads + kvHead) * headDim + d]);
        out[qBase + d] = float_to_bf16(acc * inv);
    }
}

// Decode against per-sequence KV caches: one query row per sequence b at position positions[b] (it sees cache rows
// 0 … positions[b]). q, out [B, NH·HD]; kCache, vCache [B, capacity, NKV·HD]. grid (B, NH), block (128),
// dynamic shared memory (max position + 1) floats.
extern "C" __global__ void attention_decode(bf16* __restrict__ out, const bf16* __restrict__ q,
                                           const bf16* __restrict__ kCache, const bf16* __restrict__ vCache,
                                           const int* __restrict__ positions, int capacity, int heads, int kvHeads, int headDim)
{
    extern __shared__ float scores[];
    __shared__ float scratch[32];
    int b = blockIdx.x, head = blockIdx.y, kvHead = head / (heads / kvHeads);
    int visible = positions[b] + 1;
    long long qBase = ((long long)b * heads + head) * headDim;
    long long cacheBase = (long long)b * capacity * kvHeads * headDim;
    float scale = rsqrtf((float)headDim);

    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int s = warp; s < visible; s += warps)
    {
        long long kBase = cacheBase + ((long long)s * kvHeads + kvHead) * headDim;
        float dot = 0.0f;
        for (int d = lane; d < headDim; d += 32) dot += bf16_to_float(q[qBase + d]) * bf16_to_float(kCache[kBase + d]);
        dot = warp_sum(dot);
        if (lane == 0) scores[s] = dot * scale;
    }
    __syncthreads();

    float m = -3.402823466e38f;
    for (int s = threadIdx.x; s < visible; s += blockDim.x) m = fmaxf(m, scores[s]);
    m = block_max(m, scratch);
    float sum = 0.0f;
    for (int s = threadIdx.x; s < visible; s += blockDim.x)
    {
        float e = __expf(scores[s] - m);
        scores[s] = e;
        sum += e;
    }
    float inv = 1.0f / block_sum(sum, scratch);
    __syncthreads();

    for (int d = threadIdx.x; d < headDim; d += blockDim.x)
    {
        float acc = 0.0f;
        for (int s = 0; s < visible; s++)
            acc += scores[s] * bf16_to_float(vCache[cacheBase + ((long long)s * kvHeads + kvHead) * headDim + d]);
        out[qBase + d] = float_to_bf16(acc * inv);
    }
}
