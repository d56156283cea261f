using System.Numerics;
using System.Text.RegularExpressions;
using Spark.Native.Rewards.Tasks;

namespace Spark.Native.Tests.Rewards.Tasks;

public class ArithmeticTaskTests
{
    /// <summary>An independent evaluator: first fold every '*' into its left operand, then add and subtract left to right.</summary>
    private static BigInteger Reference(string prompt)
    {
        var m = Regex.Match(prompt, @"^What is (.+)\?");
        Assert.True(m.Success, prompt);
        string[] tokens = m.Groups[1].Value.Split(' ');
        var values = new List<BigInteger> { BigInteger.Parse(tokens[0]) };
        var signs = new List<int> { 1 };
        for (int k = 1; k < tokens.Length; k += 2)
        {
            var operand = BigInteger.Parse(tokens[k + 1]);
            if (tokens[k] == "*") values[^1] *= operand;
            else { values.Add(operand); signs.Add(tokens[k] == "-" ? -1 : 1); }
        }
        return values.Select((v, i) => v * signs[i]).Aggregate(BigInteger.Zero, (a, b) => a + b);
    }

    [Fact]
    public void AnswersAreTheValueOfTheExpression()
    {
        var problems = new ArithmeticTask(new ArithmeticOptions { MinDigits = 1, MaxDigits = 18, MinOperands = 2, MaxOperands = 6 }).Generate(seed: 3, count: 500);
        foreach (var p in problems)
        {
            Assert.Equal(Reference(p.Prompt).ToString(), p.Answer);
            Assert.Equal(VerifierNames.Math, p.Verifier);
            Assert.EndsWith(@" Put your final answer in \boxed{}.", p.Prompt);
        }
        Assert.Contains(problems, p => p.Answer.StartsWith('-'));
        Assert.Contains(problems, p => p.Answer.Length > 30); // products of 18-digit numbers need more than 64 bits
    }

    [Fact]
    public void KnobsBoundDigitsOperandsAndOperators()
    {
        var task = new ArithmeticTask(new ArithmeticOptions { MinDigits = 3, MaxDigits = 4, MinOperands = 3, MaxOperands = 3, Operators = ArithmeticOperators.Multiply, PromptSuffix = "" });
        foreach (var p in task.Generate(seed: 9, count: 200))
        {
            string[] tokens = Regex.Match(p.Prompt, @"^What is (.+)\?$").Groups[1].Value.Split(' ');
            Assert.Equal(5, tokens.Length);
            Assert.All(tokens.Where((_, i) => i % 2 == 0), t => Assert.InRange(t.Length, 3, 4));
            Assert.All(tokens.Where((_, i) => i % 2 == 0), t => Assert.NotEqual('0', t[0]));
            Assert.All(tokens.Where((_, i) => i % 2 == 1), t => Assert.Equal("*", t));
        }
    }

    [Fact]
    public void GenerationIsDeterministicAndPrefixStable()
    {
        var task = new ArithmeticTask();
        var ten = task.Generate(seed: 42, count: 10);
        Assert.Equal(ten.Select(p => p.Prompt), task.Generate(seed: 42, count: 10).Select(p => p.Prompt));
        Assert.Equal(ten.Select(p => p.Prompt), task.Generate(seed: 42, count: 20).Take(10).Select(p => p.Prompt));
        Assert.NotEqual(ten.Select(p => p.Prompt), task.Generate(seed: 43, count: 10).Select(p => p.Prompt));
        Assert.Equal("arithmetic/42/3", ten[3].Id);
    }

    [Fact]
    public void VerifyReadsTheBoxOrTheLastLine()
    {
        var task = new ArithmeticTask();
        var p = new RlProblem("x", "What is 1000 + 234?", "1234");
        Assert.Equal(1, task.Verify(@"Adding gives \boxed{1234}.", p));
        Assert.Equal(1, task.Verify(@"\boxed{1,234}", p));
        Assert.Equal(1, task.Verify(@"\boxed{ 1\,234 }", p));
        Assert.Equal(1, task.Verify(@"first \boxed{12} then \boxed{$1234$}", p));
        Assert.Equal(0, task.Verify(@"\boxed{1234} then \boxed{12}", p));
        Assert.Equal(0, task.Verify(@"\boxed{1234.5}", p));
        Assert.Equal(0, task.Verify(@"\boxed{x = 1234}", p));
        Assert.Equal(1, task.Verify("1000 + 234\n= 1234", p));
        Assert.Equal(0, task.Verify("1234\nso not sure", p));
        Assert.Equal(0, task.Verify("", p));
        Assert.Equal(0, task.Verify("truncated \\boxed{1234\n1234", p)); // an unclosed box gets no fallback
        var negative = new RlProblem("y", "What is 5 - 12?", "-7");
        Assert.Equal(1, task.Verify(@"\boxed{-7}", negative));
        Assert.Equal(1, task.Verify("5 - 12 = \u22127", negative));
        Assert.Equal(0, task.Verify(@"\boxed{7}", negative));
    }

    [Fact]
    public void GeneratedProblemsVerifyTheirOwnBoxedAnswer()
    {
        var task = new ArithmeticTask();
        foreach (var p in task.Generate(seed: 1, count: 100))
        {
            Assert.Equal(1, task.Verify($@"\boxed{{{p.Answer}}}", p));
            Assert.Equal(0, task.Verify($@"\boxed{{{BigInteger.Parse(p.Answer) + 1}}}", p));
        }
    }

    [Fact]
    public void BadOptionsAreRejected()
    {
        Assert.Throws<SparkException>(() => new ArithmeticTask(new ArithmeticOptions { MinDigits = 0 }));
        Assert.Throws<SparkException>(() => new ArithmeticTask(new ArithmeticOptions { MaxDigits = 19 }));
        Assert.Throws<SparkException>(() => new ArithmeticTask(new ArithmeticOptions { MinDigits = 4, MaxDigits = 3 }));
        Assert.Throws<SparkException>(() => new ArithmeticTask(new ArithmeticOptions { MinOperands = 1 }));
        Assert.Throws<SparkException>(() => new ArithmeticTask(new ArithmeticOptions { Operators = 0 }));
    }
}
