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
    public void EveryOpKindIsSupported()
    {
        Assert.Equal(DType.BF16, Backend.ActivationDType);
        var missing = Enum.GetValues<OpKind>().Where(op => !Backend.Supports(op)).ToArray();
        Assert.True(missing.Length == 0, $"the CUDA backend does not implement {string.Join(", ", missing)}");
    }

    /// <summary>Needs NVRTC only: every entry point the backend looks up by name is in the kernel file it names.</summary>
    [Fact]
    public void EveryEntryPointTheBackendLoadsIsInItsKernelFile()
    {
        CudaTestEnvironment.RequireNvrtc();
        using var cache = new CudaTestEnvironment.TempFolder();
        var compiler = new KernelCompiler(cache.Path);
        var fileOf = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (file, functions) in CudaBackend.KernelFiles)
            foreach (string function in functions)
                Assert.True(fileOf.TryAdd(function, file) || fileOf[function] == file, $"{function} is taken from {fileOf[function]} and {file}");
        foreach (var group in fileOf.GroupBy(e => e.Value, e => e.Key))
        {
            var compiled = compiler.Compile(group.Key, 80);
            var found = compiled.Functions.Select(f => f.Function).ToHashSet(StringComparer.Ordinal);
            foreach (string function in group)
                Assert.True(found.Contains(function), $"{group.Key} has no entry point {function} (it has {string.Join(", ", found)})");
            Assert.Equal(0, compiled.SpillBytes);
        }
    }

    [Fact]
    public void CopyConvertsBetweenF32AndBF16()
    {
        var values = new[] { 1f, -2.5f, 1.00390625f, 3.1415927f, 1e-3f, -65504f, 0f };
        var nearest = new[] { 1f, -2.5f, 1f, 3.140625f, 0.00099945068359375f, -65536f, 0f }; // nearest even in bf16
        using var f32 = Backend.Allocate(DType.F32, values.Length);
        using var bf16 = Backend.Allocate(DType.BF16, values.Length);
        using var back = Backend.Allocate(DType.F32, values.Length);
        Backend.Upload(f32, values);
        Backend.Copy(bf16, f32);
        var got = new float[values.Length];
        Backend.Download(got, bf16);
        Assert.Equal(nearest, got);
        Backend.Copy(back, bf16);
        Backend.Download(got, back);
        Assert.Equal(nearest, got);
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
