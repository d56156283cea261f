using System.Runtime.InteropServices;
using System.Text;

namespace Spark.Native.Interop;

/// <summary>A loaded kernel entry point. Owned by its module: valid while the module is.</summary>
internal readonly record struct CudaFunction(IntPtr Handle, string Name);

/// <summary>
/// One GPU through the driver API: its primary context, properties, and the few operations the toolchain and the
/// tests need (allocate, copy, load a cubin, launch). Every method makes the context current first, because driver
/// contexts are per thread and callers (tests, Parallel.For) move between threads.
/// </summary>
internal sealed unsafe class CudaDevice : IDisposable
{
    private readonly CudaContextHandle _context;

    public int Ordinal { get; }
    public string Name { get; }
    public int ComputeCapabilityMajor { get; }
    public int ComputeCapabilityMinor { get; }
    /// <summary>Compute capability as one number, e.g. 90 for sm_90.</summary>
    public int ComputeCapability => ComputeCapabilityMajor * 10 + ComputeCapabilityMinor;
    public long TotalMemoryBytes { get; }
    public int MultiprocessorCount { get; }
    public int MaxSharedMemoryPerBlockOptin { get; }
    public (int Major, int Minor) DriverVersion { get; }

    private CudaDevice(int ordinal)
    {
        CudaDriver.Initialize();
        int device;
        CudaDriver.Check(CudaDriver.cuDeviceGet(&device, ordinal));
        Ordinal = ordinal;
        var name = stackalloc byte[256];
        CudaDriver.Check(CudaDriver.cuDeviceGetName(name, 256, device));
        Name = Marshal.PtrToStringUTF8((IntPtr)name) ?? "";
        ComputeCapabilityMajor = Attribute(CuDeviceAttribute.ComputeCapabilityMajor, device);
        ComputeCapabilityMinor = Attribute(CuDeviceAttribute.ComputeCapabilityMinor, device);
        MultiprocessorCount = Attribute(CuDeviceAttribute.MultiprocessorCount, device);
        MaxSharedMemoryPerBlockOptin = Attribute(CuDeviceAttribute.MaxSharedMemoryPerBlockOptin, device);
        nuint total;
        CudaDriver.Check(CudaDriver.cuDeviceTotalMem_v2(&total, device));
        TotalMemoryBytes = (long)total;
        DriverVersion = CudaDriver.DriverVersion();

        _context = new CudaContextHandle(device);
        IntPtr context;
        CudaDriver.Check(CudaDriver.cuDevicePrimaryCtxRetain(&context, device));
        Marshal.InitHandle(_context, context);
        _context.MakeCurrent();
    }

    /// <summary>Opens device <paramref name="ordinal"/> (cuInit, retain its primary context, make it current).</summary>
    public static CudaDevice Open(int ordinal = 0) => new(ordinal);

    /// <summary>Number of CUDA devices, after cuInit.</summary>
    public static int Count()
    {
        CudaDriver.Initialize();
        return CudaDriver.DeviceCount();
    }

