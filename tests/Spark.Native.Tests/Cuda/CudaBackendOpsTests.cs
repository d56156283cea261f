using Spark.Native.Backends;
using Spark.Native.Backends.Cuda;
using Spark.Native.Tests.Cpu;

namespace Spark.Native.Tests.Cuda;

/// <summary>
/// The whole op parity suite on the CUDA backend (device 0). Every test skips with the reason
/// <see cref="CudaBackend.TryCreate"/> gives when this machine cannot run it (no libcuda.so.1, no device, no NVRTC or
/// no cuBLASLt): the first use of <see cref="Backend"/> in a test calls Assert.Skip.
/// </summary>
public sealed class CudaBackendOpsTests : BackendOpsTests
{
    private readonly CudaBackend? _backend;
    private readonly string _reason;

    public CudaBackendOpsTests()
    {
        CudaBackend.TryCreate(out _backend, out _reason);
    }

    private protected override IBackend Backend => _backend ?? throw SkipNow();

    /// <summary>
    /// BF16 storage with fp32 arithmetic. The references are computed from the stored (bf16-rounded) inputs, so what is
    /// left is the rounding of each output to bf16 (relative error ≤ 2⁻⁹ ≈ 2e-3 per element) plus fp32 reordering
    /// inside the kernels and cuBLASLt (orders of magnitude smaller); 1e-2 leaves room for that and still fails any
    /// indexing or formula mistake, which gives errors of order 1.
    /// </summary>
    protected override double Tolerance => 1e-2;

    public override void Dispose() => _backend?.Dispose();

    private Exception SkipNow()
    {
        Assert.Skip(_reason);
        return new InvalidOperationException(_reason); // not reached: Assert.Skip throws
    }

    [Fact]
    public void TrainingOpsAreNotSupportedYet()
    {
        Assert.True(Backend.Supports(OpKind.MatMul));
        Assert.Equal(DType.BF16, Backend.ActivationDType);
        foreach (var op in new[] { OpKind.EmbeddingBackward, OpKind.RmsNormBackward, OpKind.MatMulBackward, OpKind.RopeBackward,
                     OpKind.SwiGluBackward, OpKind.CrossEntropy, OpKind.Fill, OpKind.SumOfSquares, OpKind.AdamW })
            Assert.False(Backend.Supports(op), $"{op} is a training op");
        using var t = Backend.Allocate(DType.BF16, 4);
        var e = Assert.Throws<NotSupportedException>(() => Backend.Fill(t, 1f));
        Assert.Contains("Fill", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RejectsF32Activations()
    {
        using var x = Backend.Allocate(DType.F32, 2, 8);
        using var w = Backend.Allocate(DType.BF16, 8);
        using var y = Backend.Allocate(DType.BF16, 2, 8);
        var e = Assert.Throws<ArgumentException>(() => Backend.RmsNorm(y, x, w, 1e-5f));
        Assert.Contains("RmsNorm: input is F32, the CUDA backend expects BF16 activations", e.Message, StringComparison.Ordinal);
    }
}
