// AdamW (Loshchilov & Hutter 2019, decoupled weight decay) over n parameters. The gradient is pre-multiplied by
// gradScale (clipping and averaging folded in); biasCorrection1/2 are 1 − β1^step and 1 − β2^step (computed in float64
// on the host). Gradients and moments fp32. grid-stride: grid (min(ceil(n / 256), 65535)), block (256).
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

// fp32 master weights and moments, bf16 working copy written back rounded to nearest even.
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

// fp32 parameters updated in place (no master copy needed).
extern "C" __global__ void adamw_step_f32(float* __restrict__ params, const float* __restrict__ grads,
                                         float* __restrict__ m, float* __restrict__ v, long long n, float lr, float beta1,
                                         float beta2, float eps, float weightDecay, float biasCorrection1,
                                         float biasCorrection2, float gradScale)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        params[i] = adamw_update(params[i], grads[i], m, v, i, lr, beta1, beta2, eps, weightDecay, biasCorrection1,
                                 biasCorrection2, gradScale);
}

// The same step without a master copy: the bf16 weights are updated in fp32 from their bf16 value and rounded
// stochastically, so small updates survive in expectation (12 bytes per parameter instead of 16). The 16 random bits
// of element i are a hash of (seed, step, i): reproducible, and different at every step and element.
extern "C" __global__ void adamw_step_stochastic(bf16* __restrict__ params, const float* __restrict__ grads,
                                                float* __restrict__ m, float* __restrict__ v, long long n, float lr,
                                                float beta1, float beta2, float eps, float weightDecay,
                                                float biasCorrection1, float biasCorrection2, float gradScale,
                                                unsigned int seed, unsigned int step)
{
    unsigned int key = hash_u32(seed ^ hash_u32(step * 0x9e3779b9u + 0x632be5abu));
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    {
        float p = adamw_update(bf16_to_float(params[i]), grads[i], m, v, i, lr, beta1, beta2, eps, weightDecay,
                               biasCorrection1, biasCorrection2, gradScale);
        unsigned int bits = hash_u32(hash_u32(key ^ (unsigned int)(i >> 32)) ^ (unsigned int)i);
        params[i] = float_to_bf16_stochastic(p, bits);
    }
}
