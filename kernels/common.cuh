// Shared helpers of the Spark.Native kernels. NVRTC built-ins only: no toolkit headers.
// Storage is bf16 (raw 16-bit patterns), arithmetic is fp32.
#pragma once

typedef unsigned short bf16;

// bf16 → fp32: the upper 16 bits of an IEEE single.
__device__ __forceinline__ float bf16_to_float(bf16 x) { return __uint_as_float(((unsigned int)x) << 16); }

// fp32 → bf16, round to nearest even; NaN stays a quiet NaN.
__device__ __forceinline__ bf16 float_to_bf16(float f)
{
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (bf16)(u >> 16);
}

// fp32 → bf16 with stochastic rounding: add 16 random low bits before truncating.
__device__ __forceinline__ bf16 float_to_bf16_stochastic(float f, unsigned int random)
{
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16)((u >> 16) | 0x0040u);
    u += random & 0xffffu;
    return (bf16)(u >> 16);
}

// A counter-based hash (SplitMix32-style) for per-element random bits.
__device__ __forceinline__ unsigned int hash_u32(unsigned int x)
{
    x ^= x >> 16; x *= 0x7feb352du;
    x ^= x >> 15; x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

__device__ __forceinline__ float warp_sum(float v)
{
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024). `scratch` holds 32 floats.
// Every thread gets the result. Deterministic: a fixed reduction tree.
__device__ __forceinline__ float block_sum(float v, float* scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0f;
    return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : -3.402823466e38f;
    return warp_max(v);
}

__device__ __forceinline__ float silu(float x) { return x / (1.0f + __expf(-x)); }
