// Fused cross-entropy over a vocabulary row: loss[t] = logZ − logit[target], grad = scale·(softmax − onehot),
// written over the logits (fp32 out, bf16 in). A target of −1 ignores the row. Dimensions: T rows, V vocabulary.
// grid (T), block (1024). One pass for the online max / sum-exp, one for the gradient.
#include "common.cuh"

extern "C" __global__ void cross_entropy_forward_backward(float* __restrict__ losses, float* __restrict__ logitsGrad,
                                                         const bf16* __restrict__ logits, const int* __restrict__ targets,
                                                         int vocab, float gradScale)
{
    __shared__ float scratch[32];
    long long base = (long long)blockIdx.x * vocab;
    int target = targets[blockIdx.x];
    if (target < 0)
    {
        for (int i = threadIdx.x; i < vocab; i += blockDim.x) logitsGrad[base + i] = 0.0f;
        if (threadIdx.x == 0) losses[blockIdx.x] = 0.0f;
        return;
    }
    // online log-sum-exp per thread, then combined across the block
    float m = -3.402823466e38f, s = 0.0f;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    {
        float x = bf16_to_float(logits[base + i]);
        if (x > m) { s = s * __expf(m - x) + 1.0f; m = x; }
        else s += __expf(x - m);
    }
    float blockMax = block_max(m, scratch);
    float sum = block_sum(s * __expf(m - blockMax), scratch);
    float logZ = blockMax + logf(sum);
    if (threadIdx.x == 0) losses[blockIdx.x] = logZ - bf16_to_float(logits[base + target]);
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    {
        float p = __expf(bf16_to_float(logits[base + i]) - logZ);
        logitsGrad[base + i] = gradScale * (p - (i == target ? 1.0f : 0.0f));
    }
}
