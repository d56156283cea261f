// Row-level memory ops: fills of (strided) blocks of rows and the KV-cache row scatter.
// Dimensions: R rows, C columns, stride = elements from one row to the next (C when contiguous), T scattered rows.
#include "common.cuh"

// x[r·stride + c] = value for r < R, c < C (a whole tensor is R = 1, C = n). grid (min(ceil(C / 256), 65535),
// min(R, 65535)), block (256); both dimensions loop.
extern "C" __global__ void fill_f32(float* __restrict__ x, float value, long long rows, long long cols, long long stride)
{
    for (long long r = blockIdx.y; r < rows; r += gridDim.y)
        for (long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (long long)gridDim.x * blockDim.x)
            x[r * stride + c] = value;
}

// The same for bf16, value rounded to nearest even.
extern "C" __global__ void fill_bf16(bf16* __restrict__ x, float value, long long rows, long long cols, long long stride)
{
    bf16 bits = float_to_bf16(value);
    for (long long r = blockIdx.y; r < rows; r += gridDim.y)
        for (long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (long long)gridDim.x * blockDim.x)
            x[r * stride + c] = bits;
}

// dst[rows[t], :] = src[t, :], rows distinct (checked on the host). Rows are moved as `width` 16-bit units (C for bf16,
// 2C for fp32): a copy, whatever the element type. grid (T, min(ceil(width / 256), 65535)), block (256).
extern "C" __global__ void copy_rows(unsigned short* __restrict__ dst, const unsigned short* __restrict__ src,
                                     const int* __restrict__ rows, long long width)
{
    unsigned short* d = dst + (long long)rows[blockIdx.x] * width;
    const unsigned short* s = src + (long long)blockIdx.x * width;
    for (long long c = (long long)blockIdx.y * blockDim.x + threadIdx.x; c < width; c += (long long)gridDim.y * blockDim.x)
        d[c] = s[c];
}
