using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using Spark.Native.Generation;
using Spark.Native.Interop;
using Spark.Native.IO;
using Spark.Native.Tensors;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Backends.Cuda;

// Dimension legend: T rows (tokens), H hidden, I intermediate, V vocabulary, S cached positions,
// NH query heads, NKV key/value heads, HD head dim. Activations and weights BF16, RoPE inverse frequencies F32,
// arithmetic fp32 inside every kernel and in cuBLASLt (CUBLAS_COMPUTE_32F).

/// <summary>
/// The first GPU backend: one device, the legacy default stream (every launch and copy is ordered after the previous
/// one, and the synchronous copies wait for the kernels before them), kernels from <c>kernels/*.cu</c> compiled by
/// NVRTC for the device's arch and loaded once, matmuls through cuBLASLt. Ops not implemented yet throw
/// <see cref="NotSupportedException"/> and <see cref="Supports"/> says false for them. Not thread-safe (one caller at
/// a time, like the model that drives it). Written without a GPU: <c>CudaBackendOpsTests</c> and
/// <c>CudaBackendGradientTests</c> check it against the CPU reference on a machine that has one.
/// </summary>
internal sealed unsafe partial class CudaBackend : IBackend
{
    private const uint Block = 256;
    private const long WorkspaceBytes = 32L << 20;
    private const int DefaultDynamicSharedMemory = 48 << 10;

    // Each partial file of this class owns an op family: its kernel files (with the entry points it takes from them)
    // and the ops it implements. This file: memory and the simple forward ops.
    private static (string File, string[] Functions)[] CoreKernels =>
    [
        ("embedding.cu", ["embedding_forward"]),
        ("rmsnorm.cu", ["rmsnorm_forward"]),
        ("rope.cu", ["rope_forward"]),
        ("swiglu.cu", ["swiglu_forward"]),
        ("elementwise.cu", ["add_bf16", "convert_f32_to_bf16", "convert_bf16_to_f32"]),
        ("softmax.cu", ["softmax_forward", "log_softmax_forward"]),
    ];

    private static OpKind[] CoreOps =>
    [
        OpKind.Embedding, OpKind.RmsNorm, OpKind.AddRmsNorm, OpKind.Rope, OpKind.SwiGlu, OpKind.Add, OpKind.Softmax, OpKind.LogSoftmax, OpKind.Copy,
    ];

    /// <summary>The kernel files this backend loads, and the entry points it takes from them.</summary>
    internal static (string File, string[] Functions)[] KernelFiles =>
        [.. CoreKernels, .. MatMulKernels, .. AttentionKernels, .. TrainingKernels, .. LogProbKernels, .. SamplingKernels];

    private static readonly HashSet<OpKind> SupportedOps =
        [.. CoreOps, .. MatMulOps, .. AttentionOps, .. TrainingOps, .. LogProbOps, .. SamplingOps];

    private readonly CudaDevice _device;
    private readonly List<CudaModuleHandle> _modules = [];
    private readonly Dictionary<string, CudaFunction> _functions = new(StringComparer.Ordinal);
    private readonly CublasLtHandle _cublas;
    private readonly CudaMemoryHandle _workspace;
    private readonly Dictionary<GemmKey, MatMulPlan> _plans = [];
    private CudaMemoryHandle? _intScratch;
    private long _intScratchCount;
    private bool _disposed;

    private CudaBackend(CudaDevice device, KernelCompiler compiler)
    {
        _device = device;
        try
        {
            // a file several op families take entry points from is compiled and loaded once
            foreach (var file in KernelFiles.GroupBy(k => k.File, StringComparer.Ordinal))
            {
                var compiled = compiler.Compile(file.Key, device.ComputeCapability);
                var module = device.LoadModule(compiled.Cubin);
                _modules.Add(module);
                foreach (string f in file.SelectMany(k => k.Functions)) _functions[f] = device.GetFunction(module, f);
            }
            device.MakeCurrent();
            _cublas = CublasLt.Create();
            _workspace = device.Allocate(WorkspaceBytes);
        }
        catch
        {
            DisposeResources();
            throw;
        }
    }

    public string Name => "cuda";

    public DType ActivationDType => DType.BF16;

    /// <summary>The GPU this backend runs on.</summary>
    public CudaDevice Device => _device;

