using System.Text.RegularExpressions;

namespace Spark.Native.Text;

/// <summary>A normalizer of the Hugging Face pipeline: text in, text out (offsets are not tracked).</summary>
internal abstract class Normalizer
{
    public abstract string Normalize(string text);
}

/// <summary>NFC, NFD, NFKC or NFKD (own Unicode tables, so it also works with invariant globalization).</summary>
internal sealed class UnicodeNormalizer(NormalizationKind kind) : Normalizer
{
    public override string Normalize(string text) => UnicodeNormalization.Normalize(text, kind);
}

/// <summary>Prepends a string to non-empty text.</summary>
internal sealed class PrependNormalizer(string prepend) : Normalizer
{
    public override string Normalize(string text) => text.Length == 0 ? text : prepend + text;
}

/// <summary>Replaces every occurrence of a literal string or regex with <c>content</c>.</summary>
internal sealed class ReplaceNormalizer : Normalizer
{
    private readonly string? _literal;
    private readonly UnicodeRegex? _regex;
    private readonly string _content;

    public ReplaceNormalizer(string? literal, UnicodeRegex? regex, string content)
    {
        _literal = literal;
        _regex = regex;
        _content = content;
    }

    public override string Normalize(string text) => Replace(text, _literal, _regex, _content);

    /// <summary>Shared with the Replace decoder.</summary>
    public static string Replace(string text, string? literal, UnicodeRegex? regex, string content)
    {
        if (literal is not null) return literal.Length == 0 ? text : text.Replace(literal, content, StringComparison.Ordinal);
        var spans = new List<(int Start, int End)>();
        regex!.Matches(text, spans);
        if (spans.Count == 0) return text;
        var sb = new System.Text.StringBuilder(text.Length);
        int prev = 0;
        foreach (var (s, e) in spans)
        {
            sb.Append(text, prev, s - prev).Append(content);
            prev = e;
        }
        return sb.Append(text, prev, text.Length - prev).ToString();
    }
}

/// <summary>Unicode lowercase (invariant).</summary>
internal sealed class LowercaseNormalizer : Normalizer
{
    public override string Normalize(string text) => text.ToLowerInvariant();
}

/// <summary>Applies normalizers in order.</summary>
internal sealed class SequenceNormalizer(Normalizer[] items) : Normalizer
{
    public override string Normalize(string text)
    {
        foreach (var n in items) text = n.Normalize(text);
        return text;
    }
}
