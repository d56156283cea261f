// Row-wise softmax and log-softmax of bf16 rows [R, C], fp32 arithmetic, numerically stable (the row max is
// subtracted before exp, so large scores neither overflow nor all underflow). One block per row.
#include "common.cuh"

// Returns (max, Σ exp(x − max)) of one row; every thread of the block gets both.
__device__ __forceinline__ float2 row_max_and_sum(const bf16* __restrict__ x, int cols, float* scratch)
{
    float m = -3.402823466e38f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, bf16_to_float(x[c]));
    m = block_max(m, scratch);
    float sum = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) sum += expf(bf16_to_float(x[c]) - m);
    sum = block_sum(sum, scratch);
    return make_float2(m, sum);
}

// out[r, c] = exp(x[r, c] − max_r) / Σ_c' exp(x[r, c'] − max_r). grid (R), block (256 or a multiple of 32 ≤ 1024).
// out may alias in.
extern "C" __global__ void softmax_forward(bf16* out, const bf16* in, int cols)
{
    __shared__ float scratch[32];
    long long base = (long long)blockIdx.x * cols;
    float2 ms = row_max_and_sum(in + base, cols, scratch);
    float inv = 1.0f / ms.y;
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
        out[base + c] = float_to_bf16(expf(bf16_to_float(in[base + c]) - ms.x) * inv);
}

// out[r, c] = x[r, c] − max_r − log Σ_c' exp(x[r, c'] − max_r). grid (R), block (256). out may alias in.
extern "C" __global__ void log_softmax_forward(bf16* out, const bf16* in, int cols)
{
    __shared__ float scratch[32];
    long long base = (long long)blockIdx.x * cols;
    float2 ms = row_max_and_sum(in + base, cols, scratch);
    float shift = ms.x + logf(ms.y);
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
        out[base + c] = float_to_bf16(bf16_to_float(in[base + c]) - shift);
}
