using Spark.Native.IO;

namespace Spark.Native.Tests.IO;

public class DTypesTests
{
    [Fact]
    public void NamesRoundTripAndSizesMatchSafetensors()
    {
        var sizes = new Dictionary<string, int>
        {
            ["BOOL"] = 1, ["U8"] = 1, ["I8"] = 1, ["I16"] = 2, ["U16"] = 2, ["F16"] = 2, ["BF16"] = 2, ["I32"] = 4,
            ["U32"] = 4, ["F32"] = 4, ["F64"] = 8, ["I64"] = 8, ["U64"] = 8, ["F8_E4M3"] = 1, ["F8_E5M2"] = 1,
        };
        Assert.Equal(sizes.Count, Enum.GetValues<DType>().Length);
        foreach (var (name, size) in sizes)
        {
            Assert.True(DTypes.TryParse(name, out var dtype), name);
            Assert.Equal(name, DTypes.Name(dtype));
            Assert.Equal(size, DTypes.SizeOf(dtype));
        }
    }

    [Theory]
    [InlineData("F8_E8M0")]
    [InlineData("F6_E2M3")]
    [InlineData("F4")]
    [InlineData("C64")]
    [InlineData("bf16")]
    [InlineData("9")]
    [InlineData("")]
    public void UnknownNamesAreRejected(string name) => Assert.False(DTypes.TryParse(name, out _));
}
