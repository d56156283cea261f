// Lab: log-prob gather v1 — materialise everything, as `log_softmax(h·Wᵀ).gather(targets)` does in PyTorch.
// What: the runner computes logits = hidden·Wᵀ [T, V] bf16 with the backend's cuBLASLt MatMul; these kernels then
// write the full log-softmax [T, V] fp32 (three passes per row: max, Σexp, write) and gather log p(target) and the
// entropy from it (one more pass). Extra memory: T·V·(2 + 4) bytes — 3.7 GB at T = 4096, V = 151 936.
// Why it is slow: the [T, V] tensors go through HBM four times, and they are the memory ceiling of RL batch sizes.
// Dimensions: T tokens, V vocabulary. logits [T, V] bf16; logSoftmax [T, V] fp32; targets [T]; logProbs, entropies,
// logSumExp [T] fp32 (a target of −1 gives log-prob 0).
#include "common.cuh"

// grid (T), block (256): logSoftmax[t] = logits[t] − logsumexp(logits[t]); logSumExp[t] saved.
extern "C" __global__ void logprob_v1_log_softmax(float* __restrict__ logSoftmax, float* __restrict__ logSumExp,
                                                  const bf16* __restrict__ logits, int vocab)
{
    __shared__ float scratch[32];
    const bf16* z = logits + (long long)blockIdx.x * vocab;
    float m = -3.402823466e38f;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) m = fmaxf(m, bf16_to_float(z[j]));
    m = block_max(m, scratch);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) sum += __expf(bf16_to_float(z[j]) - m);
    float lse = m + __logf(block_sum(sum, scratch));
    float* out = logSoftmax + (long long)blockIdx.x * vocab;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) out[j] = bf16_to_float(z[j]) - lse;
    if (threadIdx.x == 0) logSumExp[blockIdx.x] = lse;
}

// grid (T), block (256): logProbs[t] = logSoftmax[t, targets[t]]; entropies[t] = −Σ_j p_j · log p_j.
extern "C" __global__ void logprob_v1_gather(float* __restrict__ logProbs, float* __restrict__ entropies,
                                             const float* __restrict__ logSoftmax, const int* __restrict__ targets, int vocab)
{
    __shared__ float scratch[32];
    const float* row = logSoftmax + (long long)blockIdx.x * vocab;
    float h = 0.0f;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) { float lp = row[j]; h -= __expf(lp) * lp; }
    h = block_sum(h, scratch);
    if (threadIdx.x == 0)
    {
        int target = targets[blockIdx.x];
        logProbs[blockIdx.x] = target < 0 ? 0.0f : row[target];
        entropies[blockIdx.x] = h;
    }
}
