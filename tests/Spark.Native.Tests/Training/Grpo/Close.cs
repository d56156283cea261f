namespace Spark.Native.Tests.Training.Grpo;

/// <summary>Element-wise comparison of double arrays with an absolute tolerance, naming the first index off.</summary>
internal static class Close
{
    public static void Equal(double[] expected, double[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= tolerance, $"[{i}]: {actual[i]:R}, expected {expected[i]:R} (tolerance {tolerance:E1})");
    }
}
