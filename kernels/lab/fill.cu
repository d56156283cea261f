// Kernel lab and `spark bench kernels` utility: fills benchmark inputs on the device, so a 1.5B-element tensor needs
// no host upload. Values are uniform in [lo, hi) from a counter-based hash of (seed, index): never all zeros, the
// same for every run and every device, and any sub-range can be reproduced on the host for a reference check.
#include "common.cuh"

__device__ __forceinline__ float lab_uniform(long long i, unsigned int seed, float lo, float hi)
{
    unsigned int h = hash_u32((unsigned int)i ^ hash_u32(seed ^ (unsigned int)(i >> 32) * 0x9e3779b9u));
    return lo + (hi - lo) * ((float)(h >> 8) * (1.0f / 16777216.0f));
}

// p[i] = uniform(lo, hi) rounded to bf16, i in [0, n). Grid-stride loop.
extern "C" __global__ void lab_fill_bf16(bf16* __restrict__ p, long long n, unsigned int seed, float lo, float hi)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        p[i] = float_to_bf16(lab_uniform(i, seed, lo, hi));
}

// p[i] = uniform(lo, hi), i in [0, n). Grid-stride loop.
extern "C" __global__ void lab_fill_f32(float* __restrict__ p, long long n, unsigned int seed, float lo, float hi)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        p[i] = lab_uniform(i, seed, lo, hi);
}
