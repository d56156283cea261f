using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Spark.Native.Rewards.Tasks;

namespace Spark.Native.Tests.Rewards.Tasks;

public class CountdownTests
{
    private static readonly int[] Given = [25, 50, 3, 7];

    [Fact]
    public void EveryGeneratedProblemIsSolvedByItsConstructingExpression()
    {
        var options = new CountdownOptions { MinNumbers = 2, MaxNumbers = 6, MaxNumber = 99, MinTarget = 10, MaxTarget = 500 };
        var task = new CountdownTask(options);
        var problems = task.Generate(seed: 11, count: 1000);
        foreach (var p in problems)
        {
            int[] numbers = JsonSerializer.Deserialize<int[]>(p.Metadata["numbers"])!;
            int target = int.Parse(p.Metadata["target"]);
            Assert.InRange(numbers.Length, 2, 6);
            Assert.All(numbers, n => Assert.InRange(n, 1, 99));
            Assert.InRange(target, 10, 500);
            Assert.Equal(CountdownVerdict.Correct, CountdownChecker.Check(p.Answer, numbers, target));
            // the construction uses every number exactly once
            Assert.Equal(numbers.Order(), Regex.Matches(p.Answer, @"\d+").Select(m => int.Parse(m.Value)).Order());
            Assert.Equal(1, task.Verify($@"So \boxed{{{p.Answer}}}", p));
            Assert.Equal(VerifierNames.Countdown, p.Verifier);
            Assert.Contains($"equals {target}.", p.Prompt);
        }
        Assert.Contains(problems, p => p.Answer.Contains('/'));
        Assert.Contains(problems, p => p.Answer.Contains('('));
    }

    [Fact]
    public void GenerationIsDeterministicAndPrefixStable()
    {
        var task = new CountdownTask();
        var a = task.Generate(seed: 5, count: 20);
        Assert.Equal(a.Select(p => p.Prompt), task.Generate(seed: 5, count: 30).Take(20).Select(p => p.Prompt));
        Assert.Equal(a.Select(p => p.Answer), task.Generate(seed: 5, count: 20).Select(p => p.Answer));
    }

    [Fact]
    public void UnreachableTargetRangeIsAnError()
    {
        var task = new CountdownTask(new CountdownOptions { MinNumbers = 2, MaxNumbers = 2, MinNumber = 1, MaxNumber = 2, MinTarget = 100, MaxTarget = 200 });
        Assert.Contains("widen the target range", Assert.Throws<SparkException>(() => task.Generate(1, 1)).Message);
    }

    [Fact]
    public void ReusingANumberIsRejectedUnlessItIsGivenTwice()
    {
        Assert.Equal(CountdownVerdict.NumberNotAvailable, CountdownChecker.Check("25 * 3 + 50 + 7 - 3", Given, 129));
        Assert.Equal(CountdownVerdict.Correct, CountdownChecker.Check("25 * 3 + 50 + 7 - 3", [25, 50, 3, 7, 3], 129));
    }

    [Theory]
    [InlineData("(25 + 50) * 3 - 7", 218, CountdownVerdict.Correct)]
    [InlineData("3 * (50 + 25) - 7", 218, CountdownVerdict.Correct)]
    [InlineData("50 * 3 + 7 * 25 - 107", 218, CountdownVerdict.NumberNotAvailable)]
    [InlineData("50 + 25", 75, CountdownVerdict.Correct)] // a subset is enough
    [InlineData("((50)) + (((25)))", 75, CountdownVerdict.Correct)]
    [InlineData("50 / (7 - 3) * 25", 312, CountdownVerdict.WrongValue)] // 312.5: exact, not rounded
    [InlineData("50 / (7 - 3) * 25 * 2", 625, CountdownVerdict.NumberNotAvailable)]
    [InlineData("(50 / (3 - 25 / 7))", 0, CountdownVerdict.WrongValue)] // intermediate fractions are fine
    [InlineData("7 * (50 / 25 + 3)", 35, CountdownVerdict.Correct)]
    [InlineData("50 - 50", 0, CountdownVerdict.NumberNotAvailable)] // 50 is given once
    [InlineData("(25 + 50) * 3 - 7", 219, CountdownVerdict.WrongValue)]
    [InlineData("50 / (7 - 7)", 0, CountdownVerdict.NumberNotAvailable)] // the reuse is seen before the division
    [InlineData("-25 + 50", 25, CountdownVerdict.Malformed)] // no unary minus
    [InlineData("25 + -50", -25, CountdownVerdict.Malformed)]
    [InlineData("2.5 * 10", 25, CountdownVerdict.Malformed)]
    [InlineData("3(25)", 75, CountdownVerdict.Malformed)] // no implicit multiplication
    [InlineData("(25 + 50", 75, CountdownVerdict.Malformed)]
    [InlineData("25 + 50)", 75, CountdownVerdict.Malformed)]
    [InlineData("25 +", 25, CountdownVerdict.Malformed)]
    [InlineData("25 ** 3", 75, CountdownVerdict.Malformed)]
    [InlineData("25 ^ 3", 75, CountdownVerdict.Malformed)]
    [InlineData("x + 25", 25, CountdownVerdict.Malformed)]
    [InlineData("answer", 25, CountdownVerdict.Malformed)]
    [InlineData("   ", 25, CountdownVerdict.NoExpression)]
    [InlineData("99999999999999999999 - 99999999999999999974", 25, CountdownVerdict.NumberNotAvailable)]
    [InlineData(@"\left(25 + 50\right) \div 3 \times 7", 175, CountdownVerdict.Correct)]
    [InlineData(@"(25 + 50) \cdot 3 - 7", 218, CountdownVerdict.Correct)]
    [InlineData("(25 + 50) × 3 − 7", 218, CountdownVerdict.Correct)]
    [InlineData("(25 + 50) ÷ 3 · 7", 175, CountdownVerdict.Correct)]
    [InlineData("$25 + 50$", 75, CountdownVerdict.Correct)]
    public void CheckJudgesExpressions(string expression, int target, CountdownVerdict expected) =>
        Assert.Equal(expected, CountdownChecker.Check(expression, Given, target));

