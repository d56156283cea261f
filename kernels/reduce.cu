// Deterministic reductions. Dimensions: n elements, P partitions (a function of the shape only, never of the device),
// R rows, C columns.
// - Σ x² (gradient norms): sum_squares_partial_{f32,bf16}<<<P, 256>>> write one float64 partial per block (each thread
//   accumulates its grid-stride elements in float64, then a fixed tree), sum_partials<<<1, 256>>> adds them in a fixed
//   order. float64 arithmetic is half the fp32 rate on sm_80/sm_90, ample for a pass bound by memory bandwidth.
// - Column sums (bias and RMSNorm weight gradients): fp32 partial sums per row partition, then column_sums_add adds
//   the partitions to the output in order.
#include "common.cuh"
#include "reduce.cuh"

extern "C" __global__ void __launch_bounds__(256) sum_squares_partial_f32(double* __restrict__ partials,
                                                                         const float* __restrict__ x, long long n)
{
    __shared__ double scratch[32];
    double sum = 0.0;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    {
        double e = x[i];
        sum += e * e;
    }
    sum = block_sum_double(sum, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

extern "C" __global__ void __launch_bounds__(256) sum_squares_partial_bf16(double* __restrict__ partials,
                                                                          const bf16* __restrict__ x, long long n)
{
    __shared__ double scratch[32];
    double sum = 0.0;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    {
        float e = bf16_to_float(x[i]);
        sum += (double)(e * e); // exact: an 8-bit significand squared fits fp32's 24 bits
    }
    sum = block_sum_double(sum, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

// *result = Σ partials (overwritten). grid (1), block (256).
extern "C" __global__ void __launch_bounds__(256) sum_partials(double* __restrict__ result,
                                                              const double* __restrict__ partials, int count)
{
    __shared__ double scratch[32];
    double sum = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    sum = block_sum_double(sum, scratch);
    if (threadIdx.x == 0) *result = sum;
}

// partials[p, c] = Σ x[r, c] over the rows r of partition p (rows p·rowsPerPart … min(R, (p+1)·rowsPerPart) − 1,
// increasing), x bf16 [R, C], partials fp32 [P, C]. grid (ceil(C / 256), P), block (256).
extern "C" __global__ void column_sums_partial_bf16(float* __restrict__ partials, const bf16* __restrict__ x, int rows,
                                                   int cols, int rowsPerPart)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    int first = blockIdx.y * rowsPerPart, last = min(rows, first + rowsPerPart);
    float sum = 0.0f;
    for (int r = first; r < last; r++) sum += bf16_to_float(x[(long long)r * cols + c]);
    partials[(long long)blockIdx.y * cols + c] = sum;
}

// out[c] += Σ_p partials[p, c], p increasing (out fp32 [C], partials fp32 [P, C]). grid (ceil(C / 256)), block (256).
extern "C" __global__ void column_sums_add(float* __restrict__ out, const float* __restrict__ partials, int parts, int cols)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float sum = 0.0f;
    for (int p = 0; p < parts; p++) sum += partials[(long long)p * cols + c];
    out[c] += sum;
}
