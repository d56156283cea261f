using System.Globalization;
using System.Text;

namespace Spark.Native.Text.Templates;

/// <summary>Where a template came from: its name and line starts, to turn offsets into line:column.</summary>
internal sealed class TemplateSource
{
    public string Name { get; }
    public string Text { get; }
    private readonly List<int> _lineStarts = [0];

    public TemplateSource(string name, string text)
    {
        Name = name;
        Text = text;
        for (int i = 0; i < text.Length; i++) if (text[i] == '\n') _lineStarts.Add(i + 1);
    }

    public string Where(int offset)
    {
        int line = _lineStarts.BinarySearch(offset);
        if (line < 0) line = ~line - 1;
        return $"{Name}:{line + 1}:{offset - _lineStarts[line] + 1}";
    }

    public SparkException Error(int offset, string message) => new($"{Where(offset)}: {message}");
}

internal enum SegmentKind { Text, Output, Statement }

/// <summary>A piece of the template: literal text, or the inside of a {{ }} / {% %} tag (Start..End in the source).</summary>
internal readonly record struct Segment(SegmentKind Kind, string Text, int Start, int End);

/// <summary>
/// Splits a template into text and tags with Jinja2's whitespace rules as transformers configures them
/// (trim_blocks and lstrip_blocks on, keep_trailing_newline off): '-' strips all whitespace on that side, '+' keeps it,
/// a block or comment tag alone on its line loses its indentation, and the newline right after a block or comment tag
/// is dropped.
/// </summary>
internal static class TemplateLexer
{
    public static List<Segment> Split(TemplateSource src)
    {
        string s = src.Text;
        var segs = new List<Segment>();
        int pos = 0;
        bool lineStarting = true;
        while (pos <= s.Length)
        {
            int tag = FindTagStart(s, pos);
            string text = s.Substring(pos, (tag < 0 ? s.Length : tag) - pos);
            if (tag < 0) { if (text.Length > 0) segs.Add(new(SegmentKind.Text, text, pos, s.Length)); break; }

            char kind = s[tag + 1];
            char sign = tag + 2 < s.Length ? s[tag + 2] : '\0';
            if (sign == '-') text = text.TrimEnd();
            else if (sign != '+' && kind != '{')
            {
                int lpos = text.LastIndexOf('\n') + 1;
                if ((lpos > 0 || lineStarting) && lpos < text.Length && string.IsNullOrWhiteSpace(text[lpos..])) text = text[..lpos];
            }
            if (text.Length > 0) segs.Add(new(SegmentKind.Text, text, pos, tag));

            int contentStart = tag + 2 + (sign is '-' or '+' ? 1 : 0);
            int close; // index of the closing delimiter ("}}", "%}" or "#}")
            if (kind == '#')
            {
                close = s.IndexOf("#}", contentStart, StringComparison.Ordinal);
                if (close < 0) throw src.Error(tag, "unclosed comment '{#'");
            }
            else close = FindTagEnd(src, contentStart, kind == '{' ? '}' : '%', tag);

            bool stripAfter = close > contentStart && s[close - 1] == '-';
            int contentEnd = close - (close > contentStart && s[close - 1] is '-' or '+' ? 1 : 0);
            if (kind != '#')
                segs.Add(new(kind == '{' ? SegmentKind.Output : SegmentKind.Statement, s[contentStart..contentEnd], contentStart, contentEnd));

            pos = close + 2;
            if (stripAfter)
            {
                while (pos < s.Length && char.IsWhiteSpace(s[pos])) pos++;
                lineStarting = pos > 0 && s[pos - 1] == '\n';
            }
            else if (kind != '{' && !(close > contentStart && s[close - 1] == '+') && pos < s.Length && s[pos] == '\n')
            {
                pos++;
                lineStarting = true;
            }
            else lineStarting = false;
            if (pos >= s.Length) break;
        }
        return segs;
    }

