namespace Spark.Native.Rewards;

/// <summary>
/// Finds <c>\boxed{...}</c> (or <c>\box{...}</c>, with optional white space before the brace) answers in a completion
/// with one linear scan: braces are balanced, escaped braces <c>\{ \}</c> and the escaped backslash <c>\\</c> do not
/// count, an unclosed box is ignored. Only the last <see cref="MaxScanChars"/> characters of a text are read, so
/// a box that starts before them is not seen.
/// </summary>
public static class BoxedAnswer
{
    /// <summary>How many characters, counted from the end of a text, are scanned (16 Ki).</summary>
    public const int MaxScanChars = 16 * 1024;

    /// <summary>
    /// The trimmed content of the last complete box (the one whose closing brace comes last: for
    /// <c>\boxed{\boxed{1}}</c> the outer one), or null when there is none or its content is blank.
    /// </summary>
    public static string? Last(string text)
    {
        var boxes = Find(text, out int offset);
        if (boxes.Count == 0) return null;
        var last = boxes[^1];
        string content = text.Substring(offset + last.ContentStart, last.ContentEnd - last.ContentStart).Trim();
        return content.Length == 0 ? null : content;
    }

    /// <summary>The number of complete boxes that are not inside another box.</summary>
    public static int Count(string text) => TopLevel(Find(text, out _)).Count;

    /// <summary>Complete top-level boxes in text order, positions relative to the scanned window.</summary>
    internal static List<BoxSpan> TopLevel(List<BoxSpan> byEnd)
    {
        // Boxes are nested or disjoint; walking back from the last-closing one, a box that starts after the
        // start of the latest kept box lies inside it.
        var kept = new List<BoxSpan>();
        int keptStart = int.MaxValue;
        for (int i = byEnd.Count - 1; i >= 0; i--)
        {
            if (byEnd[i].Start > keptStart) continue;
            kept.Add(byEnd[i]);
            keptStart = byEnd[i].Start;
        }
        kept.Reverse();
        return kept;
    }

    /// <summary>
    /// All complete boxes in the last <see cref="MaxScanChars"/> characters, ordered by closing brace;
    /// <paramref name="offset"/> is where the scanned window starts in <paramref name="text"/>.
    /// </summary>
    internal static List<BoxSpan> Find(string text, out int offset)
    {
        offset = Math.Max(0, text.Length - MaxScanChars);
        var s = text.AsSpan(offset);
        var found = new List<BoxSpan>();
        var open = new Stack<(int Brace, int BoxStart)>(); // BoxStart -1: a plain group
        int i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (c == '\\')
            {
                if (i + 1 < s.Length && !char.IsAsciiLetter(s[i + 1])) { i += 2; continue; } // \{ \} \\ and friends
                int start = i++;
                while (i < s.Length && char.IsAsciiLetter(s[i])) i++;
                var name = s[(start + 1)..i];
                if (name is "boxed" or "box")
                {
                    int j = i;
                    while (j < s.Length && char.IsWhiteSpace(s[j])) j++;
                    if (j < s.Length && s[j] == '{') { open.Push((j, start)); i = j + 1; }
                }
                continue;
            }
            if (c == '{') open.Push((i, -1));
            else if (c == '}' && open.Count > 0)
            {
                var (brace, boxStart) = open.Pop();
                if (boxStart >= 0) found.Add(new BoxSpan(boxStart, brace + 1, i, i + 1));
            }
            i++;
        }
        return found;
    }
}

/// <summary>One complete box: the backslash of <c>\boxed</c>, its content [ContentStart, ContentEnd), and the index after its closing brace.</summary>
internal readonly record struct BoxSpan(int Start, int ContentStart, int ContentEnd, int End);