    /// <summary>
    /// Opens device 0 with its kernels and cuBLASLt. False, with the reason, when this machine cannot run it: no CUDA
    /// driver (libcuda.so.1), no device, no NVRTC or no cuBLASLt. Other failures (a kernel that does not compile, a
    /// driver error on a present device) throw: they are bugs to see, not a missing GPU.
    /// </summary>
    public static bool TryCreate([NotNullWhen(true)] out CudaBackend? backend, out string reason)
    {
        backend = null;
        if (!NativeLibraries.IsAvailable(NativeLibraries.Cuda))
        {
            reason = $"no CUDA driver: {string.Join(", ", NativeLibraries.CandidatesOf(NativeLibraries.Cuda))} not found (this machine has no NVIDIA GPU)";
            return false;
        }
        int count;
        try { count = CudaDevice.Count(); }
        catch (CudaException e)
        {
            reason = $"CUDA driver present but unusable: {e.Message}";
            return false;
        }
        if (count == 0)
        {
            reason = "CUDA driver present but reports no device";
            return false;
        }
        if (!KernelCompiler.IsNvrtcAvailable)
        {
            reason = $"NVRTC not found (tried {string.Join(", ", NativeLibraries.CandidatesOf(NativeLibraries.Nvrtc))}); the CUDA backend compiles its kernels at run time";
            return false;
        }
        if (!NativeLibraries.IsAvailable(NativeLibraries.CublasLt))
        {
            reason = $"cuBLASLt not found (tried {string.Join(", ", NativeLibraries.CandidatesOf(NativeLibraries.CublasLt))}); the CUDA backend's matmuls need it";
            return false;
        }
        var device = CudaDevice.Open(0);
        try
        {
            backend = new CudaBackend(device, new KernelCompiler());
        }
        catch
        {
            device.Dispose();
            throw;
        }
        reason = "";
        return true;
    }

    public bool Supports(OpKind op) => SupportedOps.Contains(op);

    // ---- memory

    public Tensor Allocate(DType dtype, params int[] shape)
    {
        if (dtype is not (DType.F32 or DType.BF16))
            throw new NotSupportedException($"the CUDA backend stores F32 and BF16 tensors; {dtype} is converted when loaded");
        return new Tensor(this, new CudaMemory(_device, dtype, Math.Max(1, Tensor.ShapeLength(shape))), 0, (int[])shape.Clone(), ownsMemory: true);
    }

