// Embedding gather and its deterministic backward.
// Dimensions: T tokens, H hidden, V vocabulary. Tables and activations bf16; gradients fp32.
#include "common.cuh"

// out[t, :] = table[ids[t], :]. grid (T), block (any). ids are validated on the host.
extern "C" __global__ void embedding_forward(bf16* __restrict__ out, const bf16* __restrict__ table,
                                             const int* __restrict__ ids, int hidden)
{
    const bf16* row = table + (long long)ids[blockIdx.x] * hidden;
    bf16* dst = out + (long long)blockIdx.x * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = row[i];
}

// tableGrad[ids[t], c] += outGrad[t, c], summed over t in increasing order for every column c: the result does not
// depend on scheduling (no atomics). grid (ceil(H / blockDim.x)), one thread per column.
extern "C" __global__ void embedding_backward(float* __restrict__ tableGrad, const float* __restrict__ outGrad,
                                              const int* __restrict__ ids, int tokens, int hidden)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= hidden) return;
    for (int t = 0; t < tokens; t++)
        tableGrad[(long long)ids[t] * hidden + c] += outGrad[(long long)t * hidden + c];
}
