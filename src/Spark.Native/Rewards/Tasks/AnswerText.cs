namespace Spark.Native.Rewards.Tasks;

/// <summary>Pulls a final answer out of a completion, in time linear in its length.</summary>
internal static class AnswerText
{
    /// <summary>
    /// The content of the last \boxed{…} (or \box{…}) with balanced braces; null when there is none or the last one
    /// is not closed (a truncated completion). Only the last opening is tried, so the scan is linear.
    /// </summary>
    public static string? LastBoxed(string text)
    {
        int boxed = text.LastIndexOf(@"\boxed{", StringComparison.Ordinal);
        int box = text.LastIndexOf(@"\box{", StringComparison.Ordinal);
        int start = boxed >= box ? (boxed < 0 ? -1 : boxed + 7) : box + 5;
        if (start < 0) return null;
        int depth = 1;
        for (int i = start; i < text.Length; i++)
        {
            if (text[i] == '{') depth++;
            else if (text[i] == '}' && --depth == 0) return text[start..i];
        }
        return null;
    }

    /// <summary>The last line that is not blank, trimmed; "" when there is none.</summary>
    public static string LastLine(string text)
    {
        var span = text.AsSpan().TrimEnd();
        int newline = span.LastIndexOfAny('\n', '\r');
        return span[(newline + 1)..].Trim().ToString();
    }
}
