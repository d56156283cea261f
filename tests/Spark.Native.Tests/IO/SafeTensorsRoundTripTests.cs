using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Spark.Native.IO;

namespace Spark.Native.Tests.IO;

public class SafeTensorsRoundTripTests
{
    [Fact]
    public void F32RoundTripsIncludingScalarAndEmptyTensors()
    {
        using var dir = new TempDir();
        string path = dir.File("t.safetensors");
        float[] matrix = [1, -2.5f, float.NaN, float.PositiveInfinity, 1e-45f, float.MaxValue];
        SafeTensorsWriter.Write(path,
        [
            SafeTensorWriteEntry.FromF32("matrix", [2, 3], matrix),
            SafeTensorWriteEntry.FromF32("scalar", [], [42f]),
            SafeTensorWriteEntry.FromF32("empty", [3, 0], []),
            SafeTensorWriteEntry.FromF32("last", [1], [7f]),
        ]);

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(["matrix", "scalar", "empty", "last"], file.Tensors.Select(t => t.Name));
        Assert.Equal(matrix, file.ReadF32("matrix"));
        Assert.Equal([42f], file.ReadF32("scalar"));
        Assert.Empty(file.ReadF32("empty"));
        Assert.Equal([7f], file.ReadF32("last"));

        var scalar = file["scalar"];
        Assert.Equal((DType.F32, 1L, 24L, 28L), (scalar.DType, scalar.ElementCount, scalar.Begin, scalar.End));
        Assert.Empty(scalar.Shape);
        var empty = file["empty"];
        Assert.Equal([3L, 0L], empty.Shape);
        Assert.Equal((0L, 28L, 28L), (empty.ElementCount, empty.Begin, empty.End));
        Assert.Equal(24, file.GetBytes("matrix").Length);
        Assert.True(file.TryGet("last", out var last) && last.End == 32);
        Assert.False(file.TryGet("missing", out _));
    }

    [Fact]
    public void BF16AndF16StoreRoundedValuesAndReadBackExactly()
    {
        using var dir = new TempDir();
        string path = dir.File("half.safetensors");
        float[] values = [0f, -0f, 1f, 1.00390625f, 3.14159265f, 65504f, 65520f, 1e-7f, 6e-8f, -1e30f, float.NaN, float.NegativeInfinity];
        SafeTensorsWriter.Write(path,
        [
            SafeTensorWriteEntry.FromF32("b", [values.Length], values, DType.BF16),
            SafeTensorWriteEntry.FromF32("h", [3, 4], values, DType.F16),
        ]);

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(DType.BF16, file["b"].DType);
        Assert.Equal(DType.F16, file["h"].DType);
        var b = file.ReadF32("b");
        var h = file.ReadF32("h");
        for (int i = 0; i < values.Length; i++)
        {
            Assert.Equal(BitConverter.UInt32BitsToSingle((uint)NumericConversionsTests.ReferenceBF16(values[i]) << 16), b[i]);
            Assert.Equal((float)(Half)values[i], h[i]);
        }
        Assert.Equal(float.PositiveInfinity, h[6]);
    }

    [Fact]
    public void I64RoundTrips()
    {
        using var dir = new TempDir();
        string path = dir.File("ids.safetensors");
        long[] ids = [0, 1, -1, long.MaxValue, long.MinValue, 151643];
        SafeTensorsWriter.Write(path, [SafeTensorWriteEntry.FromI64("ids", [2, 3], ids), SafeTensorWriteEntry.FromI64("n", [], [5])]);

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(ids, file.ReadI64("ids"));
        Assert.Equal([5L], file.ReadI64("n"));
        Assert.Equal([5f], file.ReadF32("n"));
    }

    [Fact]
    public void HeaderIsPaddedToEightBytesAndCarriesFormatPt()
    {
        using var dir = new TempDir();
        string path = dir.File("meta.safetensors");
        SafeTensorsWriter.Write(path, [SafeTensorWriteEntry.FromF32("x", [3], [1, 2, 3])], new Dictionary<string, string> { ["step"] = "17", ["note"] = "π" });

        byte[] raw = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(raw);
        Assert.Equal(0, n % 8);
        Assert.Equal(8 + n + 12, raw.Length);
        string header = Encoding.UTF8.GetString(raw, 8, (int)n);
        Assert.Equal(header.TrimEnd(' '), header.TrimEnd());
        using var json = JsonDocument.Parse(header);
        var metadata = json.RootElement.GetProperty("__metadata__");
        Assert.Equal("pt", metadata.GetProperty("format").GetString());
        Assert.Equal("π", metadata.GetProperty("note").GetString());

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(new Dictionary<string, string> { ["format"] = "pt", ["step"] = "17", ["note"] = "π" }, file.Metadata);
    }

