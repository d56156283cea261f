using Spark.Native.Tensors;

namespace Spark.Native.Backends.Cpu;

// Training ops of the CPU backend: being written (see issue 4). Until then they refuse clearly.
internal sealed partial class CpuBackend
{
    private static NotSupportedException NotYet(string op) => new($"{op} is not implemented on the CPU backend yet");

    public void EmbeddingBackward(Tensor tableGrad, Tensor outputGrad, ReadOnlySpan<int> ids) => throw NotYet(nameof(EmbeddingBackward));
    public void RmsNormBackward(Tensor inputGrad, Tensor weightGrad, Tensor outputGrad, Tensor input, Tensor weight, float eps) => throw NotYet(nameof(RmsNormBackward));
    public void MatMulBackward(Tensor? inputGrad, Tensor weightGrad, Tensor? biasGrad, Tensor outputGrad, Tensor input, Tensor weight) => throw NotYet(nameof(MatMulBackward));
    public void RopeBackward(Tensor xGrad, ReadOnlySpan<int> positions, Tensor inverseFrequencies, int headDim) => throw NotYet(nameof(RopeBackward));
    public void AttentionBackward(Tensor queryGrad, Tensor keysGrad, Tensor valuesGrad, Tensor outputGrad, Tensor query, Tensor keys, Tensor values, int startPosition, AttentionHeads heads) => throw NotYet(nameof(AttentionBackward));
    public void SwiGluBackward(Tensor gateGrad, Tensor upGrad, Tensor outputGrad, Tensor gate, Tensor up) => throw NotYet(nameof(SwiGluBackward));
    public void CrossEntropy(Tensor losses, Tensor logitsGrad, Tensor logits, ReadOnlySpan<int> targets, float gradScale) => throw NotYet(nameof(CrossEntropy));
    public void Fill(Tensor tensor, float value) => throw NotYet(nameof(Fill));
    public double SumOfSquares(Tensor x) => throw NotYet(nameof(SumOfSquares));
    public void AdamW(Tensor parameters, Tensor gradients, Tensor firstMoment, Tensor secondMoment, AdamWStep step) => throw NotYet(nameof(AdamW));
}
