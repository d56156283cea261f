// Rotary position embedding, rotate-half convention, in place on bf16 activations (forward) or bf16 activation
// gradients (backward: the inverse rotation). Dimensions: T rows, heads per row, HD head dim.
// angle = position · invFreq in fp32, as transformers computes it; cos/sin of that fp32 angle.
#include "common.cuh"

// grid (T, heads), block (HD/2 threads, ≤ 1024).
extern "C" __global__ void rope_forward(bf16* __restrict__ x, const int* __restrict__ positions,
                                       const float* __restrict__ invFreq, int heads, int headDim)
{
    int half = headDim >> 1, j = threadIdx.x;
    if (j >= half) return;
    long long base = ((long long)blockIdx.x * heads + blockIdx.y) * headDim;
    float angle = (float)positions[blockIdx.x] * invFreq[j];
    float c = cosf(angle), s = sinf(angle);
    float a = bf16_to_float(x[base + j]), b = bf16_to_float(x[base + j + half]);
    x[base + j] = float_to_bf16(a * c - b * s);
    x[base + j + half] = float_to_bf16(b * c + a * s);
}

// The transpose of the forward's rotation (= rotation by −angle, same fp32 angle) applied to ∂L/∂rope(x) in place.
// grid (T, heads), block (HD/2 threads, ≤ 1024).
extern "C" __global__ void rope_backward(bf16* __restrict__ grad, const int* __restrict__ positions,
                                        const float* __restrict__ invFreq, int heads, int headDim)
{
    int half = headDim >> 1, j = threadIdx.x;
    if (j >= half) return;
    long long base = ((long long)blockIdx.x * heads + blockIdx.y) * headDim;
    float angle = (float)positions[blockIdx.x] * invFreq[j];
    float c = cosf(angle), s = sinf(angle);
    float a = bf16_to_float(grad[base + j]), b = bf16_to_float(grad[base + j + half]);
    grad[base + j] = float_to_bf16(a * c + b * s);
    grad[base + j + half] = float_to_bf16(b * c - a * s);
}