    /// <summary>Converts to the tensor's element type on the host (BF16: round to nearest even), then copies.</summary>
    public void Upload(Tensor destination, ReadOnlySpan<float> source)
    {
        Check.Length(destination, source.Length, nameof(source));
        var memory = Memory(destination, nameof(Upload), nameof(destination));
        if (source.Length == 0) return;
        ulong pointer = memory.Pointer(destination.Offset);
        _device.MakeCurrent();
        if (destination.DType == DType.F32)
        {
            fixed (float* p = source) CudaDriver.Check(CudaDriver.cuMemcpyHtoD_v2(pointer, p, (nuint)((long)source.Length * sizeof(float))));
            return;
        }
        byte[] staging = ArrayPool<byte>.Shared.Rent(source.Length * 2);
        try
        {
            var bytes = staging.AsSpan(0, source.Length * 2);
            NumericConversions.FromF32(DType.BF16, source, bytes);
            fixed (byte* p = bytes) CudaDriver.Check(CudaDriver.cuMemcpyHtoD_v2(pointer, p, (nuint)bytes.Length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(staging);
        }
    }

    /// <summary>Copies to the host (waiting for the kernels before it), then converts to float.</summary>
    public void Download(Span<float> destination, Tensor source)
    {
        Check.Length(source, destination.Length, nameof(destination));
        var memory = Memory(source, nameof(Download), nameof(source));
        if (destination.Length == 0) return;
        ulong pointer = memory.Pointer(source.Offset);
        _device.MakeCurrent();
        if (source.DType == DType.F32)
        {
            fixed (float* p = destination) CudaDriver.Check(CudaDriver.cuMemcpyDtoH_v2(p, pointer, (nuint)((long)destination.Length * sizeof(float))));
            return;
        }
        byte[] staging = ArrayPool<byte>.Shared.Rent(destination.Length * 2);
        try
        {
            var bytes = staging.AsSpan(0, destination.Length * 2);
            fixed (byte* p = bytes) CudaDriver.Check(CudaDriver.cuMemcpyDtoH_v2(p, pointer, (nuint)bytes.Length));
            NumericConversions.BF16ToF32(bytes, destination);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(staging);
        }
    }

    // ---- forward ops

    public void Embedding(Tensor output, Tensor table, ReadOnlySpan<int> ids)
    {
        ulong o = Activation(output, nameof(Embedding), nameof(output));
        ulong w = Activation(table, nameof(Embedding), nameof(table));
        Check.Rank(table, 2, nameof(table));
        int v = table.Shape[0], h = table.Shape[1];
        Check.Shape(output, nameof(output), ids.Length, h);
        for (int t = 0; t < ids.Length; t++)
        {
            int id = ids[t];
            if ((uint)id >= (uint)v) throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} at position {t} is outside the vocabulary [0, {v})");
        }
        if (ids.Length == 0 || h == 0) return;
        ulong idsPointer = UploadInts(ids);
        Launch("embedding_forward", ((uint)ids.Length, 1, 1), Block, 0, (IntPtr)(&o), (IntPtr)(&w), (IntPtr)(&idsPointer), (IntPtr)(&h));
    }

    public void RmsNorm(Tensor output, Tensor input, Tensor weight, float eps)
    {
        ulong o = Activation(output, nameof(RmsNorm), nameof(output));
        ulong x = Activation(input, nameof(RmsNorm), nameof(input));
        ulong w = Activation(weight, nameof(RmsNorm), nameof(weight));
        Check.Rank(input, 2, nameof(input));
        int rows = input.Shape[0], h = input.Shape[1];
        Check.SameShape(input, output, nameof(output));
        Check.Shape(weight, nameof(weight), h);
        if (rows == 0 || h == 0) return;
        // rmsnorm_forward fuses a residual add: with delta null it only reads `residual` (the input), and rstd null
        // skips saving the statistics (inference)
        ulong rstd = 0, delta = 0;
        Launch("rmsnorm_forward", ((uint)rows, 1, 1), Block, 0,
            (IntPtr)(&o), (IntPtr)(&rstd), (IntPtr)(&x), (IntPtr)(&delta), (IntPtr)(&w), (IntPtr)(&h), (IntPtr)(&eps));
    }

    public void AddRmsNorm(Tensor normed, Tensor residual, Tensor delta, Tensor weight, float eps)
    {
        ulong o = Activation(normed, nameof(AddRmsNorm), nameof(normed));
        ulong x = Activation(residual, nameof(AddRmsNorm), nameof(residual));
        ulong d = Activation(delta, nameof(AddRmsNorm), nameof(delta));
        ulong w = Activation(weight, nameof(AddRmsNorm), nameof(weight));
        Check.Rank(residual, 2, nameof(residual));
        int rows = residual.Shape[0], h = residual.Shape[1];
        Check.SameShape(residual, delta, nameof(delta));
        Check.SameShape(residual, normed, nameof(normed));
        Check.Shape(weight, nameof(weight), h);
        Check.NotOverlapping(normed, residual, nameof(AddRmsNorm), nameof(normed), nameof(residual));
        Check.NotOverlapping(normed, delta, nameof(AddRmsNorm), nameof(normed), nameof(delta));
        if (rows == 0 || h == 0) return;
        // one pass: residual[t] += delta[t] (stored in bf16), then the norm of the stored sum, as Add then RmsNorm
        ulong rstd = 0;
        Launch("rmsnorm_forward", ((uint)rows, 1, 1), Block, 0,
            (IntPtr)(&o), (IntPtr)(&rstd), (IntPtr)(&x), (IntPtr)(&d), (IntPtr)(&w), (IntPtr)(&h), (IntPtr)(&eps));
    }

    public void Rope(Tensor x, ReadOnlySpan<int> positions, Tensor inverseFrequencies, int headDim) =>
        RotateHalf(nameof(Rope), "rope_forward", x, positions, inverseFrequencies, headDim);

    public void SwiGlu(Tensor output, Tensor gate, Tensor up)
    {
        ulong o = Activation(output, nameof(SwiGlu), nameof(output));
        ulong g = Activation(gate, nameof(SwiGlu), nameof(gate));
        ulong u = Activation(up, nameof(SwiGlu), nameof(up));
        Check.SameShape(gate, up, nameof(up));
        Check.SameShape(gate, output, nameof(output));
        long n = output.Length;
        if (n == 0) return;
        Launch("swiglu_forward", (GridStride(n), 1, 1), Block, 0, (IntPtr)(&o), (IntPtr)(&g), (IntPtr)(&u), (IntPtr)(&n));
    }

    public void Add(Tensor output, Tensor a, Tensor b)
    {
        ulong o = Activation(output, nameof(Add), nameof(output));
        ulong pa = Activation(a, nameof(Add), nameof(a));
        ulong pb = Activation(b, nameof(Add), nameof(b));
        Check.SameShape(a, b, nameof(b));
        Check.SameShape(a, output, nameof(output));
        long n = output.Length;
        if (n == 0) return;
        Launch("add_bf16", (GridStride(n), 1, 1), Block, 0, (IntPtr)(&o), (IntPtr)(&pa), (IntPtr)(&pb), (IntPtr)(&n));
    }

    public void Softmax(Tensor output, Tensor input) => RowSoftmax(nameof(Softmax), "softmax_forward", output, input);

    public void LogSoftmax(Tensor output, Tensor input) => RowSoftmax(nameof(LogSoftmax), "log_softmax_forward", output, input);

    private void RowSoftmax(string op, string kernel, Tensor output, Tensor input)
    {
        ulong o = Activation(output, op, nameof(output));
        ulong x = Activation(input, op, nameof(input));
        Check.Rank(input, 2, nameof(input));
        Check.SameShape(input, output, nameof(output));
        int rows = input.Shape[0], cols = input.Shape[1];
        if (rows == 0 || cols == 0) return;
        Launch(kernel, ((uint)rows, 1, 1), Block, 0, (IntPtr)(&o), (IntPtr)(&x), (IntPtr)(&cols));
    }

    /// <summary>
    /// destination = source. Same element type: a device-to-device copy. F32 → BF16 rounds to nearest even and BF16 →
    /// F32 is exact (a conversion kernel), so a master copy and its working weights copy into each other.
    /// </summary>
    public void Copy(Tensor destination, Tensor source)
    {
        var d = Memory(destination, nameof(Copy), nameof(destination));
        var s = Memory(source, nameof(Copy), nameof(source));
        Check.Length(destination, source.Length, nameof(source));
        long n = source.Length;
        if (n == 0) return;
        ulong dst = d.Pointer(destination.Offset), src = s.Pointer(source.Offset);
        if (destination.DType == source.DType)
        {
            _device.MakeCurrent();
            CudaDriver.Check(CudaDriver.cuMemcpyDtoD_v2(dst, src, (nuint)(n * s.ElementSize)));
            return;
        }
        string kernel = (destination.DType, source.DType) switch
        {
            (DType.BF16, DType.F32) => "convert_f32_to_bf16",
            (DType.F32, DType.BF16) => "convert_bf16_to_f32",
            _ => throw new ArgumentException($"Copy: no conversion from {source.DType} to {destination.DType} on the CUDA backend", nameof(source)),
        };
        Launch(kernel, (GridStride(n), 1, 1), Block, 0, (IntPtr)(&dst), (IntPtr)(&src), (IntPtr)(&n));
    }

    // ---- helpers

    private CudaMemory Memory(Tensor t, string op, string operand)
    {
        if (t.Memory is not CudaMemory memory || !ReferenceEquals(t.Backend, this))
            throw new ArgumentException($"{op}: {operand} {t} does not live on this CUDA backend", operand);
        return memory;
    }

    /// <summary>The device address of an activation or weight tensor, checking it is BF16 on this backend.</summary>
    private ulong Activation(Tensor t, string op, string operand) =>
        Pointer(t, DType.BF16, op, operand, "expects BF16 activations");

    private ulong Pointer(Tensor t, DType expected, string op, string operand, string what)
    {
        var memory = Memory(t, op, operand);
        if (t.DType != expected)
            throw new ArgumentException($"{op}: {operand} is {t.DType}, the CUDA backend {what}", operand);
        return memory.Pointer(t.Offset);
    }

    private CudaFunction Function(string name) => _functions[name];

    private void Launch(string kernel, (uint X, uint Y, uint Z) grid, uint block, uint shared, params ReadOnlySpan<IntPtr> arguments) =>
        _device.Launch(Function(kernel), grid, (block, 1, 1), shared, null, arguments);

    /// <summary>Blocks of a grid-stride loop over n elements: enough to fill the GPU, at most 65535.</summary>
    private static uint GridStride(long n) => (uint)Math.Clamp((n + Block - 1) / Block, 1, 65535);

    /// <summary>
    /// Copies ids or positions to a device buffer reused across calls. Safe without waiting: the copy is synchronous
    /// on the legacy default stream, so it runs after the kernels that read the previous contents.
    /// </summary>
    private ulong UploadInts(ReadOnlySpan<int> values)
    {
        if (_intScratch is null || _intScratchCount < values.Length)
        {
            _intScratch?.Dispose();
            _intScratchCount = Math.Max(values.Length, Math.Max(1024, _intScratchCount * 2));
            _intScratch = _device.Allocate(_intScratchCount * sizeof(int));
        }
        _device.CopyToDevice(_intScratch, values);
        return _intScratch.Pointer;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        DisposeResources();
    }

    private void DisposeResources()
    {
        foreach (var plan in _plans.Values) plan.Dispose();
        _plans.Clear();
        _intScratch?.Dispose();
        _scratch?.Dispose();
        DisposeLogProbScratch();
        DisposeAttention();
        _workspace?.Dispose();
        _cublas?.Dispose();
        foreach (var module in _modules) module.Dispose();
        _modules.Clear();
        _functions.Clear();
        _device.Dispose();
    }
}
