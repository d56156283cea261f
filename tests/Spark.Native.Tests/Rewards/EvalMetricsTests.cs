using Spark.Native.Generation;
using Spark.Native.Rewards;
using Spark.Native.Rewards.Tasks;

namespace Spark.Native.Tests.Rewards;

public class EvalMetricsTests
{
    [Theory]
    [InlineData(5, 2, 2, 0.7)]          // 1 − C(3,2)/C(5,2) = 1 − 3/10
    [InlineData(10, 3, 1, 0.3)]         // pass@1 = c/n
    [InlineData(10, 3, 2, 1 - 21.0 / 45)] // 1 − C(7,2)/C(10,2)
    [InlineData(4, 0, 3, 0.0)]          // no correct sample
    [InlineData(4, 3, 2, 1.0)]          // n − c < k: every pair holds a correct one
    [InlineData(4, 4, 4, 1.0)]
    [InlineData(1, 1, 1, 1.0)]
    [InlineData(1, 0, 1, 0.0)]
    public void PassAtKMatchesHandComputedValues(int n, int c, int k, double expected) =>
        Assert.Equal(expected, EvalMetrics.PassAtK(n, c, k), 12);

    [Fact]
    public void PassAtKEqualsTheShareOfKSubsetsHoldingACorrectSample()
    {
        for (int n = 1; n <= 8; n++)
            for (int c = 0; c <= n; c++)
                for (int k = 1; k <= n; k++)
                {
                    // samples 0 … c−1 are the correct ones; enumerate every k-subset as a bit mask
                    int subsets = 0, hit = 0;
                    for (int mask = 0; mask < 1 << n; mask++)
                    {
                        if (System.Numerics.BitOperations.PopCount((uint)mask) != k) continue;
                        subsets++;
                        if ((mask & ((1 << c) - 1)) != 0) hit++;
                    }
                    Assert.Equal((double)hit / subsets, EvalMetrics.PassAtK(n, c, k), 12);
                }
    }

    [Fact]
    public void PassAtKIsStableForLargeN()
    {
        // 1 − C(n−c, k)/C(n, k) via log-gamma; the binomials themselves overflow a double
        static double Reference(int n, int c, int k) =>
            1 - Math.Exp(LogChoose(n - c, k) - LogChoose(n, k));
        static double LogChoose(int a, int b)
        {
            double s = 0;
            for (int i = 1; i <= b; i++) s += Math.Log(a - b + i) - Math.Log(i);
            return s;
        }
        Assert.Equal(Reference(2000, 700, 300), EvalMetrics.PassAtK(2000, 700, 300), 12);
        Assert.Equal(Reference(1000, 1, 10), EvalMetrics.PassAtK(1000, 1, 10), 12);
        Assert.Equal(0.01, EvalMetrics.PassAtK(1000, 1, 10), 12); // one correct of n: k/n
    }

    [Theory]
    [InlineData(0, 0, 1)]
    [InlineData(3, 4, 1)]
    [InlineData(3, -1, 1)]
    [InlineData(3, 1, 0)]
    [InlineData(3, 1, 4)]
    public void PassAtKRejectsOutOfRangeArguments(int n, int c, int k) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => EvalMetrics.PassAtK(n, c, k));

    [Fact]
    public void MajorityVoteTakesTheMostCommonNormalizedAnswer()
    {
        var (winner, correct) = EvalMetrics.MajorityVote(["7", "1, 2", "$1,2$", "7 ", " 1,2"], [true, false, false, true, false]);
        Assert.Equal(1, winner); // "1,2" has three votes, "7" two
        Assert.False(correct);
    }

    [Fact]
    public void MajorityVoteTiesGoToTheAnswerFirstSeen()
    {
        Assert.Equal((0, true), EvalMetrics.MajorityVote(["a", "b", "b", "a"], [true, false, false, true]));
        Assert.Equal((1, false), EvalMetrics.MajorityVote(["c", "b", "a", "a", "b"], [true, false, true, true, false]));
        Assert.Equal((0, false), EvalMetrics.MajorityVote(["A", "a"], [false, true])); // ordinal: case matters
    }

    [Fact]
    public void SamplesWithoutAnAnswerDoNotVote()
    {
        Assert.Equal((2, true), EvalMetrics.MajorityVote([null, null, "x"], [false, false, true]));
        Assert.Equal((-1, false), EvalMetrics.MajorityVote([null, null], [false, false]));
        Assert.Equal((-1, false), EvalMetrics.MajorityVote([], []));
        Assert.Throws<ArgumentException>(() => EvalMetrics.MajorityVote(["x"], []));
    }

    [Fact]
    public void AccuracyAndMeanLength()
    {
        Assert.Equal(0.5, EvalMetrics.Accuracy([true, false, true, false]));
        Assert.Equal(0, EvalMetrics.Accuracy([]));
        Assert.Equal(2.5, EvalMetrics.MeanLength([1, 2, 3, 4]));
        Assert.Equal(0, EvalMetrics.MeanLength([]));
    }

    private static RolloutSample Sample(string text) => new(0, 0, [1], [0f], RolloutFinishReason.Eos, false, null, text);

    [Fact]
    public void EvalScorerDispatchesOnTheProblemsVerifierName()
    {
        var score = EvalScorers.ByVerifierName();
        var math = new RlProblem("m", "1/2?", "0.5");
        Assert.Equal(1, score(math, Sample(@"so \boxed{\frac{1}{2}}")).Reward);
        Assert.Equal(@"\frac{1}{2}", score(math, Sample(@"so \boxed{\frac{1}{2}}")).Answer);
        Assert.Equal(0, score(math, Sample("no box")).Reward);

        var exact = new RlProblem("e", "say hi", "hi") { Verifier = VerifierNames.Exact };
        Assert.Equal(1, score(exact, Sample(" hi ")).Reward);

        var countdown = new CountdownTask().Generate(3, 1)[0];
        var right = score(countdown, Sample($@"\boxed{{{countdown.Answer}}}"));
        Assert.Equal(1, right.Reward);
        Assert.Equal(countdown.Answer, right.Answer);
        var wrong = score(countdown, Sample(@"\boxed{1 + 1}"));
        Assert.Equal(0, wrong.Reward);
        Assert.Equal("1 + 1", wrong.Answer);

        var unknown = new RlProblem("u", "?", "1") { Verifier = "nope" };
        var e = Assert.Throws<SparkException>(() => score(unknown, Sample("1")));
        Assert.Contains("countdown", e.Message);
        Assert.Throws<SparkException>(() => EvalScorers.Validate([math, unknown]));
        EvalScorers.Validate([math, exact, countdown]);
    }
}
