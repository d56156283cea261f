using Spark.Native.Interop;
using Spark.Native.Tensors;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Backends.Cuda;

// Training ops: backward kernels, cross-entropy, fills, reductions, AdamW, group advantages; and the KV-cache row scatter.
internal sealed unsafe partial class CudaBackend
{
    private static (string File, string[] Functions)[] TrainingKernels => [];

    private static OpKind[] TrainingOps => [];


    public void EmbeddingBackward(Tensor tableGrad, Tensor outputGrad, ReadOnlySpan<int> ids) => throw Training(nameof(EmbeddingBackward));

    public void RmsNormBackward(Tensor inputGrad, Tensor weightGrad, Tensor outputGrad, Tensor input, Tensor weight, float eps) =>
        throw Training(nameof(RmsNormBackward));

    public void MatMulBackward(Tensor? inputGrad, Tensor weightGrad, Tensor? biasGrad, Tensor outputGrad, Tensor input, Tensor weight) =>
        throw Training(nameof(MatMulBackward));

    public void RopeBackward(Tensor xGrad, ReadOnlySpan<int> positions, Tensor inverseFrequencies, int headDim) => throw Training(nameof(RopeBackward));


    public void SwiGluBackward(Tensor gateGrad, Tensor upGrad, Tensor outputGrad, Tensor gate, Tensor up) => throw Training(nameof(SwiGluBackward));

    public void CrossEntropy(Tensor losses, Tensor logitsGrad, Tensor logits, ReadOnlySpan<int> targets, float gradScale) =>
        throw Training(nameof(CrossEntropy));

    public void Fill(Tensor tensor, float value) => throw Training(nameof(Fill));

    public double SumOfSquares(Tensor x) => throw Training(nameof(SumOfSquares));

    public void AdamW(Tensor parameters, Tensor? master, Tensor gradients, Tensor firstMoment, Tensor secondMoment, AdamWStep step) => throw Training(nameof(AdamW));

    private static NotSupportedException Training(string op) =>
        new($"{op}: the CUDA backend does not implement training ops yet (Supports(OpKind.{op}) is false); train on the CPU backend");

    public void CopyRows(Tensor destination, Tensor source, ReadOnlySpan<int> destinationRows) => throw Training(nameof(CopyRows));

    public void GroupAdvantage(Tensor advantages, Tensor rewards, int groupSize, AdvantageNormalization normalization, float epsilon) =>
        throw Training(nameof(GroupAdvantage));
}
