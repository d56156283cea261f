// common.cuh: helpers shared by every kernel file. NVRTC built-ins only (no cuda_bf16.h), so kernels compile
// on machines without a CUDA toolkit.
#pragma once

// bf16 stored as its 16 raw bits; the upper half of an IEEE float32.
typedef unsigned short bf16_t;

__device__ __forceinline__ float bf16_to_float(bf16_t x) {
    return __uint_as_float(((unsigned int)x) << 16);
}

// float -> bf16 with round-to-nearest-even; NaN stays a (quiet) NaN.
__device__ __forceinline__ bf16_t float_to_bf16(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (bf16_t)(u >> 16);
}

// Butterfly reductions over the 32 lanes of a warp: every lane ends with the result.
__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}
