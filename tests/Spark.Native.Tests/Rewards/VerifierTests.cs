using Spark.Native.Rewards;

namespace Spark.Native.Tests.Rewards;

public class VerifierTests
{
    [Theory]
    [InlineData("\\boxed{hello}", "hello", 1.0)]
    [InlineData("\\boxed{ hello }", " hello\n", 1.0)]
    [InlineData("\\boxed{Hello}", "hello", 0.0)]
    [InlineData("hello", "hello", 1.0)]          // no box: the whole trimmed completion
    [InlineData("  hello \n", "hello", 1.0)]
    [InlineData("the answer is hello", "hello", 0.0)]
    [InlineData("\\boxed{olleh}", "hello", 0.0)]
    public void ExactMatch(string completion, string reference, double reward) =>
        Assert.Equal(reward, new ExactMatchVerifier().Score(completion, reference).Reward);

    [Fact]
    public void ExactMatchOptions()
    {
        Assert.Equal(1.0, new ExactMatchVerifier(StringComparison.OrdinalIgnoreCase).Score("\\boxed{Hello}", "hELLO").Reward);
        var boxedOnly = new ExactMatchVerifier(source: AnswerSource.Boxed).Score("hello", "hello");
        Assert.Equal(0.0, boxedOnly.Reward);
        Assert.False(boxedOnly.HasAnswer);
        Assert.False(new ExactMatchVerifier().Score("  ", "x").HasAnswer);
    }

    [Theory]
    [InlineData("So the total is 42.", "42", 1.0, "42")]
    [InlineData("3 apples and 4 pears make 7", "7", 1.0, "7")]
    [InlineData("It is -3.5 degrees", "-3.5", 1.0, "-3.5")]
    [InlineData("x-3", "3", 1.0, "3")]                       // a minus glued to a word is not a sign
    [InlineData("about 1,234,567 people", "1234567", 1.0, "1,234,567")]
    [InlineData("roughly 6.02e23", "6.02\\times10^{23}", 1.0, "6.02e23")]
    [InlineData("it is 42.0000001", "42", 1.0, "42.0000001")] // within 1e-6 relative
    [InlineData("it is 42.001", "42", 0.0, "42.001")]
    [InlineData("1000001", "1000000", 0.0, "1000001")]       // integers are exact
    [InlineData("\\boxed{\\frac{1}{4}}", "0.25", 1.0, "\\frac{1}{4}")]
    [InlineData("\\boxed{x = 12} and 13", "12", 1.0, "x = 12")]  // the box wins over later text
    [InlineData("\\boxed{12 \\text{ apples}}", "12", 1.0, "12 \\text{ apples}")]
    [InlineData("\\boxed{about 12 apples}", "12", 1.0, "12")]
    public void Numeric(string completion, string reference, double reward, string answer)
    {
        var r = new NumericVerifier().Score(completion, reference);
        Assert.Equal(reward, r.Reward);
        Assert.Equal(answer, r.Answer);
    }

    [Fact]
    public void NumericEdgeCases()
    {
        Assert.False(new NumericVerifier().Score("no digits at all", "1").HasAnswer);
        Assert.False(new NumericVerifier(source: AnswerSource.Boxed).Score("the answer is 1", "1").HasAnswer);
        var noNumber = new NumericVerifier().Score("\\boxed{many}", "1");
        Assert.Equal((0.0, "many"), (noNumber.Reward, noNumber.Answer));
        Assert.Equal(1.0, new NumericVerifier(1e-2).Score("3.14", "3.14159").Reward);
        Assert.Equal(0.0, new NumericVerifier(0).Score("42.0000001", "42").Reward);
        var e = Assert.Throws<SparkException>(() => new NumericVerifier().Score("1", "forty-two"));
        Assert.Contains("'forty-two' is not a number", e.Message);
    }

    [Theory]
    [InlineData("\\boxed{B}", "B", 1.0)]
    [InlineData("\\boxed{b}", "B", 1.0)]
    [InlineData("\\boxed{(B)}", "b", 1.0)]
    [InlineData("\\boxed{\\text{B}}", "(B)", 1.0)]
    [InlineData("\\boxed{\\textbf{(C)}}", "C", 1.0)]
    [InlineData("\\boxed{C. 42}", "C", 1.0)]
    [InlineData("\\boxed{(C) 42}", "C", 1.0)]
    [InlineData("$\\boxed{D}$.", "D", 1.0)]
    [InlineData("\\box{A}", "A", 1.0)]
    [InlineData("\\boxed{A}", "B", 0.0)]
    [InlineData("\\boxed{Bob}", "B", 0.0)]
    [InlineData("\\boxed{42}", "B", 0.0)]
    [InlineData("The answer is B", "B", 0.0)]
    [InlineData("\\boxed{A} no, \\boxed{B}", "B", 1.0)]
    public void Choice(string completion, string reference, double reward) =>
        Assert.Equal(reward, new ChoiceVerifier().Score(completion, reference).Reward);

    [Theory]
    [InlineData("\\boxed{Yes}", "Yes", 1.0)]
    [InlineData("\\boxed{yes}", "YES", 1.0)]
    [InlineData("\\boxed{\\text{No}}", "no", 1.0)]
    [InlineData("\\boxed{No.}", "No", 1.0)]
    [InlineData("\\boxed{Yes!}", "Yes", 1.0)]
    [InlineData("\\box{No}", "No", 1.0)]
    [InlineData("\\boxed{No}", "Yes", 0.0)]
    [InlineData("\\boxed{Yes, it is}", "Yes", 0.0)]
    [InlineData("\\boxed{Yesno}", "Yes", 0.0)]
    [InlineData("Yes", "Yes", 0.0)]
    [InlineData("\\boxed{A}", "A", 1.0)]          // the A = correct / B = incorrect and pairwise variants
    [InlineData("\\boxed{(b)}", "B", 1.0)]
    [InlineData("\\boxed{A}", "B", 0.0)]
    [InlineData("\\boxed{Yes}", "A", 0.0)]
    public void Verdict(string completion, string reference, double reward) =>
        Assert.Equal(reward, new VerdictVerifier().Score(completion, reference).Reward);

