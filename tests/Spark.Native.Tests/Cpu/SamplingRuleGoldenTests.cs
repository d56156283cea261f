using Spark.Native.Generation;

namespace Spark.Native.Tests.Cpu;

/// <summary>
/// Pins <see cref="SamplingRule.Sample"/>'s tokens to the values it drew before <see cref="SamplingRow.Uniform"/> was
/// introduced (the GPU sampler draws the same uniform), so the CPU rule stays bit for bit what it was.
/// </summary>
public class SamplingRuleGoldenTests
{
    // recorded with the rule as of commit 7e576d6 (CounterRng.Uniform called inline)
    private static readonly int[] Golden =
    [
        489, 489, 489, 489, 489, 489, 489, 489, 1980, 580, 678, 1047, 214, 1488, 1699, 1686, 489, 1686, 1980, 1958, 1167, 607,
        1301, 678, 489, 489, 489, 1980, 1980, 1980, 1980, 489, 489, 1847, 678, 515, 1783, 1301, 748, 1686, 1980, 1847, 678, 1580,
        1720, 237, 118, 1686, 489, 1686, 1980, 1146, 1272, 124, 748, 678, 1980, 580, 678, 123, 1565, 1720, 1112, 1686, 489, 1980,
        489, 1847, 1847, 1847, 1847, 1980, 1980, 1847, 678, 1406, 818, 790, 790, 1686, 1980, 580, 678, 482, 1958, 473, 769, 1686,
    ];

    internal static float[] Logits(int v, uint seed)
    {
        // coarse values (multiples of 1/8 in [-12, 12)) so that many logits tie
        var x = new float[v];
        uint s = seed;
        for (int i = 0; i < v; i++)
        {
            s = s * 1664525u + 1013904223u;
            x[i] = (int)(s >> 24) / 8f - 16f + (i % 7);
        }
        return x;
    }

    internal static IEnumerable<SamplingRow> Rows()
    {
        (float T, int K, float P)[] settings =
        [
            (0f, 0, 1f), (1f, 0, 1f), (0.7f, 0, 1f), (1f, 1, 1f), (1f, 50, 1f), (1f, 0, 0.9f), (0.8f, 0, 0.95f),
            (1.3f, 50, 0.9f), (0.6f, 20, 0.5f), (2f, 0, 0.3f), (1f, 3000, 0.99f),
        ];
        foreach (var (t, k, p) in settings)
            for (ulong n = 0; n < 8; n++)
                yield return new SamplingRow(t, k, p, 0x5EED + n * 977, n);
    }

    [Fact]
    public void TokensAreUnchanged()
    {
        var logits = Logits(2000, 7);
        var probs = new float[logits.Length];
        var order = new int[logits.Length];
        var tokens = Rows().Select(row => SamplingRule.Sample(logits, row, probs, order)).ToArray();
        Assert.True(Golden.SequenceEqual(tokens), "[" + string.Join(", ", tokens) + "]");
    }

    [Fact]
    public void RowUniformIsTheCountersDraw()
    {
        foreach (var row in Rows())
            Assert.Equal(CounterRng.Uniform(row.Seed, row.Counter), row.Uniform);
    }
}