    private static int FindTagStart(string s, int from)
    {
        for (int i = s.IndexOf('{', from); i >= 0 && i + 1 < s.Length; i = s.IndexOf('{', i + 1))
            if (s[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    private static int FindTagEnd(TemplateSource src, int from, char first, int tagStart)
    {
        string s = src.Text;
        int depth = 0;
        for (int i = from; i < s.Length; i++)
        {
            char c = s[i];
            if (c is '\'' or '"')
            {
                int j = i + 1;
                while (j < s.Length && s[j] != c) j += s[j] == '\\' ? 2 : 1;
                if (j >= s.Length) throw src.Error(i, "unterminated string literal");
                i = j;
            }
            else if (depth == 0 && c == first && i + 1 < s.Length && s[i + 1] == '}') return i;
            else if (c is '(' or '[' or '{') depth++;
            else if (c is ')' or ']' or '}' && depth > 0) depth--;
        }
        throw src.Error(tagStart, first == '}' ? "unclosed expression '{{' (no '}}')" : "unclosed statement '{%' (no '%}')");
    }
}

internal enum TokenKind { Name, String, Integer, Float, Operator, End }

internal readonly record struct Token(TokenKind Kind, string Text, int Pos, object? Value = null)
{
    public bool Is(string op) => (Kind == TokenKind.Operator || Kind == TokenKind.Name) && Text == op;
    public override string ToString() => Kind == TokenKind.End ? "end of tag" : $"'{Text}'";
}

/// <summary>Tokenizes the inside of one tag.</summary>
internal static class ExpressionLexer
{
    private static readonly string[] Operators =
        ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "="];

    public static List<Token> Tokenize(TemplateSource src, Segment seg)
    {
        string s = src.Text;
        var tokens = new List<Token>();
        int i = seg.Start;
        while (true)
        {
            while (i < seg.End && char.IsWhiteSpace(s[i])) i++;
            if (i >= seg.End) break;
            char c = s[i];
            int start = i;
            if (char.IsLetter(c) || c == '_')
            {
                while (i < seg.End && (char.IsLetterOrDigit(s[i]) || s[i] == '_')) i++;
                tokens.Add(new(TokenKind.Name, s[start..i], start));
            }
            else if (char.IsAsciiDigit(c))
            {
                while (i < seg.End && (char.IsAsciiDigit(s[i]) || s[i] == '_')) i++;
                bool isFloat = false;
                if (i + 1 < seg.End && s[i] == '.' && char.IsAsciiDigit(s[i + 1]))
                {
                    isFloat = true;
                    i++;
                    while (i < seg.End && char.IsAsciiDigit(s[i])) i++;
                }
                if (i < seg.End && s[i] is 'e' or 'E')
                {
                    int j = i + 1;
                    if (j < seg.End && s[j] is '+' or '-') j++;
                    if (j < seg.End && char.IsAsciiDigit(s[j])) { isFloat = true; i = j; while (i < seg.End && char.IsAsciiDigit(s[i])) i++; }
                }
                string text = s[start..i].Replace("_", "");
                tokens.Add(isFloat
                    ? new(TokenKind.Float, text, start, double.Parse(text, CultureInfo.InvariantCulture))
                    : new(TokenKind.Integer, text, start, long.Parse(text, CultureInfo.InvariantCulture)));
            }
            else if (c is '\'' or '"')
            {
                var sb = new StringBuilder();
                i++;
                while (true)
                {
                    if (i >= seg.End) throw src.Error(start, "unterminated string literal");
                    char ch = s[i];
                    if (ch == c) { i++; break; }
                    if (ch != '\\' || i + 1 >= seg.End) { sb.Append(ch); i++; continue; }
                    char e = s[i + 1];
                    i += 2;
                    switch (e)
                    {
                        case 'n': sb.Append('\n'); break;
                        case 't': sb.Append('\t'); break;
                        case 'r': sb.Append('\r'); break;
                        case 'b': sb.Append('\b'); break;
                        case 'f': sb.Append('\f'); break;
                        case 'v': sb.Append('\v'); break;
                        case 'a': sb.Append('\a'); break;
                        case '0': sb.Append('\0'); break;
                        case '\\': case '\'': case '"': sb.Append(e); break;
                        case '\n': break;
                        case 'x' or 'u' or 'U':
                            int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                            if (i + n > seg.End || !int.TryParse(s.AsSpan(i, n), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int cp))
                                throw src.Error(i - 2, $"bad '\\{e}' escape in string literal");
                            sb.Append(char.ConvertFromUtf32(cp));
                            i += n;
                            break;
                        default: sb.Append('\\').Append(e); break;
                    }
                }
                tokens.Add(new(TokenKind.String, s[start..i], start, sb.ToString()));
            }
            else
            {
                string? op = null;
                foreach (string o in Operators)
                    if (string.CompareOrdinal(s, i, o, 0, o.Length) == 0 && i + o.Length <= seg.End) { op = o; break; }
                if (op is null) throw src.Error(i, $"unexpected character '{c}'");
                tokens.Add(new(TokenKind.Operator, op, i));
                i += op.Length;
            }
        }
        tokens.Add(new(TokenKind.End, "", seg.End));
        return tokens;
    }
}
