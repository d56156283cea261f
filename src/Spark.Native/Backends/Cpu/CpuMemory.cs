using System.Runtime.InteropServices;

namespace Spark.Native.Backends.Cpu;

/// <summary>A 64-byte aligned native allocation, freed exactly once.</summary>
internal sealed unsafe class NativeBufferHandle : SafeHandle
{
    public NativeBufferHandle(nuint bytes) : base(IntPtr.Zero, ownsHandle: true)
    {
        SetHandle((IntPtr)NativeMemory.AlignedAlloc(Math.Max(bytes, 64), 64));
        NativeMemory.Clear((void*)handle, bytes);
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        NativeMemory.AlignedFree((void*)handle);
        return true;
    }
}

/// <summary>CPU memory: F32 elements in one zero-initialised native block (no 2 GiB array limit).</summary>
internal sealed unsafe class CpuMemory : DeviceMemory
{
    private readonly NativeBufferHandle _handle;
    private readonly float* _data;

    public CpuMemory(long elementCount) : base(DType.F32, elementCount)
    {
        _handle = new NativeBufferHandle(checked((nuint)elementCount * sizeof(float)));
        _data = (float*)_handle.DangerousGetHandle();
    }

    public Span<float> Span(long offset, long length)
    {
        if (_handle.IsClosed) throw new ObjectDisposedException(nameof(CpuMemory));
        if (offset < 0 || length < 0 || offset + length > ElementCount)
            throw new ArgumentOutOfRangeException(nameof(offset));
        if (length > Array.MaxLength)
            throw new NotSupportedException($"a single CPU tensor view is limited to {Array.MaxLength} elements; got {length}");
        return new Span<float>(_data + offset, (int)length);
    }

    public override void Dispose() => _handle.Dispose();
}