    [Theory]
    [InlineData("maybe")]
    [InlineData("")]
    [InlineData("42")]
    public void BadLabelsAreUserErrors(string reference)
    {
        Assert.Throws<SparkException>(() => new VerdictVerifier().Score("\\boxed{Yes}", reference));
        Assert.Throws<SparkException>(() => new ChoiceVerifier().Score("\\boxed{A}", reference));
    }

    [Theory]
    [InlineData("reasoning ... so \\boxed{42}", 1.0)]
    [InlineData("reasoning ... so $\\boxed{42}$.", 1.0)]
    [InlineData("reasoning ... no box", 0.0)]
    [InlineData("\\boxed{1} and \\boxed{2}", 0.0)]
    [InlineData("\\boxed{}", 0.0)]
    [InlineData("\\boxed{42", 0.0)]
    [InlineData("\\boxed{\\boxed{42}}", 1.0)]
    public void Format(string completion, double reward) => Assert.Equal(reward, new FormatReward().Score(completion, "").Reward);

    [Fact]
    public void FormatWantsTheBoxNearTheEnd()
    {
        string tail = " " + new string('x', 101);
        Assert.Equal(0.0, new FormatReward().Score("\\boxed{42}" + tail, "").Reward);
        Assert.Equal(1.0, new FormatReward(200).Score("\\boxed{42}" + tail, "").Reward);
        Assert.Throws<SparkException>(() => new FormatReward(-1));
    }

    [Fact]
    public void WeightedIsTheNormalizedWeightedMean()
    {
        var v = new WeightedVerifier((new MathVerifier(), 0.9), (new FormatReward(), 0.1));
        Assert.Equal(1.0, v.Score("\\boxed{42}", "42").Reward, 12);
        Assert.Equal(0.1, v.Score("\\boxed{41}", "42").Reward, 12);
        Assert.Equal(0.9, v.Score("\\boxed{0} \\boxed{42}", "42").Reward, 12);
        var none = v.Score("42", "42");
        Assert.Equal(0.0, none.Reward);
        Assert.False(none.HasAnswer);
        Assert.Contains("MathVerifier 0", none.Reason);
        Assert.Equal(0.5, new WeightedVerifier((new MathVerifier(), 3), (new FormatReward(), 3)).Score("\\boxed{1}", "2").Reward, 12);
    }

    [Fact]
    public void WeightedRejectsBadWeights()
    {
        Assert.Throws<SparkException>(() => new WeightedVerifier());
        Assert.Throws<SparkException>(() => new WeightedVerifier((new MathVerifier(), -1)));
        Assert.Throws<SparkException>(() => new WeightedVerifier((new MathVerifier(), double.NaN)));
        Assert.Throws<SparkException>(() => new WeightedVerifier((new MathVerifier(), 0)));
    }

    [Theory]
    [InlineData(" 150", "150", 1.0)]            // exact
    [InlineData(" 151", "150", 0.5 * 3 / 4)]    // sign, hundreds, tens agree; units differ
    [InlineData(" 147", "150", 0.5 * 2 / 4)]    // sign and hundreds
    [InlineData(" 50", "150", 0.5 * 3 / 4)]     // a missing digit disagrees
    [InlineData(" -150", "150", 0.5 * 3 / 4)]   // wrong sign
    [InlineData("\\boxed{-53}", "-53", 1.0)]    // a box wins
    [InlineData("x = 7, so \\boxed{12}", "12", 1.0)]
    [InlineData(" 0042", "42", 1.0)]            // leading zeros are the same integer
    [InlineData(" 1,000", "1000", 1.0)]         // thousands separators
    [InlineData(" 12.5", "12", 0.0)]            // not an integer
    [InlineData(" none", "12", 0.0)]
    public void DigitsGivesPartialCredit(string completion, string reference, double reward) =>
        Assert.Equal(reward, new DigitsVerifier().Score(completion, reference).Reward, 1e-12);

    [Fact]
    public void DigitsRejectsBadSettingsAndReferences()
    {
        Assert.Throws<SparkException>(() => new DigitsVerifier(1.0));
        Assert.Contains("not an integer", Assert.Throws<SparkException>(() => new DigitsVerifier().Score("1", "1.5")).Message, StringComparison.Ordinal);
        // a wrong answer never reaches the reward of the right one
        Assert.True(new DigitsVerifier(0.9).Score(" 99999", "99998").Reward < 1);
    }

    [Fact]
    public void ByName()
    {
        foreach (string name in Verifiers.Names) Assert.NotNull(Verifiers.Create(name));
        Assert.IsType<VerdictVerifier>(Verifiers.Create("verdict"));
        var e = Assert.Throws<SparkException>(() => Verifiers.Create("maths"));
        Assert.Contains("math, exact", e.Message);
    }

    [Fact]
    public void ResultCarriesTheExtractedAnswer()
    {
        var r = new MathVerifier().Score("... \\boxed{\\frac{1}{2}}", "0.5");
        Assert.Equal(new VerifierResult(1, "\\frac{1}{2}", "equivalent to the reference"), r);
        Assert.True(r.HasAnswer);
        var wrong = new MathVerifier().Score("... \\boxed{3}", "0.5");
        Assert.Equal((0.0, "3", true), (wrong.Reward, wrong.Answer, wrong.HasAnswer));
    }
}
