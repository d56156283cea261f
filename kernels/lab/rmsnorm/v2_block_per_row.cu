// Lab: RMSNorm v2 — one block per row, shared-memory reduction.
// What changed from v1: the 256 threads of a block stride over one row together, so each load instruction of a warp
// reads 32 consecutive bf16 (coalesced), and the partial sums meet in a block reduction (warp shuffles + 32 floats
// of shared memory). This is the engine's kernels/rmsnorm.cu shape without the fused residual.
// Why not the end: 2-byte loads use a quarter of each 8-byte-per-lane transaction slot, and the block-wide
// reduction costs two __syncthreads per row.
// Dimensions: T rows, H hidden. out, x [T, H] bf16; w [H] bf16; fp32 arithmetic.
#include "common.cuh"

// grid (T), block (256).
extern "C" __global__ void rmsnorm_v2(bf16* __restrict__ out, const bf16* __restrict__ x, const bf16* __restrict__ w,
                                      int rows, int hidden, float eps)
{
    __shared__ float scratch[32];
    long long base = (long long)blockIdx.x * hidden;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) { float v = bf16_to_float(x[base + i]); sum += v * v; }
    float s = rsqrtf(block_sum(sum, scratch) / hidden + eps);
    for (int i = threadIdx.x; i < hidden; i += blockDim.x)
        out[base + i] = float_to_bf16(bf16_to_float(x[base + i]) * s * bf16_to_float(w[i]));
}
