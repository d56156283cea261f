// Double-precision block reductions (reduce.cu, advantage.cu). Deterministic: a fixed reduction tree.
#pragma once

__device__ __forceinline__ double warp_sum_double(double v)
{
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024). `scratch` holds 32 doubles. Every thread gets
// the result. Safe to call repeatedly with the same scratch (the first barrier waits for the previous call's reads).
__device__ __forceinline__ double block_sum_double(double v, double* scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum_double(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0;
    return warp_sum_double(v);
}
