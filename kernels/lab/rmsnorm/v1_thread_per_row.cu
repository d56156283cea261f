// Lab: RMSNorm v1 — one thread per row.
// What: thread t walks row t serially twice (sum of squares, then the scaled write). The obvious port of the CPU loop.
// Why it is slow: neighbouring threads read addresses `hidden` elements apart, so no load coalesces; with T = 4096
// rows there are only 4096 threads on 132 SMs. The baseline every later version is measured against.
// Dimensions: T rows, H hidden. out, x [T, H] bf16; w [H] bf16; fp32 arithmetic.
#include "common.cuh"

// grid (ceil(T / 128)), block (128).
extern "C" __global__ void rmsnorm_v1(bf16* __restrict__ out, const bf16* __restrict__ x, const bf16* __restrict__ w,
                                      int rows, int hidden, float eps)
{
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= rows) return;
    const bf16* row = x + (long long)t * hidden;
    float sum = 0.0f;
    for (int i = 0; i < hidden; i++) { float v = bf16_to_float(row[i]); sum += v * v; }
    float s = rsqrtf(sum / hidden + eps);
    bf16* o = out + (long long)t * hidden;
    for (int i = 0; i < hidden; i++) o[i] = float_to_bf16(bf16_to_float(row[i]) * s * bf16_to_float(w[i]));
}
