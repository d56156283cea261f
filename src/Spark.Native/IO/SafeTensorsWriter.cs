using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Spark.Native.IO;

/// <summary>Writes safetensors files atomically.</summary>
public static class SafeTensorsWriter
{
    /// <summary>
    /// Writes <paramref name="tensors"/> to <paramref name="path"/>, laid out in the order given with no gaps.
    /// The header carries <c>"__metadata__": {"format": "pt", ...metadata}</c> (a user "format" key replaces "pt")
    /// and is padded with spaces to a multiple of 8 bytes, so the data buffer is 8-byte aligned.
    /// The file is written to <c>path + ".tmp-*"</c> in the same folder, flushed to disk, then moved over
    /// <paramref name="path"/>; on failure the temporary file is deleted and <paramref name="path"/> is untouched.
    /// Throws <see cref="ArgumentException"/> for a duplicate or reserved name, a negative dimension, or data whose
    /// length is not shape × dtype size.
    /// </summary>
    public static void Write(string path, IEnumerable<SafeTensorWriteEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var entries = tensors.ToList();
        WriteStreaming(path, entries.Select(e => new SafeTensorHeaderEntry(e.Name, e.DType, e.Shape)).ToList(), i => entries[i].Data, metadata);
    }

    /// <summary>
    /// As <see cref="Write"/>, but the data of tensor i is asked for (<paramref name="dataOf"/>(i)) only when it is
    /// written, in order, so at most one tensor's bytes need to be in memory. Each must be exactly shape × dtype size.
    /// </summary>
    internal static void WriteStreaming(string path, IReadOnlyList<SafeTensorHeaderEntry> tensors, Func<int, ReadOnlyMemory<byte>> dataOf,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        byte[] header = BuildHeader(tensors, metadata ?? new Dictionary<string, string>());
        AtomicFile.Write(path, stream =>
        {
            Span<byte> prefix = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
            stream.Write(prefix);
            stream.Write(header);
            for (int i = 0; i < tensors.Count; i++)
            {
                var data = dataOf(i);
                var t = tensors[i];
                SafeTensorWriteEntry.CheckLength(t.Name, t.DType, t.Shape, data.Length);
                stream.Write(data.Span);
            }
        });
    }

