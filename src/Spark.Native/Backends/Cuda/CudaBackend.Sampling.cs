using System.Buffers;
using Spark.Native.Generation;
using Spark.Native.Interop;
using Spark.Native.Tensors;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Backends.Cuda;

// Sampling: temperature, top-k, top-p per row.
internal sealed unsafe partial class CudaBackend
{
    private static (string File, string[] Functions)[] SamplingKernels => [];

    private static OpKind[] SamplingOps => [OpKind.Sample];

    /// <summary>
    /// Downloads the logits as float and draws each row with the CPU <see cref="SamplingRule"/>, so the tokens are
    /// exactly the CPU backend's for the same stored logits. A GPU sampling kernel (no logits download) comes later.
    /// </summary>
    public void Sample(Span<int> tokens, Tensor logits, ReadOnlySpan<SamplingRow> rows)
    {
        Activation(logits, nameof(Sample), nameof(logits));
        Check.Rank(logits, 2, nameof(logits));
        int r = logits.Shape[0], v = logits.Shape[1];
        if (tokens.Length != r || rows.Length != r)
            throw new ArgumentException($"Sample: {r} logit rows, {tokens.Length} token slots and {rows.Length} sampling rows");
        var host = new float[logits.Length];
        Download(host, logits);
        float[] probs = ArrayPool<float>.Shared.Rent(Math.Max(1, v));
        int[] order = ArrayPool<int>.Shared.Rent(Math.Max(1, v));
        try
        {
            for (int i = 0; i < r; i++)
                tokens[i] = SamplingRule.Sample(host.AsSpan(i * v, v), rows[i], probs.AsSpan(0, v), order.AsSpan(0, v));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(probs);
            ArrayPool<int>.Shared.Return(order);
        }
    }
}
