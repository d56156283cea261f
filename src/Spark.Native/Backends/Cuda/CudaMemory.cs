using Spark.Native.Interop;
using Spark.Native.IO;

namespace Spark.Native.Backends.Cuda;

/// <summary>
/// One device allocation (cuMemAlloc) of F32 or BF16 elements, zero-filled at creation. The SafeHandle frees it
/// exactly once, with its context current, and keeps the context alive until then.
/// </summary>
internal sealed class CudaMemory : DeviceMemory
{
    private readonly CudaMemoryHandle _handle;

    public CudaMemory(CudaDevice device, DType dtype, long elementCount) : base(dtype, elementCount)
    {
        ElementSize = DTypes.SizeOf(dtype);
        // whole 32-bit words, so cuMemsetD32 can zero it; at least one word (cuMemAlloc rejects 0 bytes)
        long words = Math.Max(1, (elementCount * ElementSize + 3) / 4);
        _handle = device.Allocate(words * 4);
        device.Fill32(_handle, 0, words);
    }

    /// <summary>Bytes per element.</summary>
    public int ElementSize { get; }

    public CudaMemoryHandle Handle => _handle;

    /// <summary>The device address of element <paramref name="offset"/>.</summary>
    public ulong Pointer(long offset)
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        return _handle.Pointer + (ulong)(offset * ElementSize);
    }

    public override void Dispose() => _handle.Dispose();
}
