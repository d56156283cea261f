using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Spark.Native.Interop;

/// <summary>CUdevice_attribute values used here (cuda.h).</summary>
internal enum CuDeviceAttribute
{
    MaxThreadsPerBlock = 1,
    MaxSharedMemoryPerBlock = 8,
    WarpSize = 10,
    MultiprocessorCount = 16,
    L2CacheSize = 38,
    ComputeCapabilityMajor = 75,
    ComputeCapabilityMinor = 76,
    MaxSharedMemoryPerBlockOptin = 97,
}

/// <summary>CUfunction_attribute (cuda.h).</summary>
internal enum CuFunctionAttribute
{
    MaxThreadsPerBlock = 0,
    SharedSizeBytes = 1,
    ConstSizeBytes = 2,
    LocalSizeBytes = 3,
    NumRegs = 4,
    PtxVersion = 5,
    BinaryVersion = 6,
    CacheModeCa = 7,
    MaxDynamicSharedSizeBytes = 8,
    PreferredSharedMemoryCarveout = 9,
}

/// <summary>
/// The CUDA driver API (cuda.h). Where cuda.h maps a name to a versioned symbol (cuMemAlloc → cuMemAlloc_v2), the
/// binding imports the versioned symbol directly. CUresult is an int; <see cref="Check"/> turns non-zero into
/// <see cref="CudaException"/>. CUdeviceptr is a 64-bit integer (ulong); other handles are pointers.
/// </summary>
internal static unsafe partial class CudaDriver
{
    static CudaDriver() => NativeLibraries.EnsureRegistered();

    private const string Lib = NativeLibraries.Cuda;

    public const int Success = 0;
    public const int ErrorNoDevice = 100;

    [LibraryImport(Lib)] internal static partial int cuInit(uint flags);
    [LibraryImport(Lib)] internal static partial int cuDriverGetVersion(int* version);
    [LibraryImport(Lib)] internal static partial int cuDeviceGetCount(int* count);
    [LibraryImport(Lib)] internal static partial int cuDeviceGet(int* device, int ordinal);
    [LibraryImport(Lib)] internal static partial int cuDeviceGetName(byte* name, int length, int device);
    [LibraryImport(Lib)] internal static partial int cuDeviceGetAttribute(int* value, CuDeviceAttribute attribute, int device);
    [LibraryImport(Lib)] internal static partial int cuDeviceTotalMem_v2(nuint* bytes, int device);
    [LibraryImport(Lib)] internal static partial int cuDevicePrimaryCtxRetain(IntPtr* context, int device);
    [LibraryImport(Lib)] internal static partial int cuDevicePrimaryCtxRelease_v2(int device);
    [LibraryImport(Lib)] internal static partial int cuCtxSetCurrent(IntPtr context);
    [LibraryImport(Lib)] internal static partial int cuCtxSynchronize();

    [LibraryImport(Lib)] internal static partial int cuMemAlloc_v2(ulong* pointer, nuint bytes);
    [LibraryImport(Lib)] internal static partial int cuMemFree_v2(ulong pointer);
    [LibraryImport(Lib)] internal static partial int cuMemAllocHost_v2(void** pointer, nuint bytes);
    [LibraryImport(Lib)] internal static partial int cuMemFreeHost(void* pointer);
    [LibraryImport(Lib)] internal static partial int cuMemcpyHtoD_v2(ulong destination, void* source, nuint bytes);
    [LibraryImport(Lib)] internal static partial int cuMemcpyDtoH_v2(void* destination, ulong source, nuint bytes);
    [LibraryImport(Lib)] internal static partial int cuMemcpyDtoD_v2(ulong destination, ulong source, nuint bytes);
    [LibraryImport(Lib)] internal static partial int cuMemcpyHtoDAsync_v2(ulong destination, void* source, nuint bytes, IntPtr stream);
    [LibraryImport(Lib)] internal static partial int cuMemcpyDtoHAsync_v2(void* destination, ulong source, nuint bytes, IntPtr stream);
    [LibraryImport(Lib)] internal static partial int cuMemcpyDtoDAsync_v2(ulong destination, ulong source, nuint bytes, IntPtr stream);
    [LibraryImport(Lib)] internal static partial int cuMemsetD32_v2(ulong destination, uint value, nuint count);

    [LibraryImport(Lib)] internal static partial int cuStreamCreate(IntPtr* stream, uint flags);
    [LibraryImport(Lib)] internal static partial int cuStreamDestroy_v2(IntPtr stream);
    [LibraryImport(Lib)] internal static partial int cuStreamSynchronize(IntPtr stream);

    [LibraryImport(Lib)] internal static partial int cuEventCreate(IntPtr* evt, uint flags);
    [LibraryImport(Lib)] internal static partial int cuEventRecord(IntPtr evt, IntPtr stream);
    [LibraryImport(Lib)] internal static partial int cuEventSynchronize(IntPtr evt);
    /// <summary>The v1 symbol: every driver exports it (CUDA 12.8+ headers also add cuEventElapsedTime_v2).</summary>
    [LibraryImport(Lib)] internal static partial int cuEventElapsedTime(float* milliseconds, IntPtr start, IntPtr end);
    [LibraryImport(Lib)] internal static partial int cuEventDestroy_v2(IntPtr evt);

