// AdamW (Loshchilov & Hutter 2019, decoupled weight decay) over n parameters. The gradient is pre-multiplied by
// gradScale (clipping and averaging folded in); biasCorrection1/2 are 1 − β1^step and 1 − β2^step.
#include "common.cuh"

// Updates the moments of element i and returns the new value of parameter p.
__device__ __forceinline__ float adamw_update(float p, float grad, float* m, float* v, long long i, float lr, float beta1,
                                              float beta2, float eps, float weightDecay, float biasCorrection1,
                                              float biasCorrection2, float gradScale)
{
    float g = grad * gradScale;
    float mi = beta1 * m[i] + (1.0f - beta1) * g;
    float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    return p - lr * ((mi / biasCorrection1) / (sqrtf(vi / biasCorrection2) + eps) + weightDecay * p);
}

// fp32 master weights and moments, bf16 working copy written back.
extern "C" __global__ void adamw_step(float* __restrict__ master, bf16* __restrict__ params, const float* __restrict__ grads,
                                     float* __restrict__ m, float* __restrict__ v, long long n, float lr, float beta1,
                                     float beta2, float eps, float weightDecay, float biasCorrection1,
                                     float biasCorrection2, float gradScale)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    {
        float p = adamw_update(master[i], grads[i], m, v, i, lr, beta1, beta2, eps, weightDecay, biasCorrection1,
                               biasCorrection2, gradScale);
        master[i] = p;
        params[i] = float_to_bf16(p);
    }
}

// The same step without a master copy: the bf16 weights are updated in place with stochastic rounding, so small
// updates survive in expectation (12 bytes per parameter instead of 16). seed varies per step.
extern "C" __global__ void adamw_step_stochastic(bf16* __restrict__ params, const float* __restrict__ grads,
                                                float* __restrict__ m, float* __restrict__ v, long long n, float lr,
                                                float beta1, float beta2, float eps, float weightDecay,
                                                float biasCorrection1, float biasCorrection2, float gradScale,
                                                unsigned int seed)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    {
        float p = adamw_update(bf16_to_float(params[i]), grads[i], m, v, i, lr, beta1, beta2, eps, weightDecay,
                               biasCorrection1, biasCorrection2, gradScale);
        params[i] = float_to_bf16_stochastic(p, hash_u32((unsigned int)i ^ hash_u32(seed)));
    }
}
