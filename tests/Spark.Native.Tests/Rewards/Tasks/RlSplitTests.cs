using Spark.Native.Rewards.Tasks;

namespace Spark.Native.Tests.Rewards.Tasks;

public class RlSplitTests
{
    private static List<RlProblem> Problems(int n) =>
        [.. Enumerable.Range(0, n).Select(i => new RlProblem($"id{i}", $"question {i}", $"{i}"))];

    [Fact]
    public void SplitIsDeterministicDisjointCompleteAndOrderPreserving()
    {
        var problems = Problems(2000);
        var a = RlSplit.ByHash(problems, 0.2, seed: 5);
        var b = RlSplit.ByHash(problems, 0.2, seed: 5);
        Assert.Equal(a.Train, b.Train);
        Assert.Equal(a.Test, b.Test);
        Assert.Empty(a.Train.Select(p => p.Prompt).Intersect(a.Test.Select(p => p.Prompt)));
        Assert.Equal(2000, a.Train.Count + a.Test.Count);
        Assert.InRange(a.Test.Count, 330, 470); // 400 expected, binomial sd ≈ 18
        Assert.Equal(a.Test.OrderBy(p => int.Parse(p.Answer)), a.Test);
        Assert.NotEqual(a.Test, RlSplit.ByHash(problems, 0.2, seed: 6).Test);
    }

    [Fact]
    public void AProblemsSideDependsOnlyOnItsKey()
    {
        var problems = Problems(500);
        var whole = RlSplit.ByHash(problems, 0.3, seed: 1);
        var shuffled = problems.AsEnumerable().Reverse().Where((_, i) => i % 3 != 0).ToList();
        var part = RlSplit.ByHash(shuffled, 0.3, seed: 1);
        var wholeTest = whole.Test.Select(p => p.Id).ToHashSet();
        Assert.All(part.Test, p => Assert.Contains(p.Id, wholeTest));
        Assert.All(part.Train, p => Assert.DoesNotContain(p.Id, wholeTest));
    }

    [Fact]
    public void EqualPromptsLandOnTheSameSideUnderPromptKeys()
    {
        var problems = Enumerable.Range(0, 300).Select(i => new RlProblem($"id{i}", $"q{i % 50}", "1")).ToList();
        var split = RlSplit.ByHash(problems, 0.5, seed: 2);
        Assert.Empty(split.Train.Select(p => p.Prompt).Intersect(split.Test.Select(p => p.Prompt)));
        var byId = RlSplit.ByHash(problems, 0.5, seed: 2, SplitKey.Id);
        Assert.NotEmpty(byId.Train.Select(p => p.Prompt).Intersect(byId.Test.Select(p => p.Prompt)));
    }

    [Fact]
    public void FractionBoundsAndBadFractions()
    {
        var problems = Problems(100);
        Assert.Empty(RlSplit.ByHash(problems, 0).Test);
        Assert.Empty(RlSplit.ByHash(problems, 1).Train);
        Assert.Throws<SparkException>(() => RlSplit.ByHash(problems, 1.5));
        Assert.Throws<SparkException>(() => RlSplit.ByHash(problems, double.NaN));
    }

    [Fact]
    public void HashIsFnv1a64()
    {
        Assert.Equal(0xCBF29CE484222325UL, RlSplit.Fnv1a64(""));
        Assert.Equal(0xAF63DC4C8601EC8CUL, RlSplit.Fnv1a64("a")); // published FNV-1a 64 test vector
    }
}
