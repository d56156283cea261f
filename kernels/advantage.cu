// Group-relative advantages of outcome rewards (GRPO, Shao et al. 2024, arXiv 2402.03300; Dr. GRPO, Liu et al. 2025,
// arXiv 2503.20783). Dimensions: N rewards in N / G consecutive groups of G. Rewards and advantages fp32; means and
// standard deviations accumulated in float64 (sums over a block with a fixed tree: deterministic), as the CPU reference.
#include "common.cuh"
#include "reduce.cuh"

// mean of x[0 … n−1] and the sum of squared deviations from it, two passes in float64. Every thread gets both.
__device__ __forceinline__ double2 mean_and_squares(const float* __restrict__ x, int n, double* scratch)
{
    double sum = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) sum += x[i];
    double mean = block_sum_double(sum, scratch) / n;
    double squares = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
    {
        double d = x[i] - mean;
        squares += d * d;
    }
    return make_double2(mean, block_sum_double(squares, scratch));
}

// *batchStd = unbiased (Bessel) standard deviation of all N rewards, 0 when N < 2. grid (1), block (256).
extern "C" __global__ void __launch_bounds__(256) reward_std(double* __restrict__ batchStd,
                                                            const float* __restrict__ rewards, int n)
{
    __shared__ double scratch[32];
    double2 ms = mean_and_squares(rewards, n, scratch);
    if (threadIdx.x == 0) *batchStd = n < 2 ? 0.0 : sqrt(ms.y / (n - 1));
}

// advantages[g·G + i] = (r − mean_g) · scale with scale by mode: 0 GroupStd 1 / (std_g + eps) (Bessel, 0 for G = 1),
// 1 None 1, 2 BatchStd 1 / (*batchStd + eps). grid (N / G), block (128).
extern "C" __global__ void __launch_bounds__(128) group_advantage(float* __restrict__ advantages,
    const float* __restrict__ rewards, const double* __restrict__ batchStd, int groupSize, int mode, float eps)
{
    __shared__ double scratch[32];
    long long base = (long long)blockIdx.x * groupSize;
    double2 ms = mean_and_squares(rewards + base, groupSize, scratch);
    double scale = 1.0;
    if (mode == 0) scale = 1.0 / ((groupSize < 2 ? 0.0 : sqrt(ms.y / (groupSize - 1))) + (double)eps);
    else if (mode == 2) scale = 1.0 / (*batchStd + (double)eps);
    for (int i = threadIdx.x; i < groupSize; i += blockDim.x)
        advantages[base + i] = (float)((rewards[base + i] - ms.x) * scale);
}
