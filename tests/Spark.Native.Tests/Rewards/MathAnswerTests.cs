using Spark.Native.Rewards;

namespace Spark.Native.Tests.Rewards;

public class MathAnswerTests
{
    // (answer, reference, equivalent); every row is checked in both directions and through MathVerifier.
    [Theory]
    // integers, signs
    [InlineData("42", "42", true)]
    [InlineData("42", "43", false)]
    [InlineData("-7", "-7", true)]
    [InlineData("+5", "5", true)]
    [InlineData("-5", "5", false)]
    [InlineData("-0", "0", true)]
    [InlineData("0", "0.0", true)]
    [InlineData("5.0", "5", true)]
    [InlineData("1000000", "1000001", false)]
    [InlineData("1000000.5", "1000000", false)]
    // decimals and fractions
    [InlineData(".5", "0.5", true)]
    [InlineData("0.5", "\\frac{1}{2}", true)]
    [InlineData("\\dfrac{1}{2}", "\\frac12", true)]
    [InlineData("\\tfrac{3}{4}", "0.75", true)]
    [InlineData("1/2", "\\frac{1}{2}", true)]
    [InlineData("\\frac{2}{4}", "\\frac{1}{2}", true)]
    [InlineData("-\\frac{1}{2}", "\\frac{-1}{2}", true)]
    [InlineData("-1/2", "-0.5", true)]
    [InlineData("\\frac{1}{-2}", "-\\frac12", true)]
    [InlineData("\\frac{\\frac{1}{2}}{3}", "\\frac{1}{6}", true)]
    [InlineData("\\frac1{10}", "0.1", true)]
    [InlineData("\\frac{1}{2}", "\\frac{1}{3}", false)]
    // tolerance: only against a value with no finite decimal expansion
    [InlineData("\\frac{1}{3}", "0.333333", true)]
    [InlineData("1/3", "0.3333333", true)]
    [InlineData("\\frac{1}{3}", "0.3333", false)]
    [InlineData("\\frac{2}{3}", "0.666667", true)]
    [InlineData("\\frac{2}{3}", "0.67", false)]
    [InlineData("3.14", "3.1416", false)]
    [InlineData("3.14159", "3.14159", true)]
    [InlineData("0", "1e-9", false)]
    // thousands separators vs lists
    [InlineData("1,000", "1000", true)]
    [InlineData("1{,}000", "1000", true)]
    [InlineData("1\\,000", "1000", true)]
    [InlineData("12,345,678", "12345678", true)]
    [InlineData("1,234.5", "1234.5", true)]
    [InlineData("\\$1,000", "1000", true)]
    [InlineData("1, 000", "1000", false)]
    [InlineData("1,00", "100", false)]
    // scientific notation and powers
    [InlineData("1e-3", "0.001", true)]
    [InlineData("1.5E+3", "1500", true)]
    [InlineData("1.5\\times10^{3}", "1500", true)]
    [InlineData("1.5 \\cdot 10^3", "1500", true)]
    [InlineData("10^{3}", "1000", true)]
    [InlineData("10^{-2}", "0.01", true)]
    [InlineData("2^{10}", "1024", true)]
    [InlineData("3\\times4", "12", true)]
    [InlineData("1.5\\times10^{3}", "150", false)]
    [InlineData("10^{100000}", "10^{100000}", true)]
    [InlineData("10^{100000}", "10^{99999}", false)]
    // wrappers, units, percent, degrees
    [InlineData("$42$", "42", true)]
    [InlineData("42.", "42", true)]
    [InlineData("{7}", "7", true)]
    [InlineData("\\boxed{7}", "7", true)]
    [InlineData("\\text{7}", "7", true)]
    [InlineData("50\\%", "50", true)]
    [InlineData("50%", "50", true)]
    [InlineData("50\\%", "0.5", false)]
    [InlineData("90^\\circ", "90", true)]
    [InlineData("90^{\\circ}", "90", true)]
    [InlineData("45°", "45", true)]
    [InlineData("5\\text{ cm}", "5", true)]
    [InlineData("5 \\text{cm}^2", "5", true)]
    [InlineData("12\\mbox{ m}", "12", true)]
    [InlineData("5\\text{ cm}", "6", false)]
    [InlineData("\\text{Even}", "even", true)]
    [InlineData("\\textbf{odd}", "even", false)]
    [InlineData("x = 5", "5", true)]
    [InlineData("x_1=\\frac{1}{2}", "0.5", true)]
    [InlineData("x = 5", "6", false)]
    // tuples, intervals, sets
    [InlineData("(1,2)", "(1, 2)", true)]
    [InlineData("(1,2)", "(2,1)", false)]
    [InlineData("\\left( 1, \\frac{1}{2} \\right)", "(1, 0.5)", true)]
    [InlineData("(1,2,3)", "(1,2)", false)]
    [InlineData("(1,2)", "[1,2]", false)]
    [InlineData("[1,2)", "[1, 2)", true)]
    [InlineData("[1,2)", "[1,2]", false)]
    [InlineData("\\left[ 0, 1 \\right)", "[0,1)", true)]
    [InlineData("(-\\infty, 2)", "(-\\infty,2)", true)]
    [InlineData("(-\\infty, 2)", "(-\\infty, 2]", false)]
    [InlineData("\\{1,2\\}", "\\{2,1\\}", true)]
    [InlineData("\\left\\{1, 2\\right\\}", "\\{2, 1\\}", true)]
    [InlineData("\\{1,2\\}", "\\{1,3\\}", false)]
    [InlineData("1, 2", "2, 1", true)]
    [InlineData("1,2,3", "\\{3,2,1\\}", true)]
    [InlineData("1, 2", "(1,2)", true)]
    [InlineData("2, 1", "(1,2)", false)]
    [InlineData("(3)", "3", true)]
    [InlineData("((1,2),(3,4))", "((1, 2), (3, 4))", true)]
    [InlineData("((1,2),(3,4))", "((1, 2), (4, 3))", false)]
    // exact strings only: roots, constants, expressions
    [InlineData("\\sqrt{2}", "\\sqrt2", true)]
    [InlineData("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}2", true)]
    [InlineData("\\sqrt{2}", "1.41421356", false)]
    [InlineData("2\\sqrt{3}", "\\sqrt{12}", false)]
    [InlineData("\\pi", "\\pi", true)]
    [InlineData("2x+1", "2x + 1", true)]
    [InlineData("2x+1", "1+2x", false)]
    [InlineData("\\frac{1}{0}", "1", false)]
    [InlineData("\\frac{1}{0}", "\\frac{1}{0}", true)]
    [InlineData("", "0", false)]
    public void TrickyAnswers(string answer, string reference, bool equivalent)
    {
        Assert.Equal(equivalent, MathAnswer.Equivalent(answer, reference));
        Assert.Equal(equivalent, MathAnswer.Equivalent(reference, answer));
        var verifier = new MathVerifier();
        Assert.Equal(equivalent ? 1.0 : 0.0, verifier.Score($"We get the result. The answer is $\\boxed{{{answer}}}$.", reference).Reward);
        Assert.Equal(equivalent ? 1.0 : 0.0, verifier.Score($"\\boxed{{{reference}}}", answer).Reward);
    }

