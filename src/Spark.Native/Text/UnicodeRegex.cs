using System.Globalization;
using System.Text.RegularExpressions;

namespace Spark.Native.Text;

/// <summary>
/// A regex that matches by code point as Oniguruma (the reference engine) does. .NET <see cref="Regex"/> sees UTF-16
/// units, so a surrogate pair never matches <c>\p{L}</c>; before matching, every astral code point is replaced by one
/// BMP stand-in char of the same Unicode general category, and match spans are mapped back to the original string.
/// Exact for patterns built from categories, <c>\s</c>, <c>\w</c> and BMP literals (all real pre-tokenizer patterns).
/// </summary>
internal sealed class UnicodeRegex
{
    private static readonly char[] StandIns = BuildStandIns();
    private readonly Regex _regex;

    public UnicodeRegex(string pattern)
    {
        _regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled);
    }

    public string Pattern => _regex.ToString();

    /// <summary>Appends the (start, end) spans of all non-overlapping matches, leftmost first, in UTF-16 offsets of
    /// <paramref name="text"/>. Empty matches are skipped.</summary>
    public void Matches(string text, List<(int Start, int End)> output)
    {
        int firstSurrogate = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (firstSurrogate < 0)
        {
            for (Match m = _regex.Match(text); m.Success; m = m.NextMatch())
                if (m.Length > 0) output.Add((m.Index, m.Index + m.Length));
            return;
        }
        // Map: mapped index -> original index (one extra slot for the end).
        var mapped = new char[text.Length];
        var origin = new int[text.Length + 1];
        int n = 0;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            origin[n] = i;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                int cp = char.ConvertToUtf32(c, text[i + 1]);
                mapped[n++] = StandIns[(int)CharUnicodeInfo.GetUnicodeCategory(cp)];
                i++;
            }
            else mapped[n++] = c;
        }
        origin[n] = text.Length;
        string s = new(mapped, 0, n);
        for (Match m = _regex.Match(s); m.Success; m = m.NextMatch())
            if (m.Length > 0) output.Add((origin[m.Index], origin[m.Index + m.Length]));
    }

    private static char[] BuildStandIns()
    {
        // One BMP char per general category, chosen above U+00FF so that it never equals (or case-folds to) an ASCII
        // literal of a pattern; a lone surrogate stands for itself.
        var table = new char[32];
        Array.Fill(table, '\uFFFD');
        var found = new bool[32];
        for (int c = 0x100; c <= 0xFFFF; c++)
        {
            if (c is >= 0xD800 and <= 0xDFFF) continue;
            int cat = (int)CharUnicodeInfo.GetUnicodeCategory((char)c);
            if (!found[cat]) { found[cat] = true; table[cat] = (char)c; }
        }
        return table;
    }
}
