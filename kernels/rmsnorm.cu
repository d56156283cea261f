// RMSNorm, fused with the residual add that precedes it in every decoder layer.
// Dimensions: T rows, H hidden. Activations bf16, statistics and gradients fp32.
#include "common.cuh"

// residual[t] += delta[t] (when delta is not null); out[t] = residual[t] · rstd[t] · weight, rstd = rsqrt(mean(r²) + eps).
// grid (T), block (256 or a multiple of 32). rstd [T] is saved for the backward (may be null at inference).
extern "C" __global__ void rmsnorm_forward(bf16* __restrict__ out, float* __restrict__ rstd, bf16* __restrict__ residual,
                                          const bf16* __restrict__ delta, const bf16* __restrict__ weight, int hidden, float eps)
{
    __shared__ float scratch[32];
    long long base = (long long)blockIdx.x * hidden;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x)
    {
        float r = bf16_to_float(residual[base + i]);
        if (delta != nullptr)
        {
            r += bf16_to_float(delta[base + i]);
            residual[base + i] = float_to_bf16(r);
            r = bf16_to_float(residual[base + i]); // normalise what is stored, as the unfused ops would
        }
        sum += r * r;
    }
    float s = rsqrtf(block_sum(sum, scratch) / hidden + eps);
    if (threadIdx.x == 0 && rstd != nullptr) rstd[blockIdx.x] = s;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x)
        out[base + i] = float_to_bf16(bf16_to_float(residual[base + i]) * s * bf16_to_float(weight[i]));
}

// y = x·s·w with s = rsqrt(mean(x²) + eps): dx += s·(w·dy) − x·s³·mean(w·dy·x); dw is written per row into
// weightGradRows [T, H] (fp32) and reduced over rows by rmsnorm_weight_grad, so the sum order is fixed.
// grid (T), block (256).
extern "C" __global__ void rmsnorm_backward(float* __restrict__ inputGrad, float* __restrict__ weightGradRows,
                                           const float* __restrict__ outGrad, const bf16* __restrict__ input,
                                           const bf16* __restrict__ weight, const float* __restrict__ rstd, int hidden)
{
    __shared__ float scratch[32];
    long long base = (long long)blockIdx.x * hidden;
    float s = rstd[blockIdx.x];
    float dot = 0.0f;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x)
        dot += bf16_to_float(weight[i]) * outGrad[base + i] * bf16_to_float(input[base + i]);
    float mean = block_sum(dot, scratch) / hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x)
    {
        float x = bf16_to_float(input[base + i]), dy = outGrad[base + i];
        inputGrad[base + i] += s * bf16_to_float(weight[i]) * dy - x * s * s * s * mean;
        weightGradRows[base + i] = dy * x * s;
    }
}

// weightGrad[c] += Σ_t weightGradRows[t, c], t in increasing order. grid (ceil(H / blockDim.x)).
extern "C" __global__ void rmsnorm_weight_grad(float* __restrict__ weightGrad, const float* __restrict__ weightGradRows,
                                              int rows, int hidden)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= hidden) return;
    float sum = 0.0f;
    for (int t = 0; t < rows; t++) sum += weightGradRows[(long long)t * hidden + c];
    weightGrad[c] += sum;
}
