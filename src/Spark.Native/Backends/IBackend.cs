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
}
