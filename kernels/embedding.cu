// Embedding gather and its deterministic backward.
// Dimensions: T tokens, H hidden, V vocabulary, U distinct ids among the T. Tables and activations bf16; the table
// gradient fp32.
#include "common.cuh"

// out[t, :] = table[ids[t], :]. grid (T), block (any). ids are validated on the host.
extern "C" __global__ void embedding_forward(bf16* __restrict__ out, const bf16* __restrict__ table,
                                             const int* __restrict__ ids, int hidden)
{
    const bf16* row = table + (long long)ids[blockIdx.x] * hidden;
    bf16* dst = out + (long long)blockIdx.x * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = row[i];
}

// tableGrad[ids[t], c] += outGrad[t, c]. The host sorts the token positions by id: distinct ids uniqueIds [U], and
// for distinct id u the positions tokens[offsets[u]] … tokens[offsets[u+1] − 1], increasing. One thread per
// (distinct id, column) adds that id's rows in position order into a register started from the current gradient, so
// the sum order is fixed (the CPU reference's order) and no two threads touch the same element: no atomics.
// grid (U, ceil(H / blockDim.x)), block (256).
extern "C" __global__ void embedding_backward(float* __restrict__ tableGrad, const bf16* __restrict__ outGrad,
                                              const int* __restrict__ uniqueIds, const int* __restrict__ offsets,
                                              const int* __restrict__ tokens, int hidden)
{
    int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= hidden) return;
    int u = blockIdx.x;
    float* dst = tableGrad + (long long)uniqueIds[u] * hidden + c;
    float acc = *dst;
    for (int j = offsets[u]; j < offsets[u + 1]; j++)
        acc += bf16_to_float(outGrad[(long long)tokens[j] * hidden + c]);
    *dst = acc;
}
