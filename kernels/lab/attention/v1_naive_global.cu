// Lab: causal attention v1 — naive, scores in global memory.
// What: three kernels as the math reads: S = Q·Kᵀ/√HD into a [B, NH, L, L] fp32 buffer (one thread per score),
// a row softmax over the causal prefix in place (one block per row), then O = P·V (one thread per output element).
// Why it is slow: the L×L score matrix goes through HBM twice (2·B·NH·L²·4 bytes each way; 6 GB at L = 8k), every
// dot product re-reads its q and k rows from global memory, and no tensor core is used. The reference the tiled
// versions must match, and the memory wall they remove.
// Dimensions: B sequences of L tokens (rows b·L … b·L+L−1), NH query heads, NKV key/value heads, HD head dim.
// q, out [B·L, NH·HD] bf16; k, v [B·L, NKV·HD] bf16; scores [B, NH, L, L] fp32.
#include "common.cuh"

// grid (ceil(L·L / 256), NH, B), block (256): scores[b, h, i, j] = q_i·k_j/√HD for j ≤ i (entries j > i untouched).
extern "C" __global__ void attention_v1_scores(float* __restrict__ scores, const bf16* __restrict__ q, const bf16* __restrict__ k,
                                               int length, int heads, int kvHeads, int headDim)
{
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)length * length) return;
    int i = (int)(idx / length), j = (int)(idx % length);
    if (j > i) return;
    int b = blockIdx.z, h = blockIdx.y, g = h / (heads / kvHeads);
    const bf16* qi = q + ((long long)(b * length + i) * heads + h) * headDim;
    const bf16* kj = k + ((long long)(b * length + j) * kvHeads + g) * headDim;
    float dot = 0.0f;
    for (int d = 0; d < headDim; d++) dot += bf16_to_float(qi[d]) * bf16_to_float(kj[d]);
    scores[(((long long)b * heads + h) * length + i) * length + j] = dot * rsqrtf((float)headDim);
}

// grid (L, NH, B), block (256): row i of scores becomes softmax over j ≤ i.
extern "C" __global__ void attention_v1_softmax(float* __restrict__ scores, int length, int heads)
{
    __shared__ float scratch[32];
    int i = blockIdx.x;
    float* row = scores + (((long long)blockIdx.z * heads + blockIdx.y) * length + i) * length;
    float m = -3.402823466e38f;
    for (int j = threadIdx.x; j <= i; j += blockDim.x) m = fmaxf(m, row[j]);
    m = block_max(m, scratch);
    float sum = 0.0f;
    for (int j = threadIdx.x; j <= i; j += blockDim.x) { float e = __expf(row[j] - m); row[j] = e; sum += e; }
    float inv = 1.0f / block_sum(sum, scratch);
    for (int j = threadIdx.x; j <= i; j += blockDim.x) row[j] *= inv;
}

// grid (ceil(L·HD / 256), NH, B), block (256): out[i, h, d] = Σ_{j ≤ i} P[i, j] · v[j, g, d].
extern "C" __global__ void attention_v1_output(bf16* __restrict__ out, const float* __restrict__ scores, const bf16* __restrict__ v,
                                               int length, int heads, int kvHeads, int headDim)
{
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)length * headDim) return;
    int i = (int)(idx / headDim), d = (int)(idx % headDim);
    int b = blockIdx.z, h = blockIdx.y, g = h / (heads / kvHeads);
    const float* p = scores + (((long long)b * heads + h) * length + i) * length;
    const bf16* vd = v + ((long long)b * length * kvHeads + g) * headDim + d;
    long long stride = (long long)kvHeads * headDim;
    float acc = 0.0f;
    for (int j = 0; j <= i; j++) acc += p[j] * bf16_to_float(vd[j * stride]);
    out[((long long)(b * length + i) * heads + h) * headDim + d] = float_to_bf16(acc);
}