    private static byte[] BuildHeader(IReadOnlyList<SafeTensorHeaderEntry> entries, IReadOnlyDictionary<string, string> metadata)
    {
        var names = new HashSet<string>();
        foreach (var e in entries)
        {
            if (e.Name.Length == 0 || e.Name == "__metadata__")
                throw new ArgumentException($"'{e.Name}' is not a valid tensor name", nameof(entries));
            if (!names.Add(e.Name))
                throw new ArgumentException($"tensor '{e.Name}' appears twice", nameof(entries));
            // an invalid shape (ByteLength -1) fails CheckLength against any length; 0 gives its message
            SafeTensorWriteEntry.CheckLength(e.Name, e.DType, e.Shape, Math.Max(0, e.ByteLength));
        }

        var json = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(json, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteStartObject("__metadata__");
            w.WriteString("format", metadata.GetValueOrDefault("format", "pt"));
            foreach (var (key, value) in metadata)
            {
                if (value is null) throw new ArgumentException($"__metadata__ value of '{key}' is null; safetensors metadata values are strings", nameof(metadata));
                if (key != "format") w.WriteString(key, value);
            }
            w.WriteEndObject();
            long offset = 0;
            foreach (var e in entries)
            {
                w.WriteStartObject(e.Name);
                w.WriteString("dtype", DTypes.Name(e.DType));
                w.WriteStartArray("shape");
                foreach (long d in e.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                offset += e.ByteLength;
                w.WriteNumberValue(offset);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        if (json.WrittenCount > 100_000_000)
            throw new ArgumentException($"the header would be {json.WrittenCount} bytes; readers refuse headers over 100,000,000 bytes", nameof(entries));
        var header = new byte[(json.WrittenCount + 7) & ~7];
        json.WrittenSpan.CopyTo(header);
        header.AsSpan(json.WrittenCount).Fill((byte)' ');
        return header;
    }
}

/// <summary>Name, dtype and shape of a tensor to write, without its data.</summary>
internal sealed record SafeTensorHeaderEntry(string Name, DType DType, long[] Shape)
{
    /// <summary>Element count × dtype size, or -1 when the shape is invalid (negative or overflowing).</summary>
    public long ByteLength
    {
        get
        {
            if (Array.Exists(Shape, d => d < 0)) return -1;
            try { return checked(SafeTensorInfo.CountElements(Shape) * DTypes.SizeOf(DType)); }
            catch (OverflowException) { return -1; }
        }
    }
}

/// <summary>One tensor to write: little-endian, row-major <paramref name="Data"/> of <c>Shape</c> elements of <c>DType</c>.</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="DType">Stored element type.</param>
/// <param name="Shape">Dimensions, row-major; empty for a scalar.</param>
/// <param name="Data">Exactly element count × <see cref="DTypes.SizeOf"/> bytes.</param>
public sealed record SafeTensorWriteEntry(string Name, DType DType, long[] Shape, ReadOnlyMemory<byte> Data)
{
    /// <summary>
    /// An entry for F32 <paramref name="data"/>, stored as F32 (not copied: leave the array unchanged until written),
    /// or converted now to BF16 / F16 with round-to-nearest-even.
    /// </summary>
    public static SafeTensorWriteEntry FromF32(string name, long[] shape, float[] data, DType storeAs = DType.F32)
    {
        if (storeAs is not (DType.F32 or DType.BF16 or DType.F16))
            throw new ArgumentException($"tensor '{name}': F32 data can be stored as F32, BF16 or F16, not {DTypes.Name(storeAs)}", nameof(storeAs));
        CheckLength(name, storeAs, shape, (long)data.Length * DTypes.SizeOf(storeAs));
        if (storeAs == DType.F32) return new(name, storeAs, shape, new ArrayBytes<float>(data).Memory);
        var bytes = new byte[data.Length * DTypes.SizeOf(storeAs)];
        NumericConversions.FromF32(storeAs, data, bytes);
        return new(name, storeAs, shape, bytes);
    }

    /// <summary>An I64 entry over <paramref name="data"/> (not copied: leave the array unchanged until written).</summary>
    public static SafeTensorWriteEntry FromI64(string name, long[] shape, long[] data)
    {
        CheckLength(name, DType.I64, shape, (long)data.Length * sizeof(long));
        return new(name, DType.I64, shape, new ArrayBytes<long>(data).Memory);
    }

    internal static void CheckLength(string name, DType dtype, long[] shape, long byteLength)
    {
        if (Array.Exists(shape, d => d < 0))
            throw new ArgumentException($"tensor '{name}': shape {SafeTensorInfo.FormatShape(shape)} has a negative dimension", nameof(shape));
        long expected;
        try { expected = checked(SafeTensorInfo.CountElements(shape) * DTypes.SizeOf(dtype)); }
        catch (OverflowException) { expected = -1; }
        if (expected != byteLength)
            throw new ArgumentException(
                $"tensor '{name}': shape {SafeTensorInfo.FormatShape(shape)} of {DTypes.Name(dtype)} needs {(expected < 0 ? "more than 2^63" : expected)} bytes, the data has {byteLength}");
        if (byteLength > int.MaxValue)
            throw new ArgumentException($"tensor '{name}': {byteLength} bytes is more than one write entry can hold (2 GiB)");
    }

    private sealed unsafe class ArrayBytes<T>(T[] array) : MemoryManager<byte> where T : unmanaged
    {
        public override Span<byte> GetSpan() => MemoryMarshal.AsBytes(array.AsSpan());

        public override MemoryHandle Pin(int elementIndex = 0)
        {
            var handle = GCHandle.Alloc(array, GCHandleType.Pinned);
            return new MemoryHandle((byte*)handle.AddrOfPinnedObject() + elementIndex, handle, this);
        }

        public override void Unpin() { }

        protected override void Dispose(bool disposing) { }
    }
}
