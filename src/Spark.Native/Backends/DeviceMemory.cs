namespace Spark.Native.Backends;

/// <summary>One allocation in a backend's memory. Tensors are views into it.</summary>
internal abstract class DeviceMemory : IDisposable
{
    protected DeviceMemory(DType dtype, long elementCount)
    {
        DType = dtype;
        ElementCount = elementCount;
    }

    public DType DType { get; }
    public long ElementCount { get; }

    public abstract void Dispose();
}
