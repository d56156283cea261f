using Spark.Native.Generation;
using Spark.Native.Tensors;

namespace Spark.Native.Backends;

// Dimension legend: T rows (tokens), H hidden, I intermediate, V vocabulary, S cached positions,
// NH query heads, NKV key/value heads, HD head dim, N rollouts (rewards). Argument order everywhere: outputs first,
// then inputs, then dimensions and options.
//
// Element types. Activations, weights and the gradients of activations are in the backend's ActivationDType (F32 on
// the CPU, BF16 on CUDA). Everything that accumulates or is a statistic is F32 on every backend: parameter gradients
// (weightGrad, biasGrad, tableGrad), optimizer moments and master weights, losses, log-probs, entropies,
// log-sum-exps, rewards and advantages. RoPE inverse frequencies are F32.

/// <summary>Head layout of an attention op: query heads, key/value heads (GQA) and the head dimension.</summary>
internal readonly record struct AttentionHeads(int QueryHeads, int KeyValueHeads, int HeadDim)
{
    public int QueryWidth => QueryHeads * HeadDim;
    public int KeyValueWidth => KeyValueHeads * HeadDim;
    /// <summary>Query heads per key/value head: kv head g serves query heads g·rep … g·rep + rep − 1.</summary>
    public int GroupSize => QueryHeads / KeyValueHeads;
}

/// <summary>
/// A narrow backend: memory plus the closed op set of <see cref="OpKind"/>.
/// Ops validate shapes at the top and throw <see cref="ArgumentException"/> naming the operand.
/// </summary>
internal interface IBackend : IDisposable
{
    string Name { get; }

    bool Supports(OpKind op);

    /// <summary>
    /// Element type the backend stores activations in (F32 on the CPU, BF16 on CUDA). Callers allocate activation
    /// tensors with it; ops check it at the top.
    /// </summary>
    DType ActivationDType { get; }

    /// <summary>A zero-filled tensor of the given shape.</summary>
    Tensor Allocate(DType dtype, params int[] shape);

    void Upload(Tensor destination, ReadOnlySpan<float> source);

    void Download(Span<float> destination, Tensor source);

    /// <summary>output[t, :] = table[ids[t], :]. output [T, H], table [V, H], ids [T] each in [0, V).</summary>
    void Embedding(Tensor output, Tensor table, ReadOnlySpan<int> ids);

    /// <summary>output[t] = input[t] · rsqrt(mean(input[t]²) + eps) ⊙ weight. output, input [T, H]; weight [H].</summary>
    void RmsNorm(Tensor output, Tensor input, Tensor weight, float eps);

    /// <summary>
    /// The residual add fused with the RMSNorm after it: residual += delta (in place, rounded to its type), then
    /// normed = rmsnorm(residual) ⊙ weight as <see cref="RmsNorm"/> computes it from the stored sum. normed, residual,
    /// delta [T, H]; weight [H]. normed must not alias residual or delta.
    /// </summary>
    void AddRmsNorm(Tensor normed, Tensor residual, Tensor delta, Tensor weight, float eps);

    /// <summary>output = input · weightᵀ (+ bias). output [T, N], input [T, K], weight [N, K], bias [N] or null.</summary>
    void MatMul(Tensor output, Tensor input, Tensor weight, Tensor? bias);

    /// <summary>
    /// Rotary embedding in place, rotate-half convention, on every head of each row:
    /// x [T, heads·HD], positions [T], inverseFrequencies [HD/2]; angle = position · inverseFrequency.
    /// </summary>
    void Rope(Tensor x, ReadOnlySpan<int> positions, Tensor inverseFrequencies, int headDim);

    /// <summary>
    /// Causal GQA attention of a batch of variable-length sequences in one call. Each span's queries (rows
    /// QueryRow … QueryRow+Length−1 of query, at positions StartPosition … StartPosition+Length−1) attend to the keys and
    /// values of positions 0 … StartPosition+i, stored at rows KeyRow … KeyRow+StartPosition+Length−1 of keys/values.
    /// output, query [T, NH·HD]; keys, values [S, NKV·HD]. Scores are q·k/√HD with softmax in fp32. Query rows of
    /// different spans must not overlap; rows of output no span covers are left as they are.
    /// </summary>
    void Attention(Tensor output, Tensor query, Tensor keys, Tensor values, ReadOnlySpan<AttentionSpan> spans, AttentionHeads heads);

    /// <summary>output = silu(gate) ⊙ up. All [T, I].</summary>
    void SwiGlu(Tensor output, Tensor gate, Tensor up);

    /// <summary>output = a + b, element-wise, same shapes; output may alias a or b.</summary>
    void Add(Tensor output, Tensor a, Tensor b);

