using Spark.Native.Rewards;

namespace Spark.Native.Tests.Rewards;

public class BoxedAnswerTests
{
    [Theory]
    [InlineData("The answer is \\boxed{42}.", "42")]
    [InlineData("\\boxed{1} then \\boxed{2}", "2")]
    [InlineData("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}")]
    [InlineData("\\box{B}", "B")]
    [InlineData("\\boxed {5}", "5")]
    [InlineData("\\boxed\n{5}", "5")]
    [InlineData("$\\boxed{ 7 }$", "7")]
    [InlineData("\\boxed{\\{1,2\\}}", "\\{1,2\\}")]
    [InlineData("\\boxed{a \\} b}", "a \\} b")]
    [InlineData("\\boxed{a \\{ b}", "a \\{ b")]
    [InlineData("\\boxed{\\boxed{1}}", "\\boxed{1}")]
    [InlineData("\\boxed{1} and then \\boxed{2", "1")]
    [InlineData("\\boxed{2 and \\boxed{3}", "3")]
    [InlineData("} } \\boxed{x}", "x")]
    [InlineData("\\boxed{{a}{b}}", "{a}{b}")]
    public void ExtractsTheLastCompleteBox(string text, string expected) => Assert.Equal(expected, BoxedAnswer.Last(text));

    [Theory]
    [InlineData("no box here")]
    [InlineData("\\boxed{}")]
    [InlineData("\\boxed{  }")]
    [InlineData("\\boxed{5")]
    [InlineData("\\boxes{5}")]
    [InlineData("\\boxedx{5}")]
    [InlineData("\\boxed 5")]
    [InlineData("\\\\boxed{5}")] // an escaped backslash, then the word "boxed"
    [InlineData("")]
    public void NoAnswer(string text) => Assert.Null(BoxedAnswer.Last(text));

    [Theory]
    [InlineData("none", 0)]
    [InlineData("\\boxed{1}", 1)]
    [InlineData("\\boxed{1} \\boxed{2}", 2)]
    [InlineData("\\boxed{\\boxed{1}}", 1)]
    [InlineData("\\boxed{1} \\boxed{\\box{2} 3}", 2)]
    [InlineData("\\boxed{1", 0)]
    public void CountsTopLevelBoxes(string text, int count) => Assert.Equal(count, BoxedAnswer.Count(text));

    [Fact]
    public void OnlyTheTailIsScanned()
    {
        string filler = new('x', BoxedAnswer.MaxScanChars);
        Assert.Equal("9", BoxedAnswer.Last(filler + filler + "\\boxed{9}"));
        Assert.Null(BoxedAnswer.Last("\\boxed{9}" + filler));
    }
}
