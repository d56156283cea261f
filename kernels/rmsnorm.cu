// RMSNorm, fused with the residual add that precedes it in every decoder layer.
// Dimensions: T rows, H hidden, P row partitions of the backward. Activations, weights and activation gradients bf16;
// statistics and the weight gradient fp32.
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

// Backward of y = x·s·w, s = rsqrt(mean(x²) + eps) recomputed here (the op gets no saved statistics):
// dx += s·(w·dy) − x·s³·mean(w·dy·x) (bf16, read-add-round-write), and dw = Σ_t dy·x·s split over P row partitions:
// block p takes rows p, p + P, p + 2P, … in increasing order and writes its column sums to partials[p, :] (fp32,
// [P, H]); column_sums_add (reduce.cu) then adds the P partials to the weight gradient in order. Every sum has a fixed
// order for a given shape, and no two threads write the same element: deterministic without atomics.
// grid (P ≤ T), block (256).
extern "C" __global__ void __launch_bounds__(256) rmsnorm_backward(bf16* __restrict__ inputGrad, float* __restrict__ partials,
    const bf16* __restrict__ outGrad, const bf16* __restrict__ input, const bf16* __restrict__ weight, int rows, int hidden,
    float eps)
{
    __shared__ float scratch[32];
    float* partial = partials + (long long)blockIdx.x * hidden;
    // each thread owns the columns i ≡ threadIdx.x (mod blockDim.x) of its partition's row: no sync needed
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) partial[i] = 0.0f;
    for (int r = blockIdx.x; r < rows; r += gridDim.x) // uniform over the block: every thread reaches block_sum
    {
        long long base = (long long)r * hidden;
        float squares = 0.0f, dot = 0.0f;
        for (int i = threadIdx.x; i < hidden; i += blockDim.x)
        {
            float x = bf16_to_float(input[base + i]);
            squares += x * x;
            dot += bf16_to_float(weight[i]) * bf16_to_float(outGrad[base + i]) * x;
        }
        float s = rsqrtf(block_sum(squares, scratch) / hidden + eps);
        float c = block_sum(dot, scratch) / hidden * s * s * s;
        for (int i = threadIdx.x; i < hidden; i += blockDim.x)
        {
            float x = bf16_to_float(input[base + i]), dy = bf16_to_float(outGrad[base + i]);
            float dx = bf16_to_float(inputGrad[base + i]) + s * bf16_to_float(weight[i]) * dy - x * c;
            inputGrad[base + i] = float_to_bf16(dx);
            partial[i] += dy * x * s;
        }
    }
}
