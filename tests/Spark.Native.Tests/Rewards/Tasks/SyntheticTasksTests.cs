using Spark.Native.Rewards.Tasks;

namespace Spark.Native.Tests.Rewards.Tasks;

public class SyntheticTasksTests
{
    [Fact]
    public void RegistryFindsTheTasksAndListsThemOnAnUnknownName()
    {
        Assert.Equal(["arithmetic", "countdown"], SyntheticTasks.Names);
        Assert.IsType<ArithmeticTask>(SyntheticTasks.Get("arithmetic"));
        Assert.Equal("countdown", SyntheticTasks.Get("countdown").Name);
        var e = Assert.Throws<SparkException>(() => SyntheticTasks.Get("gsm8k"));
        Assert.Equal("unknown synthetic task 'gsm8k'; valid tasks: arithmetic, countdown", e.Message);
    }

    [Theory]
    [InlineData("arithmetic")]
    [InlineData("countdown")]
    public void SplitsAreDeterministicSizedAndShareNoPrompt(string name)
    {
        var task = SyntheticTasks.Get(name);
        var split = SyntheticTasks.Split(task, seed: 7, trainCount: 1000, testCount: 200);
        Assert.Equal((1000, 200), (split.Train.Count, split.Test.Count));
        Assert.Empty(split.Train.Select(p => p.Prompt).Intersect(split.Test.Select(p => p.Prompt)));
        Assert.Empty(split.Train.Select(p => p.Id).Intersect(split.Test.Select(p => p.Id)));
        var again = SyntheticTasks.Split(task, seed: 7, trainCount: 1000, testCount: 200);
        Assert.Equal(split.Train.Select(p => p.Prompt), again.Train.Select(p => p.Prompt));
        Assert.Equal(split.Test.Select(p => p.Prompt), again.Test.Select(p => p.Prompt));
        Assert.NotEqual(split.Test.Select(p => p.Prompt), SyntheticTasks.Split(task, seed: 8, 10, 200).Test.Select(p => p.Prompt));
    }

    [Fact]
    public void ASmallProblemSpaceStillGivesDisjointSplitsByDroppingCollisions()
    {
        // 1-digit a + b: only 100 prompts, so many train draws collide with the test set and are replaced
        var task = new ArithmeticTask(new ArithmeticOptions { MinDigits = 1, MaxDigits = 1, MinOperands = 2, MaxOperands = 2, Operators = ArithmeticOperators.Add });
        var split = SyntheticTasks.Split(task, seed: 1, trainCount: 300, testCount: 60);
        Assert.Equal(300, split.Train.Count);
        Assert.Empty(split.Train.Select(p => p.Prompt).Intersect(split.Test.Select(p => p.Prompt)));
    }

    [Fact]
    public void AnExhaustedProblemSpaceIsAnError()
    {
        var task = new ArithmeticTask(new ArithmeticOptions { MinDigits = 1, MaxDigits = 1, MinOperands = 2, MaxOperands = 2, Operators = ArithmeticOperators.Add });
        var e = Assert.Throws<SparkException>(() => SyntheticTasks.Split(task, seed: 1, trainCount: 1, testCount: 5000));
        Assert.Contains("found only 0 of 1 train problems", e.Message);
    }
}
