using Spark.Native.Backends;

namespace Spark.Native.Tensors;

/// <summary>
/// A dense, row-major tensor in one backend's memory: either the owner of an allocation or a view into one.
/// Views (<see cref="Rows"/>, <see cref="Reshape"/>) share the owner's memory and must not outlive it.
/// </summary>
internal sealed class Tensor : IDisposable
{
    private readonly bool _ownsMemory;

    internal Tensor(IBackend backend, DeviceMemory memory, long offset, int[] shape, bool ownsMemory)
    {
        long length = ShapeLength(shape);
        if (offset < 0 || offset + length > memory.ElementCount)
            throw new ArgumentOutOfRangeException(nameof(offset), $"view [{offset}, {offset + length}) is outside its memory of {memory.ElementCount} elements");
        Backend = backend;
        Memory = memory;
        Offset = offset;
        Shape = shape;
        Length = length;
        _ownsMemory = ownsMemory;
    }

    public IBackend Backend { get; }
    public DeviceMemory Memory { get; }
    public DType DType => Memory.DType;
    /// <summary>Offset into <see cref="Memory"/>, in elements.</summary>
    public long Offset { get; }
    public int[] Shape { get; }
    public long Length { get; }
    public int Rank => Shape.Length;

    /// <summary>Size of the leading dimension.</summary>
    public int RowCount => Shape.Length == 0 ? 1 : Shape[0];

    /// <summary>Elements per leading-dimension row.</summary>
    public int RowLength => Shape.Length == 0 ? 1 : checked((int)(Length / Math.Max(1, Shape[0])));

    /// <summary>A view of rows [start, start + count) of the leading dimension.</summary>
    public Tensor Rows(int start, int count)
    {
        if (Shape.Length == 0 || start < 0 || count < 0 || start + count > Shape[0])
            throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start}, {start + count}) of a tensor of shape {ShapeString(Shape)}");
        var shape = (int[])Shape.Clone();
        shape[0] = count;
        return new Tensor(Backend, Memory, Offset + (long)start * RowLength, shape, ownsMemory: false);
    }

    /// <summary>A view with another shape of the same element count.</summary>
    public Tensor Reshape(params int[] shape)
    {
        if (ShapeLength(shape) != Length)
            throw new ArgumentException($"cannot view shape {ShapeString(Shape)} as {ShapeString(shape)}");
        return new Tensor(Backend, Memory, Offset, shape, ownsMemory: false);
    }

    public void Dispose()
    {
        if (_ownsMemory) Memory.Dispose();
    }

    public override string ToString() => $"{DType}{ShapeString(Shape)} on {Backend.Name}";

    public static long ShapeLength(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape {ShapeString(shape)}");
            n = checked(n * d);
        }
        return n;
    }

    public static string ShapeString(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";
}