    [Fact]
    public void DivisionByZeroIsItsOwnVerdict()
    {
        Assert.Equal(CountdownVerdict.DivisionByZero, CountdownChecker.Check("50 / (7 - 7)", [50, 7, 7], 1));
        Assert.Equal(CountdownVerdict.DivisionByZero, CountdownChecker.Check("(3 - 3) * 7 + 50 / (7 - 7)", [3, 3, 7, 50, 7, 7], 1));
    }

    [Theory]
    [InlineData(@"Let me think... \boxed{(25 + 50) * 3 - 7}", "(25 + 50) * 3 - 7")]
    [InlineData(@"\boxed{1 + 2} no wait \boxed{(25 + 50) * 3 - 7} done", "(25 + 50) * 3 - 7")]
    [InlineData(@"\boxed{\left(25 + 50\right) \times 3}", @"\left(25 + 50\right) \times 3")]
    [InlineData("work\nmore work\nSo: (25 + 50) * 3 - 7 = 218.\n\n", "(25 + 50) * 3 - 7")]
    [InlineData("The answer is 25 × 3 + 50", "25 * 3 + 50")]
    [InlineData("(25+50)*3-7", "(25+50)*3-7")]
    [InlineData(@"truncated \boxed{(25 + 50) * 3", null)]
    [InlineData(@"\boxed{}", null)]
    [InlineData("no expression here", null)]
    [InlineData("", null)]
    public void ExtractTakesTheLastBoxOrTheLastLine(string completion, string? expected) =>
        Assert.Equal(expected, CountdownChecker.ExtractExpression(completion));

    [Fact]
    public void VerifyAcceptsAlternativeSolutionsAndRejectsWrongOnes()
    {
        var task = new CountdownTask();
        var p = new RlProblem("c", "reach 218", "(25 + 50) * 3 - 7")
        {
            Metadata = new Dictionary<string, string> { ["numbers"] = "[25, 50, 3, 7]", ["target"] = "218" },
        };
        Assert.Equal(1, task.Verify(@"\boxed{3 * (50 + 25) - 7}", p));
        Assert.Equal(1, task.Verify(@"\boxed{3 * 25 + 3 * 50 - 7}", p with { Metadata = new Dictionary<string, string> { ["numbers"] = "[25, 50, 3, 3, 7]", ["target"] = "218" } }));
        Assert.Equal(0, task.Verify(@"\boxed{3 * 25 + 3 * 50 - 7}", p)); // 3 used twice
        Assert.Equal(0, task.Verify(@"\boxed{218}", p));
        Assert.Equal(0, task.Verify(@"\boxed{(25 + 50) * 3 - 7 + 0}", p));
        Assert.Equal(0, task.Verify("I give up", p));
        Assert.Throws<SparkException>(() => task.Verify("x", p with { Metadata = new Dictionary<string, string> { ["target"] = "1" } }));
        Assert.Throws<SparkException>(() => task.Verify("x", p with { Metadata = new Dictionary<string, string> { ["numbers"] = "[1, \"a\"]", ["target"] = "1" } }));
        Assert.Throws<SparkException>(() => task.Verify("x", p with { Metadata = new Dictionary<string, string> { ["numbers"] = "[1]", ["target"] = "one" } }));
    }

    [Fact]
    public void PathologicalInputsAreRejectedQuickly()
    {
        var watch = Stopwatch.StartNew();
        string[] completions =
        [
            new string('(', 1_000_000) + "25" + new string(')', 1_000_000),
            @"\boxed{" + new string('(', 200) + "25" + new string(')', 200) + "}",
            @"\boxed{" + string.Concat(Enumerable.Repeat("(", 40)) + "25" + string.Concat(Enumerable.Repeat(")", 40)) + "}",
            string.Concat(Enumerable.Repeat(@"\boxed{", 200_000)),
            string.Concat(Enumerable.Repeat("{", 500_000)) + @"\boxed{" + string.Concat(Enumerable.Repeat("{", 500_000)),
            @"\boxed{" + string.Concat(Enumerable.Repeat("25+", 300_000)) + "25}",
            string.Concat(Enumerable.Repeat("25+", 300_000)) + "25",
            string.Concat(Enumerable.Repeat(@"\times", 200_000)),
            new string('\n', 1_000_000),
            string.Concat(Enumerable.Repeat("9", 1_000_000)),
            "\0\uFFFF\uD800 \\boxed{\uD800}",
        ];
        foreach (string c in completions)
            Assert.NotEqual(CountdownVerdict.Correct, CountdownChecker.CheckCompletion(c, Given, 25));
        Assert.Equal(CountdownVerdict.Malformed, CountdownChecker.Check(new string('(', 33) + "25" + new string(')', 33), Given, 25));
        Assert.Equal(CountdownVerdict.Correct, CountdownChecker.Check(new string('(', 32) + "25" + new string(')', 32), Given, 25));
        Assert.Equal(CountdownVerdict.TooLong, CountdownChecker.Check("25" + string.Concat(Enumerable.Repeat(" + 25", 60)), Given, 25));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
    }
}
