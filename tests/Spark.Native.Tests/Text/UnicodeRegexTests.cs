using Spark.Native.Text;

namespace Spark.Native.Tests.Text;

/// <summary>The .NET regex with astral stand-ins behaves as Oniguruma on the classes real patterns use.</summary>
public class UnicodeRegexTests
{
    [Fact]
    public void Whitespace_class_is_the_unicode_white_space_set_oniguruma_uses()
    {
        // Oniguruma's \s (Unicode) = White_Space: U+0009–000D, 0020, 0085, 00A0, 1680, 2000–200A, 2028, 2029, 202F, 205F, 3000.
        var expected = new HashSet<int> { 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0x20 };
        for (int c = 0x9; c <= 0xD; c++) expected.Add(c);
        for (int c = 0x2000; c <= 0x200A; c++) expected.Add(c);
        var regex = new System.Text.RegularExpressions.Regex(@"\s", System.Text.RegularExpressions.RegexOptions.CultureInvariant);
        var actual = new HashSet<int>();
        for (int c = 0; c <= 0xFFFF; c++)
            if (c is < 0xD800 or > 0xDFFF && regex.IsMatch(((char)c).ToString())) actual.Add(c);
        Assert.Equal(expected.Order(), actual.Order());
    }

    [Fact]
    public void Astral_code_points_match_their_category()
    {
        var re = new UnicodeRegex(@"\p{L}+|\p{N}+|\p{So}+|[^\s\p{L}\p{N}]+");
        var spans = new List<(int, int)>();
        const string text = "a𝔘𝔫b 𝟙𝟚 🦙🦙 x";
        re.Matches(text, spans);
        Assert.Equal(["a𝔘𝔫b", "𝟙𝟚", "🦙🦙", "x"], spans.Select(s => text[s.Item1..s.Item2]).ToArray());
    }
}
