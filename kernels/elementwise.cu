// Element-wise ops on bf16 activations, fp32 arithmetic.
#include "common.cuh"

// out = a + b over n elements; out may alias a or b (each element is read before it is written, by one thread).
// grid-stride loop: grid (min(ceil(n / 256), 65535)), block (256).
extern "C" __global__ void add_bf16(bf16* out, const bf16* a, const bf16* b, long long n)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        out[i] = float_to_bf16(bf16_to_float(a[i]) + bf16_to_float(b[i]));
}

// out = in converted (Copy between element types): fp32 → bf16 rounds to nearest even, bf16 → fp32 is exact.
// grid-stride: grid (min(ceil(n / 256), 65535)), block (256).
extern "C" __global__ void convert_f32_to_bf16(bf16* __restrict__ out, const float* __restrict__ in, long long n)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        out[i] = float_to_bf16(in[i]);
}

extern "C" __global__ void convert_bf16_to_f32(float* __restrict__ out, const bf16* __restrict__ in, long long n)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        out[i] = bf16_to_float(in[i]);
}
