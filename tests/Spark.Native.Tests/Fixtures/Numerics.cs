namespace Spark.Native.Tests.Fixtures;

internal static class Numerics
{
    /// <summary>‖a − b‖ / ‖b‖ (the golden README's relative error).</summary>
    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff = 0, norm = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            Assert.False(float.IsNaN(actual[i]), $"NaN at index {i}");
            double d = actual[i] - expected[i];
            diff += d * d;
            norm += expected[i] * expected[i];
        }
        return Math.Sqrt(diff / Math.Max(norm, 1e-300));
    }

    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected) =>
        RelativeError(actual, expected.ToArray().Select(x => (double)x).ToArray());

    public static float[] RandomFloats(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }
}
