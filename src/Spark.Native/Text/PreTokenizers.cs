namespace Spark.Native.Text;

/// <summary>A piece of text during pre-tokenization; <see cref="AtStart"/> is true when it begins at offset 0 of the
/// input (Metaspace's prepend_scheme "first" reads it).</summary>
internal readonly record struct Piece(string Text, bool AtStart);

/// <summary>How a split keeps the matched delimiters (Hugging Face <c>SplitDelimiterBehavior</c>).</summary>
internal enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

/// <summary>A pre-tokenizer: splits one piece into pieces (and may rewrite them).</summary>
internal abstract class PreTokenizer
{
    public abstract void Split(Piece piece, List<Piece> output);

    /// <summary>Splits the piece's text at the given (sorted, non-overlapping) match spans as the reference
    /// <c>NormalizedString::split</c> does; empty pieces are dropped.</summary>
    public static void SplitAt(Piece piece, List<(int Start, int End)> matches, bool invert, SplitBehavior behavior, List<Piece> output)
    {
        string text = piece.Text;
        // (start, end, isMatch) covering the whole text.
        var parts = new List<(int S, int E, bool M)>(matches.Count * 2 + 1);
        int prev = 0;
        foreach (var (s, e) in matches)
        {
            if (prev != s) parts.Add((prev, s, invert));
            parts.Add((s, e, !invert));
            prev = e;
        }
        if (prev != text.Length) parts.Add((prev, text.Length, invert));

        var spans = new List<(int S, int E)>(parts.Count);
        switch (behavior)
        {
            case SplitBehavior.Isolated:
                foreach (var p in parts) spans.Add((p.S, p.E));
                break;
            case SplitBehavior.Removed:
                foreach (var p in parts) if (!p.M) spans.Add((p.S, p.E));
                break;
            case SplitBehavior.Contiguous:
            {
                bool previous = false;
                foreach (var p in parts)
                {
                    if (p.M == previous && spans.Count > 0) spans[^1] = (spans[^1].S, p.E);
                    else spans.Add((p.S, p.E));
                    previous = p.M;
                }
                break;
            }
            case SplitBehavior.MergedWithPrevious:
            {
                bool previous = false;
                foreach (var p in parts)
                {
                    if (p.M && !previous && spans.Count > 0) spans[^1] = (spans[^1].S, p.E);
                    else spans.Add((p.S, p.E));
                    previous = p.M;
                }
                break;
            }
            case SplitBehavior.MergedWithNext:
            {
                bool previous = false;
                for (int i = parts.Count - 1; i >= 0; i--)
                {
                    var p = parts[i];
                    if (p.M && !previous && spans.Count > 0) spans[^1] = (p.S, spans[^1].E);
                    else spans.Add((p.S, p.E));
                    previous = p.M;
                }
                spans.Reverse();
                break;
            }
        }
        foreach (var (s, e) in spans)
            if (e > s) output.Add(new Piece(s == 0 && e == text.Length ? text : text[s..e], piece.AtStart && s == 0));
    }
}

/// <summary>Split by a regex (or escaped literal) with a delimiter behavior, optionally inverted.</summary>
internal sealed class SplitPreTokenizer(UnicodeRegex regex, SplitBehavior behavior, bool invert) : PreTokenizer
{
    public override void Split(Piece piece, List<Piece> output)
    {
        var matches = new List<(int, int)>();
        regex.Matches(piece.Text, matches);
        SplitAt(piece, matches, invert, behavior, output);
    }
}

/// <summary>Splits on ASCII digits: each digit alone, or runs of digits.</summary>
internal sealed class DigitsPreTokenizer(bool individualDigits) : PreTokenizer
{
    public override void Split(Piece piece, List<Piece> output)
    {
        var matches = new List<(int, int)>();
        string t = piece.Text;
        for (int i = 0; i < t.Length; i++)
            if (char.IsAsciiDigit(t[i])) matches.Add((i, i + 1));
        SplitAt(piece, matches, false, individualDigits ? SplitBehavior.Isolated : SplitBehavior.Contiguous, output);
    }
}

/// <summary>Whitespace: keeps the matches of <c>\w+|[^\w\s]+</c>.</summary>
internal sealed class WhitespacePreTokenizer : PreTokenizer
{
    private static readonly UnicodeRegex Regex = new(@"\w+|[^\w\s]+");

    public override void Split(Piece piece, List<Piece> output)
    {
        var matches = new List<(int, int)>();
        Regex.Matches(piece.Text, matches);
        SplitAt(piece, matches, true, SplitBehavior.Removed, output);
    }
}

/// <summary>WhitespaceSplit: splits on whitespace, dropping it.</summary>
internal sealed class WhitespaceSplitPreTokenizer : PreTokenizer
{
    public override void Split(Piece piece, List<Piece> output)
    {
        var matches = new List<(int, int)>();
        string t = piece.Text;
        for (int i = 0; i < t.Length; i++)
            if (char.IsWhiteSpace(t[i])) matches.Add((i, i + 1));
        SplitAt(piece, matches, false, SplitBehavior.Removed, output);
    }
}

/// <summary>ByteLevel: optional prefix space, optional GPT-2 regex split, then bytes mapped to chars.</summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizer
{
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    private static readonly UnicodeRegex Gpt2 = new(Gpt2Pattern);

    public override void Split(Piece piece, List<Piece> output)
    {
        if (addPrefixSpace && !piece.Text.StartsWith(' ')) piece = piece with { Text = " " + piece.Text };
        if (!useRegex)
        {
            output.Add(piece with { Text = ByteLevelMap.Encode(piece.Text) });
            return;
        }
        var matches = new List<(int, int)>();
        Gpt2.Matches(piece.Text, matches);
        var parts = new List<Piece>();
        SplitAt(piece, matches, false, SplitBehavior.Isolated, parts);
        foreach (var p in parts) output.Add(p with { Text = ByteLevelMap.Encode(p.Text) });
    }
}

/// <summary>Metaspace: spaces become the replacement char, a replacement is prepended per the scheme, and the text is
/// optionally split before each replacement char.</summary>
internal sealed class MetaspacePreTokenizer(char replacement, PrependScheme scheme, bool split) : PreTokenizer
{
    public override void Split(Piece piece, List<Piece> output)
    {
        string t = piece.Text.Replace(' ', replacement);
        bool prepend = scheme == PrependScheme.Always || (scheme == PrependScheme.First && piece.AtStart);
        if (prepend && !t.StartsWith(replacement)) t = replacement + t;
        piece = piece with { Text = t };
        if (!split)
        {
            output.Add(piece);
            return;
        }
        var matches = new List<(int, int)>();
        for (int i = 0; i < t.Length; i++)
            if (t[i] == replacement) matches.Add((i, i + 1));
        SplitAt(piece, matches, false, SplitBehavior.MergedWithNext, output);
    }
}

/// <summary>Metaspace's prepend_scheme.</summary>
internal enum PrependScheme { Always, First, Never }

/// <summary>Applies pre-tokenizers in order, each to every piece of the previous one.</summary>
internal sealed class SequencePreTokenizer(PreTokenizer[] items) : PreTokenizer
{
    public override void Split(Piece piece, List<Piece> output)
    {
        var current = new List<Piece> { piece };
        var next = new List<Piece>();
        foreach (var pt in items)
        {
            next.Clear();
            foreach (var p in current) pt.Split(p, next);
            (current, next) = (next, current);
        }
        output.AddRange(current);
    }
}
