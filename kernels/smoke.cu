// smoke.cu: the smallest kernel that exercises the toolchain (embedded resource, header include, NVRTC,
// cubin load, launch). out[i] = bf16(value) for i < n.
#include "common.cuh"

extern "C" __global__ void fill_bf16(bf16* out, float value, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = float_to_bf16(value);
}
