// Deterministic sum of squares (global gradient norm): a fixed number of blocks each write a partial sum, then one
// block adds the partials in order. Run as: sum_squares_partial<<<blocks, 512>>>, sum_partials<<<1, 512>>>.
#include "common.cuh"

extern "C" __global__ void sum_squares_partial(float* __restrict__ partials, const float* __restrict__ x, long long n)
{
    __shared__ float scratch[32];
    float sum = 0.0f;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        sum += x[i] * x[i];
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

extern "C" __global__ void sum_partials(double* __restrict__ result, const float* __restrict__ partials, int count)
{
    __shared__ float scratch[32];
    float sum = 0.0f;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0) *result += (double)sum;
}
