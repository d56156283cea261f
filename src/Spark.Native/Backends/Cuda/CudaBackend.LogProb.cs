using Spark.Native.Tensors;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Backends.Cuda;

// Fused log-prob gather: per-token log p(target) and entropy at a temperature, chunked over tokens and vocabulary.
internal sealed unsafe partial class CudaBackend
{
    private static (string File, string[] Functions)[] LogProbKernels => [];

    private static OpKind[] LogProbOps => [];

    public void LogProbGather(Tensor logProbs, Tensor entropies, Tensor logSumExp, Tensor hidden, Tensor weight,
        ReadOnlySpan<int> targets, float temperature) => throw Training(nameof(LogProbGather));

    public void LogProbGatherBackward(Tensor hiddenGrad, Tensor weightGrad, Tensor logProbGrad, Tensor? entropyGrad,
        Tensor logSumExp, Tensor entropies, Tensor hidden, Tensor weight, ReadOnlySpan<int> targets, float temperature) =>
        throw Training(nameof(LogProbGatherBackward));
}
