using Spark.Native.Generation;
using Spark.Native.Tensors;

namespace Spark.Native.Backends;

// Dimension legend: T rows (tokens), H hidden, I intermediate, V vocabulary, S cached positions,
// NH query heads, NKV key/value heads, HD head dim. All tensors are row-major F32 unless said.
// Argument order everywhere: outputs first, then inputs, then dimensions and options.

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

    /// <summary>output = input · weightᵀ (+ bias). output [T, N], input [T, K], weight [N, K], bias [N] or null.</summary>
    void MatMul(Tensor output, Tensor input, Tensor weight, Tensor? bias);

    /// <summary>
    /// Rotary embedding in place, rotate-half convention, on every head of each row:
    /// x [T, heads·HD], positions [T], inverseFrequencies [HD/2]; angle = position · inverseFrequency.
    /// </summary>
    void Rope(Tensor x, ReadOnlySpan<int> positions, Tensor inverseFrequencies, int headDim);

    /// <summary>
    /// Causal GQA attention of T new queries at positions startPosition … startPosition+T−1 against the cached
    /// keys/values of positions 0 … startPosition+T−1. output, query [T, NH·HD]; keys, values [≥ startPosition+T, NKV·HD].
    /// Scores are q·k/√HD with softmax in fp32.
    /// </summary>
    void Attention(Tensor output, Tensor query, Tensor keys, Tensor values, int startPosition, AttentionHeads heads);

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
    /// [≥ startPosition+T, NKV·HD] += (rows of positions 0 … startPosition+T−1). outputGrad [T, NH·HD].
    /// </summary>
    void AttentionBackward(Tensor queryGrad, Tensor keysGrad, Tensor valuesGrad, Tensor outputGrad,
        Tensor query, Tensor keys, Tensor values, int startPosition, AttentionHeads heads);

    /// <summary>Gradients of silu(gate) ⊙ up: gateGrad, upGrad [T, I] +=. outputGrad, gate, up [T, I].</summary>
    void SwiGluBackward(Tensor gateGrad, Tensor upGrad, Tensor outputGrad, Tensor gate, Tensor up);

    /// <summary>
    /// Fused cross-entropy: losses[t] = log Σ exp(logits[t]) − logits[t, targets[t]] and
    /// logitsGrad[t] = gradScale · (softmax(logits[t]) − onehot(targets[t])) (overwritten, not accumulated).
    /// A target of −1 ignores the row: loss 0, gradient 0. losses [T], logitsGrad, logits [T, V], targets [T].
    /// logitsGrad may alias logits.
    /// </summary>
    void CrossEntropy(Tensor losses, Tensor logitsGrad, Tensor logits, ReadOnlySpan<int> targets, float gradScale);

    /// <summary>Sets every element to <paramref name="value"/>.</summary>
    void Fill(Tensor tensor, float value);

    /// <summary>Σ x², accumulated in float64 (for gradient norms).</summary>
    double SumOfSquares(Tensor x);

    /// <summary>
    /// One AdamW step (Loshchilov and Hutter 2019, decoupled weight decay) on parameters p with gradients g scaled by
    /// gradScale (clipping and averaging folded in): m = β1·m + (1−β1)·g'; v = β2·v + (1−β2)·g'²;
    /// p −= lr · (m / (1−β1^step) / (sqrt(v / (1−β2^step)) + eps) + weightDecay · p). All tensors the same shape.
    /// </summary>
    void AdamW(Tensor parameters, Tensor gradients, Tensor firstMoment, Tensor secondMoment, AdamWStep step);
}

/// <summary>Hyper-parameters of one AdamW update (see <see cref="IBackend.AdamW"/>); Step counts from 1.</summary>
internal readonly record struct AdamWStep(float LearningRate, float Beta1, float Beta2, float Epsilon, float WeightDecay, int Step, float GradScale);