    [Theory]
    [InlineData("\\left( \\dfrac{1}{2}, 3 \\right)", "(\\frac{1}{2},3)")]
    [InlineData("\\text{ 5 } \\text{ cm}.", "5")]
    [InlineData("1\\,000", "1000")]
    [InlineData("\\frac12+\\sqrt3", "\\frac{1}{2}+\\sqrt{3}")]
    [InlineData("\\leftarrow", "\\leftarrow")]
    [InlineData("\\left.x\\right|", "x|")]
    [InlineData("2\\text{ and }3", "2and3")]
    public void Normalizes(string answer, string normalized) => Assert.Equal(normalized, MathAnswer.Normalize(answer));

    [Fact]
    public void ToleranceIsConfigurable()
    {
        Assert.False(MathAnswer.Equivalent("0.3333", "\\frac13"));
        Assert.True(MathAnswer.Equivalent("0.3333", "\\frac13", 1e-3));
        Assert.False(MathAnswer.Equivalent("0.333333", "\\frac13", 0));
        Assert.Equal(0.0, new MathVerifier(0).Score("\\boxed{0.333333}", "1/3").Reward);
        Assert.Throws<SparkException>(() => new MathVerifier(-1));
        Assert.Throws<SparkException>(() => MathAnswer.Equivalent("1", "1", double.NaN));
    }

    [Fact]
    public void MissingBoxScoresZeroWithNoAnswer()
    {
        var r = new MathVerifier().Score("The answer is 42.", "42");
        Assert.Equal(0.0, r.Reward);
        Assert.False(r.HasAnswer);
        Assert.False(new MathVerifier().Score("\\boxed{ }", "42").HasAnswer);
    }

    [Fact]
    public void LastBoxWins()
    {
        var r = new MathVerifier().Score("First \\boxed{41}, no wait: \\boxed{42}.", "42");
        Assert.Equal(1.0, r.Reward);
        Assert.Equal("42", r.Answer);
        Assert.Equal(0.0, new MathVerifier().Score("\\boxed{42} or maybe \\boxed{41}", "42").Reward);
    }
}