    [LibraryImport(Lib)] internal static partial int cuModuleLoadData(IntPtr* module, void* image);
    [LibraryImport(Lib)] internal static partial int cuModuleUnload(IntPtr module);
    [LibraryImport(Lib)] internal static partial int cuModuleGetFunction(IntPtr* function, IntPtr module, byte* name);
    [LibraryImport(Lib)] internal static partial int cuFuncSetAttribute(IntPtr function, CuFunctionAttribute attribute, int value);
    [LibraryImport(Lib)] internal static partial int cuFuncGetAttribute(int* value, CuFunctionAttribute attribute, IntPtr function);
    [LibraryImport(Lib)]
    internal static partial int cuLaunchKernel(IntPtr function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedMemoryBytes, IntPtr stream, void** kernelParams, void** extra);

    [LibraryImport(Lib)] internal static partial int cuGetErrorName(int error, byte** name);
    [LibraryImport(Lib)] internal static partial int cuGetErrorString(int error, byte** text);

    /// <summary>Throws <see cref="CudaException"/> unless the call returned CUDA_SUCCESS.</summary>
    public static void Check(int result, [CallerArgumentExpression(nameof(result))] string? call = null)
    {
        if (result != Success) throw Error(result, call);
    }

    public static CudaException Error(int result, string? call)
    {
        byte* name = null, text = null;
        string errorName = cuGetErrorName(result, &name) == Success && name != null ? Marshal.PtrToStringUTF8((IntPtr)name)! : $"CUresult {result}";
        string errorText = cuGetErrorString(result, &text) == Success && text != null ? Marshal.PtrToStringUTF8((IntPtr)text)! : "";
        return new CudaException(NativeLibraries.Cuda, result, errorName, errorText, call);
    }

    /// <summary>cuInit(0) once; the driver itself tolerates repeated calls.</summary>
    public static void Initialize() => Check(cuInit(0));

    /// <summary>Driver version as (major, minor), e.g. 13000 → (13, 0).</summary>
    public static (int Major, int Minor) DriverVersion()
    {
        int v;
        Check(cuDriverGetVersion(&v));
        return (v / 1000, v % 1000 / 10);
    }

    public static int DeviceCount()
    {
        int count;
        Check(cuDeviceGetCount(&count));
        return count;
    }
}

/// <summary>A retained primary context; released with cuDevicePrimaryCtxRelease. The handle value is the CUcontext.</summary>
internal sealed class CudaContextHandle : SafeHandle
{
    public int Device { get; }
    public CudaContextHandle(int device) : base(IntPtr.Zero, ownsHandle: true) => Device = device;
    public override bool IsInvalid => handle == IntPtr.Zero;
    protected override bool ReleaseHandle() => CudaDriver.cuDevicePrimaryCtxRelease_v2(Device) == CudaDriver.Success;

    /// <summary>Makes this context current on the calling thread (driver contexts are per thread).</summary>
    public void MakeCurrent() => CudaDriver.Check(CudaDriver.cuCtxSetCurrent(handle));
}

/// <summary>
/// A handle that belongs to a context: it keeps the context alive (AddRef) until it is destroyed, and makes it
/// current before destroying, so finalizer threads and out-of-order disposal release correctly.
/// </summary>
internal abstract class CudaContextBoundHandle : SafeHandle
{
    private readonly CudaContextHandle _context;

    protected CudaContextBoundHandle(CudaContextHandle context) : base(IntPtr.Zero, ownsHandle: true) => _context = context;

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>Called with the owning context current.</summary>
    protected abstract int Destroy(IntPtr value);

    protected sealed override bool ReleaseHandle()
    {
        try
        {
            return CudaDriver.cuCtxSetCurrent(_context.DangerousGetHandle()) == CudaDriver.Success
                && Destroy(handle) == CudaDriver.Success;
        }
        finally
        {
            _context.DangerousRelease();
        }
    }

    /// <summary>Takes ownership of a freshly created native handle; only then is the context referenced.</summary>
    internal void Set(IntPtr value)
    {
        bool added = false;
        _context.DangerousAddRef(ref added);
        SetHandle(value);
    }
}

/// <summary>Device memory from cuMemAlloc; the handle value is the CUdeviceptr.</summary>
internal sealed class CudaMemoryHandle(CudaContextHandle context) : CudaContextBoundHandle(context)
{
    public ulong Pointer => (ulong)(long)handle;
    protected override int Destroy(IntPtr value) => CudaDriver.cuMemFree_v2((ulong)(long)value);
}

/// <summary>Page-locked host memory from cuMemAllocHost.</summary>
internal sealed unsafe class CudaPinnedMemoryHandle(CudaContextHandle context) : CudaContextBoundHandle(context)
{
    protected override int Destroy(IntPtr value) => CudaDriver.cuMemFreeHost((void*)value);
}

internal sealed class CudaStreamHandle(CudaContextHandle context) : CudaContextBoundHandle(context)
{
    protected override int Destroy(IntPtr value) => CudaDriver.cuStreamDestroy_v2(value);
}

internal sealed class CudaEventHandle(CudaContextHandle context) : CudaContextBoundHandle(context)
{
    protected override int Destroy(IntPtr value) => CudaDriver.cuEventDestroy_v2(value);
}

internal sealed class CudaModuleHandle(CudaContextHandle context) : CudaContextBoundHandle(context)
{
    protected override int Destroy(IntPtr value) => CudaDriver.cuModuleUnload(value);
}
