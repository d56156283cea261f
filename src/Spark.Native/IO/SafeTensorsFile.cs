using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Unicode;
using Microsoft.Win32.SafeHandles;

namespace Spark.Native.IO;

/// <summary>
/// A read-only, memory-mapped safetensors file: 8-byte little-endian header length N, N bytes of JSON header,
/// then the data buffer. <see cref="Open"/> validates the whole header; tensor bytes are read only when asked for.
/// Reads may run concurrently; spans from <see cref="GetBytes"/> are valid until <see cref="Dispose"/>.
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    private const ulong MaxHeaderLength = 100_000_000;
    private const int ChunkElements = 1 << 20;

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly SafeMemoryMappedViewHandle _handle;
    private readonly byte* _data;
    private readonly Dictionary<string, SafeTensorInfo> _byName;
    private bool _disposed;

    private SafeTensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* data,
        List<SafeTensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        _map = map;
        _view = view;
        _handle = view.SafeMemoryMappedViewHandle;
        _data = data;
        Tensors = tensors.AsReadOnly();
        Metadata = metadata.AsReadOnly();
        _byName = tensors.ToDictionary(t => t.Name);
    }

    /// <summary>Full path of the file.</summary>
    public string Path { get; }

    /// <summary>The <c>__metadata__</c> map of the header (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>All tensors in the order their bytes appear in the data buffer.</summary>
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }

    /// <summary>The tensor called <paramref name="name"/>; throws <see cref="KeyNotFoundException"/> naming the file and tensor.</summary>
    public SafeTensorInfo this[string name] =>
        _byName.TryGetValue(name, out var info) ? info
        : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'");

    /// <summary>Looks up the tensor called <paramref name="name"/>.</summary>
    public bool TryGet(string name, out SafeTensorInfo info) => _byName.TryGetValue(name, out info!);

    /// <summary>
    /// Maps and validates <paramref name="path"/>. Throws <see cref="SafeTensorsException"/> (message starting with
    /// the path) for a malformed file: short file, header too large or past the end, invalid UTF-8 or JSON,
    /// bad entries, unknown dtypes, gaps or overlaps between tensors, sizes not matching shape × dtype, trailing bytes.
    /// </summary>
    public static SafeTensorsFile Open(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long fileLength = stream.Length;
        MemoryMappedFile map;
        try
        {
            if (fileLength < 8)
                throw new SafeTensorsException(path, $"file is {fileLength} bytes, too short for the 8-byte header length");
            map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
        MemoryMappedViewAccessor? view = null;
        byte* p = null;
        try
        {
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            byte* file = p + view.PointerOffset;
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(file, 8));
            if (headerLength > MaxHeaderLength)
                throw new SafeTensorsException(path, $"header too large: {headerLength} bytes (limit {MaxHeaderLength})");
            if (8 + (long)headerLength > fileLength)
                throw new SafeTensorsException(path, $"header length {headerLength} points past the end of the file (size {fileLength})");
            var header = new ReadOnlySpan<byte>(file + 8, (int)headerLength);
            long bufferLength = fileLength - 8 - (long)headerLength;
            var (tensors, metadata) = ParseHeader(path, header, bufferLength);
            return new SafeTensorsFile(path, map, view, file + 8 + (long)headerLength, tensors, metadata);
        }
        catch
        {
            if (p != null) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The raw little-endian bytes of tensor <paramref name="name"/>, straight from the mapping (no copy, any alignment).
    /// Tensors over 2 GiB do not fit a span: read those with <see cref="ReadF32(string, Span{float})"/>.
    /// </summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var t = this[name];
        long length = t.End - t.Begin;
        if (length > int.MaxValue)
            throw new NotSupportedException(
                $"{Path}: tensor '{name}' has {length} bytes, more than a span can hold (2 GiB); use ReadF32(name, Span<float>), which converts in chunks");
        return new ReadOnlySpan<byte>(DataAt(t.Begin), (int)length);
    }

    /// <summary>
    /// Converts tensor <paramref name="name"/> (F32, BF16, F16, F64, I64 or I32) into <paramref name="dst"/>, whose length
    /// must equal the element count. BF16/F16/F32 are exact; the rest round to nearest. Works for tensors of any byte size.
    /// </summary>
    public void ReadF32(string name, Span<float> dst)
    {
        var t = this[name];
        if (!NumericConversions.CanReadF32(t.DType))
            throw new NotSupportedException($"{Path}: tensor '{name}' is {DTypes.Name(t.DType)}; ReadF32 reads F32, BF16, F16, F64, I64 and I32");
        Read(t, dst, NumericConversions.ToF32);
    }

    /// <summary>Tensor <paramref name="name"/> converted to a new F32 array (see <see cref="ReadF32(string, Span{float})"/>).</summary>
    public float[] ReadF32(string name)
    {
        var dst = new float[CheckedArrayLength(this[name])];
        ReadF32(name, dst);
        return dst;
    }

    /// <summary>
    /// F64 (or F32) tensor <paramref name="name"/> as a new F64 array; both conversions are exact. Reference data in
    /// float64 (e.g. the GRPO golden cases) is read with this.
    /// </summary>
    public double[] ReadF64(string name)
    {
        var t = this[name];
        if (t.DType is not (DType.F64 or DType.F32))
            throw new NotSupportedException($"{Path}: tensor '{name}' is {DTypes.Name(t.DType)}; ReadF64 reads F64 and F32");
        var dst = new double[CheckedArrayLength(t)];
        Read(t, dst.AsSpan(), static (dtype, src, d) =>
        {
            for (int i = 0; i < d.Length; i++)
                d[i] = dtype == DType.F64 ? BinaryPrimitives.ReadDoubleLittleEndian(src[(8 * i)..]) : BinaryPrimitives.ReadSingleLittleEndian(src[(4 * i)..]);
        });
        return dst;
    }

    /// <summary>Integer (or BOOL) tensor <paramref name="name"/> widened to a new I64 array; U64 is not accepted.</summary>
    public long[] ReadI64(string name)
    {
        var t = this[name];
        if (!NumericConversions.CanReadI64(t.DType))
            throw new NotSupportedException($"{Path}: tensor '{name}' is {DTypes.Name(t.DType)}; ReadI64 reads I64, I32, U32, I16, U16, I8, U8 and BOOL");
        var dst = new long[CheckedArrayLength(t)];
        Read(t, dst.AsSpan(), NumericConversions.ToI64);
        return dst;
    }

    /// <summary>Releases the mapping. Spans obtained from <see cref="GetBytes"/> must not be used afterwards.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _handle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }

    private delegate void Converter<T>(DType dtype, ReadOnlySpan<byte> src, Span<T> dst);

    private void Read<T>(SafeTensorInfo t, Span<T> dst, Converter<T> convert)
    {
        if (t.ElementCount != dst.Length)
            throw new ArgumentException(
                $"{Path}: tensor '{t.Name}' {SafeTensorInfo.FormatShape(t.Shape)} has {t.ElementCount} elements, the destination {dst.Length}", nameof(dst));
        int size = DTypes.SizeOf(t.DType);
        byte* src = DataAt(t.Begin);
        for (int i = 0, n; i < dst.Length; i += n)
        {
            n = Math.Min(ChunkElements, dst.Length - i);
            convert(t.DType, new ReadOnlySpan<byte>(src + (long)i * size, n * size), dst.Slice(i, n));
        }
    }

    private byte* DataAt(long offset)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _data + offset;
    }

    private int CheckedArrayLength(SafeTensorInfo t) =>
        t.ElementCount <= Array.MaxLength ? (int)t.ElementCount
        : throw new NotSupportedException($"{Path}: tensor '{t.Name}' has {t.ElementCount} elements, more than an array can hold");

    private static (List<SafeTensorInfo>, Dictionary<string, string>) ParseHeader(string path, ReadOnlySpan<byte> header, long bufferLength)
    {
        if (!Utf8.IsValid(header))
            throw new SafeTensorsException(path, "header is not valid UTF-8");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header.ToArray()); }
        catch (JsonException e) { throw new SafeTensorsException(path, $"header is not valid JSON: {e.Message}", e); }

        var tensors = new List<SafeTensorInfo>();
        var metadata = new Dictionary<string, string>();
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsException(path, $"header is a JSON {doc.RootElement.ValueKind}, expected an object");
            var keys = new HashSet<string>();
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (!keys.Add(entry.Name))
                    throw new SafeTensorsException(path, $"header has the key '{entry.Name}' twice");
                if (entry.Name == "__metadata__") ReadMetadata(path, entry.Value, metadata);
                else tensors.Add(ReadEntry(path, entry.Name, entry.Value));
            }
        }

        var ordered = tensors.OrderBy(t => t.Begin).ThenBy(t => t.End).ToList();
        long end = 0;
        SafeTensorInfo? previous = null;
        foreach (var t in ordered)
        {
            if (t.Begin != end)
            {
                string kind = t.Begin > end ? "gap" : "overlap";
                throw new SafeTensorsException(path, previous is null
                    ? $"{kind}: the first tensor '{t.Name}' begins at {t.Begin}, not 0"
                    : $"{kind}: tensor '{previous.Name}' ends at {end} but tensor '{t.Name}' begins at {t.Begin}");
            }
            long expected;
            try { expected = checked(t.ElementCount * DTypes.SizeOf(t.DType)); }
            catch (OverflowException)
            {
                throw new SafeTensorsException(path, $"tensor '{t.Name}': shape {SafeTensorInfo.FormatShape(t.Shape)} × {DTypes.Name(t.DType)} overflows a 64-bit byte count");
            }
            if (expected != t.End - t.Begin)
                throw new SafeTensorsException(path,
                    $"tensor '{t.Name}' with shape {SafeTensorInfo.FormatShape(t.Shape)} and dtype {DTypes.Name(t.DType)} needs {expected} bytes, but data_offsets [{t.Begin}, {t.End}] span {t.End - t.Begin}");
            end = t.End;
            previous = t;
        }
        if (end != bufferLength)
        {
            string layout = $"file size {8 + header.Length + bufferLength} = 8 + header {header.Length} + data {bufferLength}";
            throw new SafeTensorsException(path, end < bufferLength
                ? $"{bufferLength - end} trailing bytes: the tensors end at data offset {end} ({layout})"
                : $"data truncated: the tensors end at data offset {end} ({layout})");
        }
        return (ordered, metadata);
    }

    private static SafeTensorInfo ReadEntry(string path, string name, JsonElement entry)
    {
        if (entry.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsException(path, $"tensor '{name}': entry is a JSON {entry.ValueKind}, expected an object with dtype, shape and data_offsets");
        if (!entry.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new SafeTensorsException(path, $"tensor '{name}': \"dtype\" is missing or not a string");
        string dtypeName = dtypeElement.GetString()!;
        if (!DTypes.TryParse(dtypeName, out var dtype))
            throw new SafeTensorsException(path, $"tensor '{name}' has unsupported dtype \"{dtypeName}\" (supported: {string.Join(", ", Enum.GetNames<DType>())})");
        long[] shape = ReadNonNegativeIntegers(path, name, entry, "shape");
        long[] offsets = ReadNonNegativeIntegers(path, name, entry, "data_offsets");
        if (offsets.Length != 2)
            throw new SafeTensorsException(path, $"tensor '{name}': \"data_offsets\" has {offsets.Length} numbers, expected [begin, end]");
        if (offsets[0] > offsets[1])
            throw new SafeTensorsException(path, $"tensor '{name}': data_offsets [{offsets[0]}, {offsets[1]}] begin after they end");
        return new SafeTensorInfo(name, dtype, shape, offsets[0], offsets[1]);
    }

    private static long[] ReadNonNegativeIntegers(string path, string name, JsonElement entry, string key)
    {
        if (!entry.TryGetProperty(key, out var array) || array.ValueKind != JsonValueKind.Array)
            throw new SafeTensorsException(path, $"tensor '{name}': \"{key}\" is missing or not an array");
        var values = new long[array.GetArrayLength()];
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out values[i]) || values[i] < 0)
                throw new SafeTensorsException(path, $"tensor '{name}': \"{key}\"[{i}] is {item.GetRawText()}, expected a non-negative integer");
            i++;
        }
        return values;
    }

    private static void ReadMetadata(string path, JsonElement element, Dictionary<string, string> metadata)
    {
        if (element.ValueKind == JsonValueKind.Null) return;
        if (element.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsException(path, $"__metadata__ is a JSON {element.ValueKind}, expected an object of strings");
        foreach (var item in element.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw new SafeTensorsException(path, $"__metadata__ value for '{item.Name}' is a JSON {item.Value.ValueKind}, expected a string");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw new SafeTensorsException(path, $"__metadata__ has the key '{item.Name}' twice");
        }
    }
}

/// <summary>One tensor of a safetensors file.</summary>
/// <param name="Name">Tensor name, e.g. <c>model.norm.weight</c>.</param>
/// <param name="DType">Stored element type.</param>
/// <param name="Shape">Dimensions, row-major; empty for a scalar.</param>
/// <param name="Begin">First byte, relative to the start of the data buffer.</param>
/// <param name="End">One past the last byte, relative to the start of the data buffer.</param>
public sealed record SafeTensorInfo(string Name, DType DType, long[] Shape, long Begin, long End)
{
    /// <summary>Product of <see cref="Shape"/> (1 for a scalar, 0 when a dimension is 0).</summary>
    public long ElementCount => CountElements(Shape);

    internal static long CountElements(long[] shape)
    {
        long n = 1;
        foreach (long d in shape) n = checked(n * d);
        return n;
    }

    internal static string FormatShape(long[] shape) => $"[{string.Join(", ", shape)}]";
}
