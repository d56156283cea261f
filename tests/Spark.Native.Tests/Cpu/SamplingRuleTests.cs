using Spark.Native.Generation;

namespace Spark.Native.Tests.Cpu;

public class SamplingRuleTests
{
    private static int Draw(float[] logits, SamplingRow row) =>
        SamplingRule.Sample(logits, row, new float[logits.Length], new int[logits.Length]);

    /// <summary>Empirical frequencies over many counters.</summary>
    private static double[] Frequencies(float[] logits, Func<ulong, SamplingRow> row, int draws = 20000)
    {
        var counts = new double[logits.Length];
        for (ulong n = 0; n < (ulong)draws; n++) counts[Draw(logits, row(n))]++;
        return counts.Select(c => c / draws).ToArray();
    }

    [Fact]
    public void SamplesFollowTheTemperatureScaledSoftmax()
    {
        float[] logits = [1f, 2f, 0f, 2.5f];
        var freq = Frequencies(logits, n => new SamplingRow(2f, 0, 1f, 17, n));
        var z = logits.Sum(l => Math.Exp(l / 2.0));
        for (int i = 0; i < 4; i++)
            Assert.InRange(freq[i], Math.Exp(logits[i] / 2.0) / z - 0.015, Math.Exp(logits[i] / 2.0) / z + 0.015);
    }

    [Fact]
    public void TopKKeepsTiesWithTheKthValue()
    {
        float[] logits = [3f, 1f, 3f, 2f, 2f, 0f];
        var freq = Frequencies(logits, n => new SamplingRow(1f, 3, 1f, 1, n), 5000);
        // k = 3: tokens 0, 2 and both tokens tied at 2.0 (3 and 4) stay; 1 and 5 never appear
        Assert.Equal(0, freq[1]);
        Assert.Equal(0, freq[5]);
        Assert.All(new[] { 0, 2, 3, 4 }, i => Assert.True(freq[i] > 0));
    }

    [Fact]
    public void TopPKeepsTheSmallestPrefixReachingP()
    {
        // probabilities 0.5, 0.3, 0.15, 0.05
        float[] logits = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.15f), MathF.Log(0.05f)];
        var freq = Frequencies(logits, n => new SamplingRow(1f, 0, 0.75f, 3, n));
        // 0.5 + 0.3 reaches 0.75: only tokens 0 and 1, renormalised to 0.625 / 0.375
        Assert.Equal(0, freq[2]);
        Assert.Equal(0, freq[3]);
        Assert.InRange(freq[0], 0.6, 0.65);
        var tiny = Frequencies(logits, n => new SamplingRow(1f, 0, 0.01f, 3, n), 200);
        Assert.Equal(1.0, tiny[0]); // at least one token is always kept
    }

    [Fact]
    public void CounterRngIsUniformAndSeedSensitive()
    {
        var u = Enumerable.Range(0, 100000).Select(i => CounterRng.Uniform(5, (ulong)i)).ToArray();
        Assert.InRange(u.Average(), 0.495, 0.505);
        Assert.All(u, x => Assert.InRange(x, 0.0, 0.9999999999));
        Assert.NotEqual(CounterRng.Next(5, 0), CounterRng.Next(6, 0));
        Assert.Equal(CounterRng.Next(5, 3), CounterRng.Next(5, 3));
    }

    [Fact]
    public void NaNLogitsAreRefused() =>
        Assert.Throws<InvalidOperationException>(() => Draw([1f, float.NaN], new SamplingRow(1f, 0, 1f, 0, 0)));
}
