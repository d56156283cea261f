using System.Text;
using Spark.Native.IO;

namespace Spark.Native.Tests.IO;

public class SafeTensorsRejectionTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _path;

    public SafeTensorsRejectionTests() => _path = _dir.File("model.safetensors");

    public void Dispose() => _dir.Dispose();

    private void AssertRejected(params string[] fragments)
    {
        var e = Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(_path));
        Assert.StartsWith(_path + ": ", e.Message);
        Assert.Equal(_path, e.FilePath);
        Assert.DoesNotContain('\n', e.Message);
        foreach (string fragment in fragments) Assert.Contains(fragment, e.Message);
    }

    private static string Entry(string name, string dtype, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    [Fact]
    public void FileShorterThanEightBytes()
    {
        File.WriteAllBytes(_path, [1, 0, 0, 0, 0]);
        AssertRejected("5 bytes");
    }

    [Fact]
    public void HeaderLengthPastTheEnd()
    {
        Raw.Write(_path, "{}", new byte[110], headerLength: 200);
        AssertRejected("header length 200", "size 120");
    }

    [Fact]
    public void HeaderTooLarge()
    {
        Raw.Write(_path, "{}", [], headerLength: 100_000_001);
        AssertRejected("header too large", "100000001");
    }

    [Fact]
    public void HeaderNotUtf8()
    {
        Raw.Write(_path, [.. "{\"a\":\""u8, 0xFF, 0xFE, .. "\"}"u8], []);
        AssertRejected("UTF-8");
    }

    [Theory]
    [InlineData("{\"a\": ")]
    [InlineData("{\"a\": 1,}")]
    [InlineData("")]
    public void HeaderNotJson(string header)
    {
        Raw.Write(_path, header, []);
        AssertRejected("not valid JSON");
    }

    [Fact]
    public void HeaderNotAnObject()
    {
        Raw.Write(_path, "[1, 2]", []);
        AssertRejected("Array", "object");
    }

    [Fact]
    public void SurroundingWhitespaceIsAccepted()
    {
        Raw.Write(_path, " \n\t{" + Entry("a", "F32", "[2]", 0, 8) + "}\r\n   ", new byte[8]);
        using var file = SafeTensorsFile.Open(_path);
        Assert.Equal(2, file.ReadF32("a").Length);
    }

    [Fact]
    public void OverlappingOffsets()
    {
        Raw.Write(_path, "{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 4, 12) + "}", new byte[12]);
        AssertRejected("overlap", "'a'", "'b'", "8", "4");
    }

    [Fact]
    public void GapBetweenTensors()
    {
        Raw.Write(_path, "{" + Entry("b", "F32", "[2]", 12, 20) + "," + Entry("a", "F32", "[2]", 0, 8) + "}", new byte[20]);
        AssertRejected("gap", "'a'", "'b'", "8", "12");
    }

    [Fact]
    public void GapBeforeFirstTensor()
    {
        Raw.Write(_path, "{" + Entry("a", "F32", "[2]", 4, 12) + "}", new byte[12]);
        AssertRejected("gap", "'a'", "4");
    }

    [Fact]
    public void SizeNotMatchingShapeTimesDType()
    {
        Raw.Write(_path, "{" + Entry("w", "BF16", "[2, 3]", 0, 8) + "}", new byte[8]);
        AssertRejected("'w'", "[2, 3]", "BF16", "12", "8");
    }

    [Fact]
    public void ShapeOverflowingSixtyFourBits()
    {
        Raw.Write(_path, "{" + Entry("w", "F32", "[4294967296, 4294967296]", 0, 8) + "}", new byte[8]);
        AssertRejected("'w'", "overflows");
    }

    [Fact]
    public void TrailingBytes()
    {
        Raw.Write(_path, "{" + Entry("a", "F32", "[2]", 0, 8) + "}", new byte[10]);
        AssertRejected("2 trailing bytes", "8", "10");
    }

    [Fact]
    public void TruncatedData()
    {
        Raw.Write(_path, "{" + Entry("a", "F32", "[2]", 0, 8) + "}", new byte[5]);
        AssertRejected("truncated", "8", "5");
    }

    [Theory]
    [InlineData("F8_E8M0")]
    [InlineData("X9")]
    [InlineData("F4")]
    [InlineData("C64")]
    [InlineData("bf16")]
    public void UnknownDType(string dtype)
    {
        Raw.Write(_path, "{" + Entry("w", dtype, "[1]", 0, 1) + "}", new byte[1]);
        AssertRejected("'w'", $"\"{dtype}\"");
    }

    [Theory]
    [InlineData("""{"w":{"shape":[1],"data_offsets":[0,4]}}""", "dtype")]
    [InlineData("""{"w":{"dtype":7,"shape":[1],"data_offsets":[0,4]}}""", "dtype")]
    [InlineData("""{"w":{"dtype":"F32","data_offsets":[0,4]}}""", "shape")]
    [InlineData("""{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", "-1")]
    [InlineData("""{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}""", "1.5")]
    [InlineData("""{"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}""", "shape")]
    [InlineData("""{"w":{"dtype":"F32","shape":[1]}}""", "data_offsets")]
    [InlineData("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}""", "data_offsets")]
    [InlineData("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}""", "[4, 0]")]
    [InlineData("""{"w":[1]}""", "Array")]
    [InlineData("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "twice")]
    public void MalformedEntry(string header, string fragment)
    {
        Raw.Write(_path, header, new byte[4]);
        AssertRejected("'w'", fragment);
    }

    [Theory]
    [InlineData("""{"__metadata__":{"format":"pt","step":3}}""", "'step'")]
    [InlineData("""{"__metadata__":["pt"]}""", "Array")]
    public void MetadataNotStringToString(string header, string fragment)
    {
        Raw.Write(_path, header, []);
        AssertRejected("__metadata__", fragment);
    }

    [Fact]
    public void EmptyHeaderObjectIsAValidEmptyFile()
    {
        Raw.Write(_path, Encoding.UTF8.GetBytes("{}      "), []);
        using var file = SafeTensorsFile.Open(_path);
        Assert.Empty(file.Tensors);
        Assert.Empty(file.Metadata);
    }
}
