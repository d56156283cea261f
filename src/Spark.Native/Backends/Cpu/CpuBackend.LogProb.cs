using Spark.Native.Tensors;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Backends.Cpu;

internal sealed partial class CpuBackend
{
    public void LogProbGather(Tensor logProbs, Tensor entropies, Tensor logSumExp, Tensor hidden, Tensor weight,
        ReadOnlySpan<int> targets, float temperature) => throw new NotImplementedException("LogProbGather: in progress");

    public void LogProbGatherBackward(Tensor hiddenGrad, Tensor weightGrad, Tensor logProbGrad, Tensor? entropyGrad,
        Tensor logSumExp, Tensor entropies, Tensor hidden, Tensor weight, ReadOnlySpan<int> targets, float temperature) =>
        throw new NotImplementedException("LogProbGatherBackward: in progress");
}