    private static int Attribute(CuDeviceAttribute attribute, int device)
    {
        int value;
        CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(&value, attribute, device));
        return value;
    }

    public void MakeCurrent() => _context.MakeCurrent();

    public void Synchronize()
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuCtxSynchronize());
    }

    public CudaMemoryHandle Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        MakeCurrent();
        var memory = new CudaMemoryHandle(_context);
        ulong pointer;
        CudaDriver.Check(CudaDriver.cuMemAlloc_v2(&pointer, (nuint)bytes));
        memory.Set((IntPtr)(long)pointer);
        return memory;
    }

    public CudaPinnedMemoryHandle AllocatePinned(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        MakeCurrent();
        var memory = new CudaPinnedMemoryHandle(_context);
        void* pointer;
        CudaDriver.Check(CudaDriver.cuMemAllocHost_v2(&pointer, (nuint)bytes));
        memory.Set((IntPtr)pointer);
        return memory;
    }

    public void CopyToDevice<T>(CudaMemoryHandle destination, ReadOnlySpan<T> source) where T : unmanaged
    {
        MakeCurrent();
        fixed (T* p = source)
            CudaDriver.Check(CudaDriver.cuMemcpyHtoD_v2(destination.Pointer, p, (nuint)(source.Length * sizeof(T))));
    }

    public void CopyToHost<T>(Span<T> destination, CudaMemoryHandle source) where T : unmanaged
    {
        MakeCurrent();
        fixed (T* p = destination)
            CudaDriver.Check(CudaDriver.cuMemcpyDtoH_v2(p, source.Pointer, (nuint)(destination.Length * sizeof(T))));
    }

    public void CopyDeviceToDevice(CudaMemoryHandle destination, CudaMemoryHandle source, long bytes)
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemcpyDtoD_v2(destination.Pointer, source.Pointer, (nuint)bytes));
    }

    /// <summary>Sets <paramref name="count"/> 32-bit words to <paramref name="value"/>.</summary>
    public void Fill32(CudaMemoryHandle destination, uint value, long count)
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemsetD32_v2(destination.Pointer, value, (nuint)count));
    }

    public CudaStreamHandle CreateStream()
    {
        MakeCurrent();
        var stream = new CudaStreamHandle(_context);
        IntPtr s;
        CudaDriver.Check(CudaDriver.cuStreamCreate(&s, 1 /* CU_STREAM_NON_BLOCKING */));
        stream.Set(s);
        return stream;
    }

    public CudaEventHandle CreateEvent()
    {
        MakeCurrent();
        var evt = new CudaEventHandle(_context);
        IntPtr e;
        CudaDriver.Check(CudaDriver.cuEventCreate(&e, 0 /* CU_EVENT_DEFAULT: timing enabled */));
        evt.Set(e);
        return evt;
    }

    /// <summary>Records <paramref name="evt"/> on <paramref name="stream"/> (null: the legacy default stream the backend uses).</summary>
    public void Record(CudaEventHandle evt, CudaStreamHandle? stream = null)
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventRecord(evt.DangerousGetHandle(), stream?.DangerousGetHandle() ?? IntPtr.Zero));
    }

    /// <summary>Waits for <paramref name="end"/>, then returns the GPU time between two recorded events in milliseconds.</summary>
    public float ElapsedMilliseconds(CudaEventHandle start, CudaEventHandle end)
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventSynchronize(end.DangerousGetHandle()));
        float ms;
        CudaDriver.Check(CudaDriver.cuEventElapsedTime(&ms, start.DangerousGetHandle(), end.DangerousGetHandle()));
        return ms;
    }

    /// <summary>Free and total device memory in bytes, as the driver sees it (every process on the GPU counts).</summary>
    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrent();
        nuint free, total;
        CudaDriver.Check(CudaDriver.cuMemGetInfo_v2(&free, &total));
        return ((long)free, (long)total);
    }

    /// <summary>L2 cache size in bytes (0 when the driver does not say).</summary>
    public int L2CacheBytes
    {
        get
        {
            MakeCurrent();
            int device = Ordinal;
            int value;
            CudaDriver.Check(CudaDriver.cuDeviceGet(&device, Ordinal));
            CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(&value, CuDeviceAttribute.L2CacheSize, device));
            return value;
        }
    }

    public CudaModuleHandle LoadModule(ReadOnlySpan<byte> cubin)
    {
        MakeCurrent();
        var module = new CudaModuleHandle(_context);
        IntPtr m;
        fixed (byte* p = cubin) CudaDriver.Check(CudaDriver.cuModuleLoadData(&m, p));
        module.Set(m);
        return module;
    }

    public CudaFunction GetFunction(CudaModuleHandle module, string name)
    {
        MakeCurrent();
        IntPtr f;
        byte[] utf8 = Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* p = utf8) CudaDriver.Check(CudaDriver.cuModuleGetFunction(&f, module.DangerousGetHandle(), p));
        return new CudaFunction(f, name);
    }

    public static int GetAttribute(CudaFunction function, CuFunctionAttribute attribute)
    {
        int value;
        CudaDriver.Check(CudaDriver.cuFuncGetAttribute(&value, attribute, function.Handle));
        return value;
    }

    /// <summary>Opts the function in to more than 48 KiB of dynamic shared memory.</summary>
    public static void SetMaxDynamicSharedMemory(CudaFunction function, int bytes) =>
        CudaDriver.Check(CudaDriver.cuFuncSetAttribute(function.Handle, CuFunctionAttribute.MaxDynamicSharedSizeBytes, bytes));

    /// <summary>
    /// Launches <paramref name="function"/>; <paramref name="arguments"/> holds one pointer per kernel parameter,
    /// each pointing at the argument's value (cuLaunchKernel's kernelParams).
    /// </summary>
    public void Launch(CudaFunction function, (uint X, uint Y, uint Z) grid, (uint X, uint Y, uint Z) block, uint sharedMemoryBytes,
        CudaStreamHandle? stream, ReadOnlySpan<IntPtr> arguments)
    {
        MakeCurrent();
        fixed (IntPtr* args = arguments)
            CudaDriver.Check(CudaDriver.cuLaunchKernel(function.Handle, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z,
                sharedMemoryBytes, stream?.DangerousGetHandle() ?? IntPtr.Zero, (void**)args, null));
    }

    public void Synchronize(CudaStreamHandle stream)
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamSynchronize(stream.DangerousGetHandle()));
    }

    public void Dispose() => _context.Dispose();

    public override string ToString() =>
        $"{Name} (sm_{ComputeCapability}, {MultiprocessorCount} SMs, {TotalMemoryBytes / (double)(1L << 30):F1} GiB)";
}

// The memory query of the benchmarks (Benchmarks/KernelBenchmark.cs), beside its one user in this file.
internal static unsafe partial class CudaDriver
{
    [LibraryImport(Lib)] internal static partial int cuMemGetInfo_v2(nuint* free, nuint* total);
}
