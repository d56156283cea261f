
namespace Spark.Native.Tests;

public class SmokeTests
{
    [Fact]
    public void DTypeNamesMatchSafetensors() => Assert.Equal("BF16", DType.BF16.ToString());
}
