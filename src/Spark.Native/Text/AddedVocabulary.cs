namespace Spark.Native.Text;

/// <summary>An added token of tokenizer.json's <c>added_tokens</c>.</summary>
internal sealed record AddedToken(int Id, string Content, bool SingleWord, bool LStrip, bool RStrip, bool Normalized, bool Special);

/// <summary>
/// Finds added tokens in text as the reference does: leftmost-longest matches; a single_word token that touches a
/// word char is skipped; lstrip/rstrip extend the match over adjacent whitespace.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<char, (string Pattern, AddedToken Token)[]> _byFirstChar;

    /// <param name="tokens">the tokens with the pattern each is matched by (its content, or normalized content)</param>
    public AddedTokenMatcher(IEnumerable<(string Pattern, AddedToken Token)> tokens)
    {
        _byFirstChar = tokens.Where(t => t.Pattern.Length > 0)
            .GroupBy(t => t.Pattern[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Pattern.Length).ToArray());
    }

    public bool IsEmpty => _byFirstChar.Count == 0;

    /// <summary>Splits <paramref name="text"/> into (start, end, token) parts; token null for plain text. Empty text
    /// parts are omitted.</summary>
    public void Split(string text, List<(int Start, int End, AddedToken? Token)> output)
    {
        int startOffset = 0;
        int i = 0;
        while (i < text.Length)
        {
            if (!_byFirstChar.TryGetValue(text[i], out var candidates)) { i++; continue; }
            (string Pattern, AddedToken Token)? hit = null;
            foreach (var c in candidates)
                if (string.CompareOrdinal(text, i, c.Pattern, 0, c.Pattern.Length) == 0) { hit = c; break; }
            if (hit is null) { i++; continue; }
            var (pattern, token) = hit.Value;
            int start = i, stop = i + pattern.Length;
            if (token.SingleWord)
            {
                bool startOk = start == 0 || !IsWordChar(text, start - 1, before: true);
                bool stopOk = stop == text.Length || !IsWordChar(text, stop, before: false);
                if (!startOk || !stopOk) { i = stop; continue; }
            }
            if (token.LStrip)
            {
                int s = start;
                while (s > 0 && char.IsWhiteSpace(text[s - 1])) s--;
                start = Math.Max(s, startOffset);
            }
            if (token.RStrip)
                while (stop < text.Length && char.IsWhiteSpace(text[stop])) stop++;
            if (startOffset < start) output.Add((startOffset, start, null));
            output.Add((start, stop, token));
            startOffset = stop;
            i = stop;
        }
        if (startOffset < text.Length) output.Add((startOffset, text.Length, null));
    }

    private static bool IsWordChar(string text, int index, bool before)
    {
        int cp;
        if (before && char.IsLowSurrogate(text[index]) && index > 0 && char.IsHighSurrogate(text[index - 1]))
            cp = char.ConvertToUtf32(text[index - 1], text[index]);
        else if (!before && char.IsHighSurrogate(text[index]) && index + 1 < text.Length && char.IsLowSurrogate(text[index + 1]))
            cp = char.ConvertToUtf32(text[index], text[index + 1]);
        else cp = text[index];
        if (cp == '_') return true;
        var cat = System.Globalization.CharUnicodeInfo.GetUnicodeCategory(cp);
        return cat is System.Globalization.UnicodeCategory.UppercaseLetter or System.Globalization.UnicodeCategory.LowercaseLetter
            or System.Globalization.UnicodeCategory.TitlecaseLetter or System.Globalization.UnicodeCategory.ModifierLetter
            or System.Globalization.UnicodeCategory.OtherLetter or System.Globalization.UnicodeCategory.DecimalDigitNumber
            or System.Globalization.UnicodeCategory.LetterNumber or System.Globalization.UnicodeCategory.OtherNumber
            or System.Globalization.UnicodeCategory.NonSpacingMark or System.Globalization.UnicodeCategory.SpacingCombiningMark
            or System.Globalization.UnicodeCategory.EnclosingMark or System.Globalization.UnicodeCategory.ConnectorPunctuation;
    }
}
