// Lab: log-prob gather v2 — token chunks, one fused online pass per row, no [T, V] tensor.
// What changed from v1: the runner computes the logits of C = T/8 tokens at a time into one reused [C, V] bf16
// buffer (cuBLASLt), and this kernel reads each row once, keeping a running max m, s = Σ exp(z − m) and
// w = Σ exp(z − m)·z (rescaled by exp(m − m') when the max grows; the online log-sum-exp of Milakov & Gimelshein
// 2018). Then logsumexp = m + log s, entropy = logsumexp − w/s, and the target logit is picked up on the way.
// Extra memory: C·V·2 bytes, 1/8 of v1's logits alone (1/24 of v1's total); HBM traffic for the softmax part: one
// read of the logits instead of four passes over [T, V].
// Why not the end: the logits chunk still makes a round trip through HBM (write by the GEMM, read here); the
// engine's op (v3) aims to consume GEMM tiles on chip.
// Dimensions: C chunk rows, V vocabulary. logits [C, V] bf16; targets, logProbs, entropies, logSumExp [C].
#include "common.cuh"

// Merges two online states (m, s, w) into the first.
__device__ __forceinline__ void merge_state(float& m, float& s, float& w, float m2, float s2, float w2)
{
    float mNew = fmaxf(m, m2);
    float c1 = s == 0.0f ? 0.0f : __expf(m - mNew), c2 = s2 == 0.0f ? 0.0f : __expf(m2 - mNew);
    s = s * c1 + s2 * c2;
    w = w * c1 + w2 * c2;
    m = mNew;
}

// grid (C), block (256).
extern "C" __global__ void logprob_v2_online(float* __restrict__ logProbs, float* __restrict__ entropies, float* __restrict__ logSumExp,
                                             const bf16* __restrict__ logits, const int* __restrict__ targets, int vocab)
{
    __shared__ float sm[32], ss[32], sw[32];
    const bf16* z = logits + (long long)blockIdx.x * vocab;
    float m = -3.402823466e38f, s = 0.0f, w = 0.0f;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x)
    {
        float x = bf16_to_float(z[j]);
        if (x > m) { float c = __expf(m - x); s *= c; w *= c; m = x; }
        float e = __expf(x - m);
        s += e;
        w += e * x;
    }
    for (int offset = 16; offset > 0; offset >>= 1)
        merge_state(m, s, w, __shfl_xor_sync(0xffffffffu, m, offset), __shfl_xor_sync(0xffffffffu, s, offset),
                    __shfl_xor_sync(0xffffffffu, w, offset));
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    if (lane == 0) { sm[warp] = m; ss[warp] = s; sw[warp] = w; }
    __syncthreads();
    if (warp != 0) return;
    m = lane < warps ? sm[lane] : -3.402823466e38f;
    s = lane < warps ? ss[lane] : 0.0f;
    w = lane < warps ? sw[lane] : 0.0f;
    for (int offset = 16; offset > 0; offset >>= 1)
        merge_state(m, s, w, __shfl_xor_sync(0xffffffffu, m, offset), __shfl_xor_sync(0xffffffffu, s, offset),
                    __shfl_xor_sync(0xffffffffu, w, offset));
    if (lane == 0)
    {
        float lse = m + __logf(s);
        int target = targets[blockIdx.x];
        logProbs[blockIdx.x] = target < 0 ? 0.0f : bf16_to_float(z[target]) - lse;
        entropies[blockIdx.x] = lse - w / s;
        logSumExp[blockIdx.x] = lse;
    }
}
