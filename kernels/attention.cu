// Causal GQA attention, first versions: one block per (query row, query head), scores in shared memory.
// Simple and exact (fp32 softmax); the flash-style tensor-core kernels replace these for long sequences.
// Dimensions: NH query heads, NKV key/value heads, HD head dim; bf16 storage.
#include "common.cuh"

// out[0 … HD) = Σ_s softmax_s(q·k_s/√HD) · v_s over the first `visible` key rows. k and v point at the kv head's
// slice of position 0; consecutive positions are `rowStride` elements apart. scores holds `visible` floats.
__device__ void attend_row(bf16* __restrict__ out, const bf16* __restrict__ q, const bf16* __restrict__ k,
                           const bf16* __restrict__ v, long long rowStride, int visible, int headDim,
                           float* scores, float* scratch)
{
    float scale = rsqrtf((float)headDim);
    // scores: one warp per key, lanes over the head dimension
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int s = warp; s < visible; s += warps)
    {
        float dot = 0.0f;
        for (int d = lane; d < headDim; d += 32) dot += bf16_to_float(q[d]) * bf16_to_float(k[s * rowStride + d]);
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
        for (int s = 0; s < visible; s++) acc += scores[s] * bf16_to_float(v[s * rowStride + d]);
        out[d] = float_to_bf16(acc * inv);
    }
}

// T query rows of one sequence at positions start … start+T−1 against S ≥ start+T cached positions.
// q, out [T, NH·HD]; k, v [S, NKV·HD]. grid (T, NH), block (128), dynamic shared memory (start + T) floats.
extern "C" __global__ void attention_forward_rows(bf16* __restrict__ out, const bf16* __restrict__ q,
                                                 const bf16* __restrict__ k, const bf16* __restrict__ v,
                                                 int start, int heads, int kvHeads, int headDim)
{
    extern __shared__ float scores[];
    __shared__ float scratch[32];
    int t = blockIdx.x, head = blockIdx.y, kvHead = head / (heads / kvHeads);
    long long row = ((long long)t * heads + head) * headDim;
    attend_row(out + row, q + row, k + (long long)kvHead * headDim, v + (long long)kvHead * headDim,
               (long long)kvHeads * headDim, start + t + 1, headDim, scores, scratch);
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
    long long row = ((long long)b * heads + head) * headDim;
    long long cache = (long long)b * capacity * kvHeads * headDim + (long long)kvHead * headDim;
    attend_row(out + row, q + row, kCache + cache, vCache + cache, (long long)kvHeads * headDim, positions[b] + 1,
               headDim, scores, scratch);
}