    [Fact]
    public void WriteReplacesAnExistingFileAndLeavesNoTemporaryFiles()
    {
        using var dir = new TempDir();
        string path = dir.File("w.safetensors");
        SafeTensorsWriter.Write(path, [SafeTensorWriteEntry.FromF32("a", [1], [1f])]);
        SafeTensorsWriter.Write(path, [SafeTensorWriteEntry.FromF32("b", [2], [2f, 3f])]);

        Assert.Equal([path], Directory.GetFiles(dir.Path));
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(["b"], file.Tensors.Select(t => t.Name));
    }

    [Fact]
    public void WriteRejectsBadEntriesAndLeavesNothingBehind()
    {
        using var dir = new TempDir();
        string path = dir.File("bad.safetensors");
        var size = Assert.Throws<ArgumentException>(() =>
            SafeTensorsWriter.Write(path, [new SafeTensorWriteEntry("w", DType.F32, [2, 3], new byte[20])]));
        Assert.Contains("'w'", size.Message);
        Assert.Contains("24", size.Message);
        Assert.Contains("20", size.Message);
        var twice = Assert.Throws<ArgumentException>(() =>
            SafeTensorsWriter.Write(path, [SafeTensorWriteEntry.FromF32("a", [1], [1f]), SafeTensorWriteEntry.FromF32("a", [1], [1f])]));
        Assert.Contains("'a'", twice.Message);
        Assert.Throws<ArgumentException>(() => SafeTensorWriteEntry.FromF32("c", [4], [1f, 2f]));
        Assert.Throws<ArgumentException>(() => SafeTensorWriteEntry.FromF32("d", [1], [1f], DType.I32));
        Assert.Throws<DirectoryNotFoundException>(() => SafeTensorsWriter.Write(dir.File("no/such/x.safetensors"), []));
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public void ReadF32ConvertsLargeTensorsInChunks()
    {
        using var dir = new TempDir();
        string path = dir.File("big.safetensors");
        var values = new float[3_000_001];
        for (int i = 0; i < values.Length; i++) values[i] = i % 1000 - 500.5f;
        SafeTensorsWriter.Write(path, [SafeTensorWriteEntry.FromF32("b", [values.Length], values, DType.BF16)]);

        using var file = SafeTensorsFile.Open(path);
        var read = file.ReadF32("b");
        for (int i = 0; i < values.Length; i++)
            Assert.Equal(BitConverter.UInt32BitsToSingle((uint)NumericConversionsTests.ReferenceBF16(values[i]) << 16), read[i]);
        Assert.Throws<ArgumentException>(() => file.ReadF32("b", new float[10]));
    }

    [Fact]
    public void ReadsUnalignedData()
    {
        using var dir = new TempDir();
        string path = dir.File("unaligned.safetensors");
        string header = """{"b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"d":{"dtype":"F64","shape":[1],"data_offsets":[4,12]},"i":{"dtype":"I64","shape":[1],"data_offsets":[12,20]},"f":{"dtype":"F32","shape":[1],"data_offsets":[20,24]}}""";
        if (header.Length % 2 == 0) header += " ";
        var data = new byte[24];
        BinaryPrimitives.WriteUInt16LittleEndian(data, 0x3F80);
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(2), 0xC040);
        BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(4), 0.25);
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(12), -3);
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(20), 1.5f);
        Raw.Write(path, header, data);

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal([1f, -3f], file.ReadF32("b"));
        Assert.Equal([0.25f], file.ReadF32("d"));
        Assert.Equal([-3L], file.ReadI64("i"));
        Assert.Equal([1.5f], file.ReadF32("f"));
        Assert.Throws<NotSupportedException>(() => file.ReadI64("f"));
    }

    [Fact]
    public void TensorsOver2GiBAreRefusedAsSpansWithAClearMessage()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "needs sparse files");
        using var dir = new TempDir();
        string path = dir.File("huge.safetensors");
        const long size = 1L << 31;
        Raw.Write(path, $"{{\"huge\":{{\"dtype\":\"U8\",\"shape\":[{size}],\"data_offsets\":[0,{size}]}}}}", [], extraLength: size);

        using var file = SafeTensorsFile.Open(path);
        var bytes = Assert.Throws<NotSupportedException>(() => file.GetBytes("huge"));
        Assert.Contains("'huge'", bytes.Message);
        Assert.Contains(size.ToString(), bytes.Message);
        Assert.Throws<NotSupportedException>(() => file.ReadI64("huge"));
    }

    [Fact]
    public void MissingTensorNamesFileAndTensor()
    {
        using var dir = new TempDir();
        string path = dir.File("m.safetensors");
        SafeTensorsWriter.Write(path, [SafeTensorWriteEntry.FromF32("x", [1], [1f])]);
        var file = SafeTensorsFile.Open(path);
        var e = Assert.Throws<KeyNotFoundException>(() => file["nope"]);
        Assert.Contains(path, e.Message);
        Assert.Contains("'nope'", e.Message);
        file.Dispose();
        Assert.Throws<ObjectDisposedException>(() => file.ReadF32("x"));
    }
}