    /// <summary>Row-wise softmax. output, input [R, C].</summary>
    void Softmax(Tensor output, Tensor input);

    /// <summary>Row-wise log-softmax. output, input [R, C].</summary>
    void LogSoftmax(Tensor output, Tensor input);

    /// <summary>destination = source (same element count).</summary>
    void Copy(Tensor destination, Tensor source);

    /// <summary>
    /// Row scatter: destination[destinationRows[i], :] = source[i, :] (how a batch's new keys and values enter their
    /// KV-cache slots in one call). destination [S, C], source [T, C], destinationRows [T], distinct, each in [0, S).
    /// </summary>
    void CopyRows(Tensor destination, Tensor source, ReadOnlySpan<int> destinationRows);

    /// <summary>
    /// Draws one token per row of logits [R, V] with the row's sampling settings (temperature, top-k, top-p, random
    /// stream). tokens [R], rows [R].
    /// </summary>
    void Sample(Span<int> tokens, Tensor logits, ReadOnlySpan<SamplingRow> rows);

    // ---- Training. Backward ops ACCUMULATE (+=) into every gradient they write, as llm.c does, so residual
    // branches and parameters shared by several uses (tied embeddings) sum naturally; callers zero with Fill.

    /// <summary>tableGrad[ids[t], :] += outputGrad[t, :]. tableGrad [V, H], outputGrad [T, H], ids [T].</summary>
    void EmbeddingBackward(Tensor tableGrad, Tensor outputGrad, ReadOnlySpan<int> ids);

    /// <summary>
    /// Gradients of y = x · rsqrt(mean(x²) + eps) ⊙ w: inputGrad [T, H] += ∂L/∂x, weightGrad [H] += ∂L/∂w.
    /// outputGrad, input [T, H]; weight [H].
    /// </summary>
    void RmsNormBackward(Tensor inputGrad, Tensor weightGrad, Tensor outputGrad, Tensor input, Tensor weight, float eps);

    /// <summary>
    /// Gradients of y = x · Wᵀ + b: inputGrad [T, K] += dy · W (skipped when null), weightGrad [N, K] += dyᵀ · x,
    /// biasGrad [N] += Σ_t dy (skipped when null). outputGrad [T, N], input [T, K], weight [N, K].
    /// </summary>
    void MatMulBackward(Tensor? inputGrad, Tensor weightGrad, Tensor? biasGrad, Tensor outputGrad, Tensor input, Tensor weight);

    /// <summary>In place: turns ∂L/∂rope(x) into ∂L/∂x (the inverse rotation). Arguments as <see cref="Rope"/>.</summary>
    void RopeBackward(Tensor xGrad, ReadOnlySpan<int> positions, Tensor inverseFrequencies, int headDim);

    /// <summary>
    /// Gradients of <see cref="Attention"/> (softmax recomputed): queryGrad [T, NH·HD] +=, keysGrad and valuesGrad
    /// [S, NKV·HD] += on the key rows each span reads. outputGrad [T, NH·HD]. The key rows of different spans must not
    /// overlap.
    /// </summary>
    void AttentionBackward(Tensor queryGrad, Tensor keysGrad, Tensor valuesGrad, Tensor outputGrad,
        Tensor query, Tensor keys, Tensor values, ReadOnlySpan<AttentionSpan> spans, AttentionHeads heads);

    /// <summary>Gradients of silu(gate) ⊙ up: gateGrad, upGrad [T, I] +=. outputGrad, gate, up [T, I].</summary>
    void SwiGluBackward(Tensor gateGrad, Tensor upGrad, Tensor outputGrad, Tensor gate, Tensor up);

    /// <summary>
    /// Fused cross-entropy: losses[t] = log Σ exp(logits[t]) − logits[t, targets[t]] and
    /// logitsGrad[t] = gradScale · (softmax(logits[t]) − onehot(targets[t])) (overwritten, not accumulated).
    /// A target of −1 ignores the row: loss 0, gradient 0. losses [T], logitsGrad, logits [T, V], targets [T].
    /// logitsGrad may alias logits.
    /// </summary>
    void CrossEntropy(Tensor losses, Tensor logitsGrad, Tensor logits, ReadOnlySpan<int> targets, float gradScale);

    /// <summary>
    /// Fused log-prob gather (never stores the [T, V] logits): with z = hidden · weightᵀ / temperature,
    /// logProbs[t] = z[t, targets[t]] − logsumexp(z[t]), entropies[t] = −Σ softmax(z[t]) · log softmax(z[t]) and
    /// logSumExp[t] = logsumexp(z[t]) (saved for the backward). A target of −1 gives log-prob 0 (entropy and
    /// log-sum-exp are still computed). hidden [T, H], weight [V, H] (the LM head); logProbs, entropies, logSumExp [T]
    /// F32; targets [T]; temperature &gt; 0.
    /// </summary>
    void LogProbGather(Tensor logProbs, Tensor entropies, Tensor logSumExp, Tensor hidden, Tensor weight,
        ReadOnlySpan<int> targets, float temperature);

