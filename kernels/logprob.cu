// Fused log-prob gather (IBackend.LogProbGather / LogProbGatherBackward): the host walks the tokens in chunks of Tc
// rows and the vocabulary in chunks of Vc ids; for each chunk cuBLASLt writes z[Tc, Vc] = hidden · W_chunkᵀ / τ in
// fp32 (row stride `stride` ≥ Vc), and these kernels fold it into per-row statistics (forward) or turn it into
// ∂L/∂z (backward). The [T, V] logits never exist. Dimensions: T tokens, Tc rows of a token chunk, Vc columns of a
// vocabulary chunk that starts at vocabulary id `vocabStart`, H hidden.
//
// Per-row online state, fp32, one array each (already offset to the chunk's first row by the host):
//   rowMax m        running max of z
//   rowSum s        Σ exp(z − m)                         (0 means "nothing seen yet")
//   rowShifted w    Σ exp(z − m) · (z − m)               (shifted by m: entropy = log s − w/s, no cancellation against m)
//   targetLogit     z[target] (written by the chunk that holds the target)
// Finalize: lse = m + log s, entropy = log s − w/s, log-prob = (z[target] − m) − log s (0 for target −1).
#include "common.cuh"

#define LOGPROB_NEG_MAX (-3.402823466e38f)

// Folds one value z into (m, s, w). A NaN z makes s NaN, which every later step keeps.
__device__ __forceinline__ void lse_push(float& m, float& s, float& w, float z)
{
    if (s == 0.0f) { m = z; s = 1.0f; w = 0.0f; }
    else if (z > m)
    {
        float a = __expf(m - z); // rescale the old terms to the new max: w' = a·(w + (m − z)·s)
        w = a * (w + (m - z) * s);
        s = a * s + 1.0f;
        m = z;
    }
    else
    {
        float d = z - m, e = __expf(d);
        s += e;
        w += e * d;
    }
}

// Merges the state (m2, s2, w2) of other values into (m, s, w); an empty side (s = 0) leaves the other unchanged.
__device__ __forceinline__ void lse_merge(float& m, float& s, float& w, float m2, float s2, float w2)
{
    if (s2 == 0.0f) return;
    if (s == 0.0f) { m = m2; s = s2; w = w2; return; }
    float n = fmaxf(m, m2);
    float a = __expf(m - n), b = __expf(m2 - n);
    w = a * (w + (m - n) * s) + b * (w2 + (m2 - n) * s2);
    s = a * s + b * s2;
    m = n;
}

// Folds one vocabulary chunk of logits [rows, width] (row stride `stride`) into the rows' online state.
// grid (rows), block (a multiple of 32, ≤ 1024). Each thread runs its columns online, the block combines the
// threads at the block max with fixed reduction trees (deterministic), thread 0 merges into the row state.
extern "C" __global__ void logprob_chunk_forward(float* __restrict__ rowMax, float* __restrict__ rowSum,
                                                 float* __restrict__ rowShifted, float* __restrict__ targetLogit,
                                                 const float* __restrict__ logits, const int* __restrict__ targets,
                                                 int vocabStart, int width, int stride)
{
    __shared__ float scratch[32];
    int row = blockIdx.x;
    const float* z = logits + (long long)row * stride;
    float m = LOGPROB_NEG_MAX, s = 0.0f, w = 0.0f;
    for (int j = threadIdx.x; j < width; j += blockDim.x) lse_push(m, s, w, z[j]);
    int local = targets[row] - vocabStart; // target −1 gives local < 0: never in the chunk
    if (threadIdx.x == 0 && local >= 0 && local < width) targetLogit[row] = z[local];

    // threads that saw nothing (s = 0, only when width < blockDim) contribute zeros
    float blockMax = block_max(s != 0.0f ? m : LOGPROB_NEG_MAX, scratch);
    float a = s != 0.0f ? __expf(m - blockMax) : 0.0f;
    float chunkSum = block_sum(a * s, scratch);
    float chunkShifted = block_sum(s != 0.0f ? a * (w + (m - blockMax) * s) : 0.0f, scratch);
    if (threadIdx.x == 0)
    {
        float m0 = rowMax[row], s0 = rowSum[row], w0 = rowShifted[row];
        lse_merge(m0, s0, w0, blockMax, chunkSum, chunkShifted);
        rowMax[row] = m0;
        rowSum[row] = s0;
        rowShifted[row] = w0;
    }
}

// Turns the row states into the op's outputs [rows] (F32). Grid-stride over rows.
extern "C" __global__ void logprob_finalize(float* __restrict__ logProbs, float* __restrict__ entropies,
                                            float* __restrict__ logSumExp, const float* __restrict__ rowMax,
                                            const float* __restrict__ rowSum, const float* __restrict__ rowShifted,
                                            const float* __restrict__ targetLogit, const int* __restrict__ targets, int rows)
{
    for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < rows; t += gridDim.x * blockDim.x)
    {
        float m = rowMax[t], s = rowSum[t], logS = logf(s);
        logSumExp[t] = m + logS;
        entropies[t] = logS - rowShifted[t] / s;
        logProbs[t] = targets[t] >= 0 ? (targetLogit[t] - m) - logS : 0.0f;
    }
}

// ∂L/∂z of one vocabulary chunk, times 1/τ, as bf16 for the two gradient GEMMs. With log p = z − lse:
//   dz = g_lp · (onehot(target) − p) − g_H · p · (log p + H)      (log p + H = z − E[z])
// g_lp is ignored on rows with target −1; the g_H term is skipped when entropyGrad is null.
// logits and dz [rows, width], row stride `stride`; per-row inputs already offset to the chunk's first row.
// grid (rows), block (any multiple of 32).
extern "C" __global__ void logprob_chunk_backward(bf16* __restrict__ dz, const float* __restrict__ logits,
                                                  const float* __restrict__ logProbGrad, const float* __restrict__ entropyGrad,
                                                  const float* __restrict__ logSumExp, const float* __restrict__ entropies,
                                                  const int* __restrict__ targets, int vocabStart, int width, int stride,
                                                  float invTemperature)
{
    int row = blockIdx.x;
    long long base = (long long)row * stride;
    int target = targets[row];
    float lse = logSumExp[row];
    float glp = target >= 0 ? logProbGrad[row] : 0.0f;
    bool withEntropy = entropyGrad != nullptr;
    float gh = withEntropy ? entropyGrad[row] : 0.0f;
    float h = entropies[row];
    int local = target - vocabStart; // in [0, width) only in the chunk that holds the target
    for (int j = threadIdx.x; j < width; j += blockDim.x)
    {
        float lp = logits[base + j] - lse;
        float p = __expf(lp);
        float g = -glp * p;
        if (withEntropy) g -= gh * p * (lp + h);
        if (j == local) g += glp;
        dz[base + j] = float_to_bf16(g * invTemperature);
    }
}

// hiddenGrad[i] += delta[i] for n elements: the fp32 ∂L/∂hidden of one token chunk (summed over every vocabulary
// chunk in fp32) added to the bf16 gradient once, so it is rounded to bf16 once. Grid-stride.
extern "C" __global__ void logprob_add_hidden_grad(bf16* __restrict__ hiddenGrad, const float* __restrict__ delta, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        hiddenGrad[i] = float_to_bf16(bf16_to_float(hiddenGrad[i]) + delta[i]);
}
