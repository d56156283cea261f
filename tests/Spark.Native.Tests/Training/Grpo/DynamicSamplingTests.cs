using Spark.Native.Training.Grpo;

namespace Spark.Native.Tests.Training.Grpo;

public class DynamicSamplingTests
{
    [Fact]
    public void KeepsOnlyGroupsWithDifferentRewards()
    {
        // groups: all correct, mixed, all wrong, mixed (non-binary)
        Assert.Equal([1, 3], DynamicSampling.KeepGroups([1, 1, 1, 0, 1, 0, 0, 0, 0, 0.5, 0.5, 0.7], 3));
        Assert.Empty(DynamicSampling.KeepGroups([1, 1, 0, 0], 2));
        Assert.Throws<SparkException>(() => DynamicSampling.KeepGroups([1, 0, 1], 2));
    }

    [Fact]
    public void FillsUntilFullAndDiscardsTheSurplus()
    {
        var fill = new DynamicSampling(targetGroups: 3, groupSize: 2, maxAttempts: 5);
        Assert.Equal([1], fill.Add([1, 1, 0, 1, 0, 0]));        // 1 of 3 informative
        Assert.False(fill.IsDone);
        Assert.Equal([0, 1], fill.Add([1, 0, 0, 1, 1, 0]));     // 3 informative, room for 2
        Assert.True(fill.IsFull);
        Assert.True(fill.IsDone);
        Assert.False(fill.IsExhausted);
        Assert.Equal((2, 3, 2), (fill.Attempts, fill.KeptGroups, fill.DroppedGroups));
        Assert.Throws<SparkException>(() => fill.Add([1, 0]));
    }

    [Fact]
    public void StopsAfterMaxAttempts()
    {
        var fill = new DynamicSampling(targetGroups: 4, groupSize: 2, maxAttempts: 3);
        int rounds = 0;
        while (!fill.IsDone)
        {
            fill.Add(rounds == 1 ? [1, 0, 1, 1] : [1, 1, 0, 0]); // only one informative group ever
            rounds++;
        }
        Assert.Equal(3, rounds);
        Assert.True(fill.IsExhausted);
        Assert.False(fill.IsFull);
        Assert.Equal(1, fill.KeptGroups);
        Assert.Throws<SparkException>(() => new DynamicSampling(4, 2, 0));
    }
}
