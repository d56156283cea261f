using System.Diagnostics;
using Spark.Native.Rewards;

namespace Spark.Native.Tests.Rewards;

/// <summary>Model output can be anything; every verifier must finish quickly on it.</summary>
public class PathologicalInputTests
{
    private static string Repeat(string s, int n) => string.Concat(Enumerable.Repeat(s, n));

    private static readonly string[] Inputs =
    [
        "\\boxed{" + new string('{', 100_000) + new string('}', 100_000) + "}",
        "\\boxed{" + new string('{', 8_000) + "1" + new string('}', 8_000) + "}",
        new string('7', 1_000_000),
        "\\boxed{" + new string('7', 1_000_000) + "}",
        "\\boxed{" + new string('7', 15_000) + "}",
        "\\boxed{0." + new string('3', 999) + "}",
        "\\boxed{" + Repeat("\\frac{1}{", 10_000) + "1" + new string('}', 10_000) + "}",
        "\\boxed{" + Repeat("\\frac{1}{", 1_500) + "2" + new string('}', 1_500) + "}",
        "\\boxed{" + Repeat("\\dfrac12", 2_000) + "}",
        "\\boxed{" + new string('{', 500_000),
        new string('}', 500_000),
        Repeat("\\boxed{", 100_000),
        Repeat("\\boxed{1}", 100_000),
        "\\boxed{10^{100000}}",
        "\\boxed{1e999999999}",
        "\\boxed{9^{999999}}",
        "\\boxed{2^{2^{2^{100}}}}",
        "\\boxed{(10^{1000})^{1000}}",
        "\\boxed{10^{1300}\\times10^{1300}\\times10^{1300}}",
        "\\boxed{" + new string('-', 15_000) + "1}",
        "\\boxed{" + new string('(', 7_000) + "1" + new string(')', 7_000) + "}",
        "\\boxed{\\{" + string.Join(",", Enumerable.Range(0, 255)) + "\\}}",
        "\\boxed{" + string.Join(",", Enumerable.Range(0, 5_000)) + "}",
        "\\boxed{" + Repeat("\\left(", 5_000) + "}",
        "\\boxed{" + Repeat("\\text{", 3_000) + "5" + new string('}', 3_000) + "}",
        "\\boxed{5" + Repeat("\\text{m}", 1_500) + "}",
        "\\boxed{" + Repeat("x=", 5_000) + "}",
        "\\boxed{" + Repeat("1,000", 3_000) + "}",
        "\\boxed{" + Repeat("\\\\", 8_000) + "}",
        Repeat("1.2e3 -", 100_000),
        Repeat("\\", 100_000),
    ];

    private static readonly IVerifier[] AllVerifiers =
    [
        new MathVerifier(), new ExactMatchVerifier(), new NumericVerifier(), new ChoiceVerifier(), new VerdictVerifier(), new FormatReward(),
        new WeightedVerifier((new MathVerifier(), 1), (new FormatReward(), 1)),
    ];

    private static readonly string ReversedSet = "\\{" + string.Join(",", Enumerable.Range(0, 255).Reverse()) + "\\}";

    private static void VerifyEverything(string input)
    {
        foreach (var v in AllVerifiers)
        {
            string reference = v switch { ChoiceVerifier => "A", VerdictVerifier => "Yes", NumericVerifier => "1", _ => ReversedSet };
            Assert.InRange(v.Score(input, reference).Reward, 0, 1);
        }
        if (BoxedAnswer.Last(input) is { } box)
        {
            Assert.True(MathAnswer.Equivalent(box, box) || MathAnswer.Normalize(box).Length == 0);
            MathAnswer.Equivalent(box, "\\frac{1}{3}");
            MathAnswer.Equivalent(ReversedSet, box);
        }
        MathAnswer.Equivalent(input, input);
    }

    // Linear scans over at most 16 Ki characters take about a millisecond here. The bounds are generous and each
    // input's time is the best of three runs, so a loaded machine does not make the test flaky; a quadratic or
    // exponential path would still blow through them.
    [Fact]
    public void EveryVerifierFinishesQuickly()
    {
        var total = TimeSpan.Zero;
        var slowest = (Time: TimeSpan.Zero, Index: -1);
        for (int i = 0; i < Inputs.Length; i++)
        {
            var best = TimeSpan.MaxValue;
            for (int run = 0; run < 3; run++)
            {
                var clock = Stopwatch.StartNew();
                VerifyEverything(Inputs[i]);
                if (clock.Elapsed < best) best = clock.Elapsed;
            }
            total += best;
            if (best > slowest.Time) slowest = (best, i);
        }
        Assert.True(slowest.Time < TimeSpan.FromSeconds(0.5), $"input {slowest.Index} took {slowest.Time.TotalMilliseconds:0} ms");
        Assert.True(total < TimeSpan.FromSeconds(2), $"all inputs took {total.TotalMilliseconds:0} ms");
    }

    [Fact]
    public void BoundedAnswersStillCompareCorrectly()
    {
        Assert.True(MathAnswer.Equivalent("\\{" + string.Join(",", Enumerable.Range(0, 255)) + "\\}", "\\{" + string.Join(",", Enumerable.Range(0, 255).Reverse()) + "\\}"));
        Assert.True(MathAnswer.Equivalent(Repeat("\\frac{1}{", 20) + "2" + new string('}', 20), "2"));
        Assert.True(MathAnswer.Equivalent("10^{999}", "1" + new string('0', 999)));
        Assert.False(MathAnswer.Equivalent("10^{100000}", "10^{100001}"));
        Assert.False(MathAnswer.Equivalent("9^{999999}", "1"));
        string huge = new('7', MathAnswer.MaxAnswerChars + 1);
        Assert.True(MathAnswer.Equivalent(huge, huge));
        Assert.False(MathAnswer.Equivalent(huge, huge + "7"));
    }
}