    /// <summary>
    /// Gradients of <see cref="LogProbGather"/>, recomputing the logits chunk by chunk: with p = softmax(z) and
    /// ∂L/∂z[t, j] = logProbGrad[t] · (onehot(targets[t])[j] − p[j]) − entropyGrad[t] · p[j] · (z[t, j] − Σ p·z),
    /// hiddenGrad [T, H] += ∂L/∂z · weight / temperature and weightGrad [V, H] (F32) += (∂L/∂z)ᵀ · hidden / temperature.
    /// logProbGrad [T] F32 (ignored on rows with target −1), entropyGrad [T] F32 or null; logSumExp and entropies are the
    /// forward's outputs.
    /// </summary>
    void LogProbGatherBackward(Tensor hiddenGrad, Tensor weightGrad, Tensor logProbGrad, Tensor? entropyGrad,
        Tensor logSumExp, Tensor entropies, Tensor hidden, Tensor weight, ReadOnlySpan<int> targets, float temperature);

    /// <summary>
    /// Group-relative advantages of outcome rewards (GRPO, Shao et al. 2024, arXiv 2402.03300; variants in
    /// <see cref="AdvantageNormalization"/>): rewards [N] F32 in consecutive groups of groupSize, advantages [N] F32.
    /// N must be a multiple of groupSize.
    /// </summary>
    void GroupAdvantage(Tensor advantages, Tensor rewards, int groupSize, AdvantageNormalization normalization, float epsilon);

    /// <summary>Sets every element to <paramref name="value"/>.</summary>
    void Fill(Tensor tensor, float value);

    /// <summary>Σ x², accumulated in float64 (for gradient norms).</summary>
    double SumOfSquares(Tensor x);

    /// <summary>
    /// One AdamW step (Loshchilov and Hutter 2019, decoupled weight decay) on parameters p with gradients g scaled by
    /// gradScale (clipping and averaging folded in): m = β1·m + (1−β1)·g'; v = β2·v + (1−β2)·g'²;
    /// p −= lr · (m / (1−β1^step) / (sqrt(v / (1−β2^step)) + eps) + weightDecay · p). All tensors the same shape;
    /// gradients and moments F32. With a master copy (F32) the update runs on the master and parameters receive it
    /// rounded to their type (nearest even). Without one, parameters stored in BF16 are updated in fp32 and rounded
    /// stochastically (random bits from <see cref="AdamWStep.Seed"/>, the step and the element index), so small
    /// updates are not lost on average.
    /// </summary>
    void AdamW(Tensor parameters, Tensor? master, Tensor gradients, Tensor firstMoment, Tensor secondMoment, AdamWStep step);
}

/// <summary>Hyper-parameters of one AdamW update (see <see cref="IBackend.AdamW"/>); Step counts from 1.</summary>
internal readonly record struct AdamWStep(float LearningRate, float Beta1, float Beta2, float Epsilon, float WeightDecay, int Step, float GradScale,
    uint Seed = 0);

/// <summary>
/// One sequence of a batched <see cref="IBackend.Attention"/>: Length query rows from QueryRow, at positions
/// StartPosition … StartPosition+Length−1, attending to the key/value rows KeyRow … KeyRow+StartPosition+Length−1
/// (position p at row KeyRow+p). Training: KeyRow = QueryRow and StartPosition = 0. Decode: Length 1 against a
/// KV-cache slot.
/// </summary>
internal readonly record struct AttentionSpan(int QueryRow, int Length, int KeyRow, int StartPosition)
{
    /// <summary>Key rows this span reads: StartPosition + Length.</summary>
    public int KeyCount => StartPosition + Length;
}

/// <summary>How <see cref="IBackend.GroupAdvantage"/> normalises r − mean(group) (table of spark-algorithm.md).</summary>
internal enum AdvantageNormalization
{
    /// <summary>GRPO / DAPO / BNPO / GSPO: (r − mean_g) / (std_g + ε), std_g the unbiased (Bessel) std of the group.</summary>
    GroupStd,
    /// <summary>Dr. GRPO (Liu et al. 2025, arXiv 2503.20783): r − mean_g, no std.</summary>
    None,
    /// <summary>(r − mean_g) / (std_batch + ε), std_batch the unbiased std of all N rewards (TRL's scale_rewards="batch").</summary>
    BatchStd,
}
