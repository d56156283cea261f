// Fused cross-entropy over a vocabulary row: loss[t] = logZ − logit[target] (fp32), grad = scale·(softmax − onehot)
// (bf16, overwritten, may be the logits themselves). A target of −1 ignores the row: loss 0, gradient 0.
// Dimensions: T rows, V vocabulary. grid (T), block (512). One pass for the online max / sum-exp, one for the gradient.
#include "common.cuh"

// logitsGrad and logits may alias (no __restrict__): every logit is read by the thread that later overwrites it, and
// the target logit is read before the block reductions, whose barriers order it before any gradient write.
extern "C" __global__ void __launch_bounds__(512) cross_entropy_forward_backward(float* __restrict__ losses,
    bf16* logitsGrad, const bf16* logits, const int* __restrict__ targets, int vocab, float gradScale)
{
    __shared__ float scratch[32];
    long long base = (long long)blockIdx.x * vocab;
    int target = targets[blockIdx.x];
    if (target < 0)
    {
        for (int i = threadIdx.x; i < vocab; i += blockDim.x) logitsGrad[base + i] = 0; // +0.0 in bf16
        if (threadIdx.x == 0) losses[blockIdx.x] = 0.0f;
        return;
    }
    float targetLogit = bf16_to_float(logits[base + target]); // every thread, before anything is overwritten
    // online log-sum-exp per thread, then combined across the block
    float m = -3.402823466e38f, s = 0.0f;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    {
        float x = bf16_to_float(logits[base + i]);
        if (x > m) { s = s * expf(m - x) + 1.0f; m = x; }
        else s += expf(x - m);
    }
    float blockMax = block_max(m, scratch);
    float sum = block_sum(s * expf(m - blockMax), scratch);
    float logSum = logf(sum);
    // (max − x_target) + log Σ exp(x − max): exact 0 + log(sum) when the target is the max, no cancellation
    if (threadIdx.x == 0) losses[blockIdx.x] = (blockMax - targetLogit) + logSum;
    float shift = blockMax + logSum;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    {
        float p = expf(bf16_to_float(logits[base + i]) - shift);
        logitsGrad[base + i] = float_to_bf16(gradScale * (p - (i == target ? 1.0f : 0.0f)));
    }
}
