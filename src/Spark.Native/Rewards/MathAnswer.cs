using System.Globalization;
using System.Numerics;
using System.Text;

namespace Spark.Native.Rewards;

/// <summary>
/// Normalisation and equivalence of final math answers (the content of a <c>\boxed{}</c>), as rule-based graders
/// do it. Everything is hand-scanned in linear time with bounded recursion; no regular expressions.
/// <para>Normalisation (<see cref="Normalize"/>), applied to both sides:</para>
/// <list type="bullet">
/// <item>drop white space, <c>$</c>, <c>~</c>, LaTeX spacing (<c>\, \; \: \! \quad \qquad</c>), <c>\left \right</c>
/// (with the invisible delimiter <c>\left.</c>), <c>\big…</c>, <c>\displaystyle</c>, trailing periods;</item>
/// <item><c>\dfrac \tfrac</c> → <c>\frac</c>; shorthand arguments <c>\frac12</c> → <c>\frac{1}{2}</c>, <c>\sqrt2</c> → <c>\sqrt{2}</c>;</item>
/// <item>degrees <c>^\circ ^{\circ} \degree °</c> and percent signs <c>\% %</c> are dropped:
/// "50\%" equals "50", not "0.5" (the math-verify convention);</item>
/// <item>wrappers around the whole answer are removed: <c>{…}</c>, <c>\boxed{…}</c>, <c>\text{…}</c>,
/// <c>\textbf \textit \textrm \mathrm \mathbf \mbox</c>; a trailing <c>\text{…}</c> / <c>\mbox \mathrm \textrm</c>
/// group after other content is a unit and dropped (with an optional <c>^2</c>: "5\text{ cm}^2" is "5"); other
/// text groups are unwrapped in place. Plain-letter units ("5 cm") are kept: they cannot be told from variables;</item>
/// <item>a leading "x =" (one letter or one command, optionally with a subscript) is dropped when no other "=" follows;</item>
/// <item>thousands separators: an answer that is only digits in groups of three after commas
/// (1–3 digits first, e.g. <c>1,000</c> or <c>1{,}234.5</c>) is one number, unless a comma is followed by a space
/// in the original text (<c>1, 234</c> is the list 1 and 234). Inside brackets commas always separate items.</item>
/// </list>
/// <para>Equivalence (<see cref="Equivalent"/>): equal normalised strings; else both sides are parsed as</para>
/// <list type="bullet">
/// <item>lists: <c>(a, b)</c> and <c>[a, b]</c> and intervals <c>(a, b]</c> compare item by item in order and need
/// the same brackets; sets <c>\{a, b\}</c> and bare lists <c>a, b</c> compare in any order; a bare list also
/// matches a <c>(…)</c> tuple in order;</item>
/// <item>numbers, exactly as fractions: integers, decimals, <c>a/b</c>, <c>\frac{a}{b}</c>, signs, scientific
/// notation (<c>1e-3</c>, <c>1.5\times10^{3}</c>, <c>10^{3}</c>), integer powers, products with <c>\times \cdot *</c>.
/// Two numbers are equal when their exact values are; when at least one side has no finite decimal expansion
/// (e.g. 1/3), a relative tolerance applies too: |a − b| ≤ tol · max(|a|, |b|), so 0.333333 matches 1/3 at the
/// default 1e-6 but 0.3333 does not. Two terminating decimals (3.14 and 3.1416, 1000000 and 1000000.5) must be equal;</item>
/// <item>anything else (<c>\sqrt{2}</c>, <c>\pi</c>, expressions) only as a normalised string; two answers made only
/// of ASCII letters compare case-insensitively.</item>
/// </list>
/// Bounds: answers longer than <see cref="MaxAnswerChars"/> compare only as identical strings; lists nest at most 8
/// deep with at most 256 items, numeric expressions 32 deep, literals have at most 1,000 digits and exact values at
/// most 4,096 bits; past a bound an answer falls back to string comparison.
/// </summary>
public static class MathAnswer
{
    /// <summary>The default relative tolerance for numbers that are not terminating decimals.</summary>
    public const double DefaultRelativeTolerance = 1e-6;

    /// <summary>Longest answer that is normalised and parsed; longer ones compare only by ordinal equality.</summary>
    public const int MaxAnswerChars = 16 * 1024;

    private const int MaxDepth = 32;       // nesting of numeric sub-expressions
    private const int MaxListDepth = 8;    // nesting of lists and tuples
    private const int MaxListItems = 256;
    private const int MaxLiteralDigits = 1000;

    private static readonly string[] WholeWrappers = ["\\boxed", "\\box", "\\text", "\\textbf", "\\textit", "\\textrm", "\\mathrm", "\\mathbf", "\\mbox"];
    private static readonly string[] UnitWrappers = ["\\text", "\\textrm", "\\mathrm", "\\mbox"];
    private static readonly string[] InlineWrappers = ["\\text", "\\textbf", "\\textit", "\\textrm", "\\mathrm", "\\mbox"];

    /// <summary>The normalised form of an answer (see the type's remarks); two answers with equal forms are equivalent.</summary>
    public static string Normalize(string answer)
    {
        if (answer.Length > MaxAnswerChars) return answer;
        string s = Clean(answer);
        s = s.Replace("^{\\circ}", "").Replace("^\\circ", "");
        s = Unwrap(s);
        s = DropUnits(s);
        s = UnwrapInline(s);
        s = DropLeadingVariable(s);
        s = Unwrap(s);
        if (!HasSpacedComma(answer) && IsThousands(s)) s = s.Replace(",", "");
        return ExpandShorthand(s);
    }

    /// <summary>Whether <paramref name="answer"/> and <paramref name="reference"/> are the same math answer (see the type's remarks).</summary>
    /// <param name="answer">The extracted answer, e.g. the content of the completion's last box.</param>
    /// <param name="reference">The reference answer.</param>
    /// <param name="relativeTolerance">Relative tolerance for numbers without a finite decimal expansion; 0 for exact comparison only.</param>
    public static bool Equivalent(string answer, string reference, double relativeTolerance = DefaultRelativeTolerance)
    {
        if (!double.IsFinite(relativeTolerance) || relativeTolerance < 0)
            throw new SparkException($"math answer: relative tolerance {relativeTolerance} must be finite and >= 0");
        if (answer.Length > MaxAnswerChars || reference.Length > MaxAnswerChars) return answer == reference;
        string a = Normalize(answer), r = Normalize(reference);
        if (a == r) return a.Length > 0;
        if (a.Length == 0 || r.Length == 0) return false;
        return Same(Parse(a, 0), Parse(r, 0), Rational.FromDouble(relativeTolerance));
    }

    /// <summary>Parses a normalised answer as one number (see the type's remarks); false when it is not one.</summary>
    internal static bool TryParseNumber(string normalized, out Rational value)
    {
        var parser = new NumberParser(normalized);
        return parser.TryParse(out value);
    }

    // ---- normalisation passes (each linear) ----

    /// <summary>Drops white space, $, spacing commands, sizing commands and percent signs; \dfrac → \frac; {,} → ,.</summary>
    private static string Clean(string s)
    {
        var sb = new StringBuilder(s.Length);
        int i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (char.IsWhiteSpace(c) || c is '$' or '~' or '%' or '°') { i++; continue; }
            if (c == '{' && i + 2 < s.Length && s[i + 1] == ',' && s[i + 2] == '}') { sb.Append(','); i += 3; continue; }
            if (c != '\\') { sb.Append(c); i++; continue; }
            if (i + 1 < s.Length && !char.IsAsciiLetter(s[i + 1]))
            {
                char d = s[i + 1];
                if (d is not (',' or ';' or ':' or '!' or '%' or '$') && !char.IsWhiteSpace(d)) sb.Append(c).Append(d);
                i += 2;
                continue;
            }
            int start = i++;
            while (i < s.Length && char.IsAsciiLetter(s[i])) i++;
            var name = s.AsSpan(start + 1, i - start - 1);
            switch (name)
            {
                case "left" or "right" or "bigl" or "bigr" or "Bigl" or "Bigr" or "biggl" or "biggr" or "Biggl" or "Biggr"
                    or "big" or "Big" or "bigg" or "Bigg":
                    if (i < s.Length && s[i] == '.') i++; // \left. and \right. are invisible delimiters
                    break;
                case "displaystyle" or "textstyle" or "quad" or "qquad" or "degree":
                    break;
                case "dfrac" or "tfrac":
                    sb.Append("\\frac");
                    break;
                default:
                    sb.Append(s, start, i - start);
                    break;
            }
        }
        return sb.ToString();
    }

    /// <summary>Removes trailing periods and wrappers around the whole string, repeatedly.</summary>
    private static string Unwrap(string s)
    {
        int[] match = MatchBraces(s);
        int a = 0, b = s.Length;
        while (b > a)
        {
            if (s[b - 1] == '.' && !(b - 2 >= a && s[b - 2] == '\\')) { b--; continue; }
            if (s[a] == '{' && match[a] == b - 1) { a++; b--; continue; }
            int brace = WrapperBrace(s, a, WholeWrappers);
            if (brace >= 0 && match[brace] == b - 1) { a = brace + 1; b--; continue; }
            break;
        }
        return s[a..b];
    }

    /// <summary>Drops trailing unit groups such as <c>\text{cm}</c> or <c>\mbox{m}^2</c> that follow other content.</summary>
    private static string DropUnits(string s)
    {
        int[] match = MatchBraces(s);
        int b = s.Length;
        while (b > 0)
        {
            int e = b;
            if (e >= 2 && s[e - 2] == '^' && char.IsAsciiDigit(s[e - 1])) e -= 2;
            else if (e >= 4 && s[e - 4] == '^' && s[e - 3] == '{' && char.IsAsciiDigit(s[e - 2]) && s[e - 1] == '}') e -= 4;
            if (e == 0 || s[e - 1] != '}' || match[e - 1] < 0) break;
            int open = match[e - 1];
            int start = UnitStart(s, open);
            if (start <= 0) break;
            b = start;
        }
        return s[..b];
    }

    /// <summary>Where the unit command whose brace is at <paramref name="open"/> starts, or -1.</summary>
    private static int UnitStart(string s, int open)
    {
        foreach (string w in UnitWrappers)
            if (open >= w.Length && string.CompareOrdinal(s, open - w.Length, w, 0, w.Length) == 0) return open - w.Length;
        return -1;
    }

    /// <summary>Replaces inner <c>\text{…}</c> groups (and friends) by their content.</summary>
    private static string UnwrapInline(string s)
    {
        if (!s.Contains('\\')) return s;
        int[] match = MatchBraces(s);
        var skip = new bool[s.Length];
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (skip[i]) continue;
            if (s[i] == '\\')
            {
                int brace = WrapperBrace(s, i, InlineWrappers);
                if (brace >= 0 && match[brace] > brace) { skip[match[brace]] = true; i = brace; continue; }
                if (i + 1 < s.Length && !char.IsAsciiLetter(s[i + 1])) { sb.Append(s[i]).Append(s[i + 1]); i++; continue; }
            }
            sb.Append(s[i]);
        }
        return sb.ToString();
    }

    /// <summary>"x=5" → "5" when the left side is one letter or one command (optionally subscripted) and no other "=" follows.</summary>
    private static string DropLeadingVariable(string s)
    {
        int eq = s.IndexOf('=');
        if (eq <= 0 || s.IndexOf('=', eq + 1) >= 0 || eq + 1 == s.Length) return s;
        int i = 0;
        if (char.IsAsciiLetter(s[0])) i = 1;
        else if (s[0] == '\\') { i = 1; while (i < eq && char.IsAsciiLetter(s[i])) i++; if (i == 1) return s; }
        else return s;
        if (i < eq && s[i] == '_')
        {
            i++;
            if (i < eq && s[i] == '{') { i++; while (i < eq && char.IsAsciiLetterOrDigit(s[i])) i++; if (i < eq && s[i] == '}') i++; else return s; }
            else if (i < eq && char.IsAsciiLetterOrDigit(s[i])) i++;
        }
        return i == eq ? s[(eq + 1)..] : s;
    }

    /// <summary>Whether the raw answer has a comma followed by space (a list, never a thousands separator).</summary>
    private static bool HasSpacedComma(string raw)
    {
        for (int i = 0; i + 1 < raw.Length; i++)
            if (raw[i] == ',' && (char.IsWhiteSpace(raw[i + 1]) || raw[i + 1] == '~' || (raw[i + 1] == '\\' && i + 2 < raw.Length && !char.IsAsciiLetter(raw[i + 2]))))
                return true;
        return false;
    }

    /// <summary>[+-]? d{1,3} (,ddd)+ (.d*)?</summary>
    private static bool IsThousands(string s)
    {
        int i = s.Length > 0 && s[0] is '+' or '-' ? 1 : 0;
        int lead = 0;
        while (i < s.Length && char.IsAsciiDigit(s[i])) { i++; lead++; }
        if (lead is 0 or > 3) return false;
        int groups = 0;
        while (i + 3 < s.Length && s[i] == ',' && char.IsAsciiDigit(s[i + 1]) && char.IsAsciiDigit(s[i + 2]) && char.IsAsciiDigit(s[i + 3])
               && (i + 4 == s.Length || !char.IsAsciiDigit(s[i + 4])))
        {
            i += 4;
            groups++;
        }
        if (groups == 0) return false;
        if (i < s.Length && s[i] == '.') { i++; while (i < s.Length && char.IsAsciiDigit(s[i])) i++; }
        return i == s.Length;
    }

    /// <summary><c>\frac12</c> → <c>\frac{1}{2}</c>, <c>\frac1{x}</c> → <c>\frac{1}{x}</c>, <c>\sqrt2</c> → <c>\sqrt{2}</c>: one-character arguments get braces.</summary>
    private static string ExpandShorthand(string s)
    {
        if (!s.Contains("\\frac", StringComparison.Ordinal) && !s.Contains("\\sqrt", StringComparison.Ordinal)) return s;
        int[] match = MatchBraces(s);
        var secondArgAfter = new bool[s.Length]; // a \frac's first argument closes here; its second may be short
        var sb = new StringBuilder(s.Length + 16);
        int i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (c == '}' && secondArgAfter[i]) { sb.Append(c); i = ShortArgument(s, i + 1, sb); continue; }
            if (c != '\\') { sb.Append(c); i++; continue; }
            int start = i++;
            if (i < s.Length && !char.IsAsciiLetter(s[i])) { sb.Append(c).Append(s[i]); i++; continue; }
            while (i < s.Length && char.IsAsciiLetter(s[i])) i++;
            sb.Append(s, start, i - start);
            var name = s.AsSpan(start + 1, i - start - 1);
            if (name is "sqrt") i = ShortArgument(s, i, sb);
            else if (name is "frac")
            {
                if (i < s.Length && s[i] == '{' && match[i] > i) secondArgAfter[match[i]] = true;
                else if (i < s.Length && IsShortArgument(s[i])) i = ShortArgument(s, ShortArgument(s, i, sb), sb);
            }
        }
        return sb.ToString();
    }

    private static bool IsShortArgument(char c) => char.IsAsciiLetterOrDigit(c);

    /// <summary>Wraps a one-character argument at <paramref name="i"/> in braces; returns the index after what was consumed.</summary>
    private static int ShortArgument(string s, int i, StringBuilder sb)
    {
        if (i < s.Length && IsShortArgument(s[i])) { sb.Append('{').Append(s[i]).Append('}'); return i + 1; }
        return i;
    }

    /// <summary>If a wrapper command starts at <paramref name="at"/> and is followed by '{', the brace's index; else -1.</summary>
    private static int WrapperBrace(string s, int at, string[] wrappers)
    {
        if (s[at] != '\\') return -1;
        foreach (string w in wrappers)
        {
            int brace = at + w.Length;
            if (brace < s.Length && s[brace] == '{' && string.CompareOrdinal(s, at, w, 0, w.Length) == 0) return brace;
        }
        return -1;
    }

    /// <summary>For each unescaped '{' and '}', the index of its partner, or -1 (unbalanced or not a brace).</summary>
    private static int[] MatchBraces(string s)
    {
        var match = new int[s.Length];
        Array.Fill(match, -1);
        var stack = new Stack<int>();
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\') { i++; continue; }
            if (s[i] == '{') stack.Push(i);
            else if (s[i] == '}' && stack.Count > 0) { int o = stack.Pop(); match[o] = i; match[i] = o; }
        }
        return match;
    }

    // ---- structure ----

    private enum ListKind { None, Bare, Ordered, Set }

    /// <summary>A parsed answer: a list of items, or an atom that may be a number.</summary>
    private sealed class Node
    {
        public required string Text { get; init; }
        public ListKind Kind { get; init; }
        public string Open { get; init; } = "";
        public string Close { get; init; } = "";
        public Node[] Items { get; init; } = [];
        public Rational? Number { get; init; }
    }

    private static Node Parse(string s, int depth)
    {
        if (depth < MaxListDepth)
        {
            var (openLen, closeLen) = WholeBracketed(s);
            if (openLen > 0)
            {
                string open = s[..openLen], close = s[^closeLen..], inner = s[openLen..^closeLen];
                var parts = SplitTopLevel(inner);
                if (parts is not null)
                {
                    if (parts.Count == 1 && open == "(" && close == ")") return Parse(inner, depth + 1);
                    var kind = open == "\\{" ? ListKind.Set : ListKind.Ordered;
                    return new Node { Text = s, Kind = kind, Open = open, Close = close, Items = [.. parts.Select(p => Parse(p, depth + 1))] };
                }
            }
            else
            {
                var parts = SplitTopLevel(s);
                if (parts is { Count: > 1 }) return new Node { Text = s, Kind = ListKind.Bare, Items = [.. parts.Select(p => Parse(p, depth + 1))] };
            }
        }
        return new Node { Text = s, Number = TryParseNumber(s, out var value) ? value : null };
    }

    /// <summary>Length of a bracket token at i: '(' '[' ')' ']' '{' '}' → 1, '\{' '\}' → 2, else 0; sign +1 open, -1 close.</summary>
    private static (int Length, int Direction) Bracket(string s, int i)
    {
        char c = s[i];
        if (c is '(' or '[' or '{') return (1, 1);
        if (c is ')' or ']' or '}') return (1, -1);
        if (c == '\\' && i + 1 < s.Length)
        {
            if (s[i + 1] == '{') return (2, 1);
            if (s[i + 1] == '}') return (2, -1);
            return (2, 0); // another escape: skip both characters
        }
        return (1, 0);
    }

    /// <summary>When s is one bracketed group — (…) […] \{…\} or an interval (…] — the lengths of its opening and closing tokens.</summary>
    private static (int Open, int Close) WholeBracketed(string s)
    {
        if (s.Length < 2) return (0, 0);
        var (openLen, dir) = Bracket(s, 0);
        if (dir != 1 || s[0] == '{') return (0, 0);
        int depth = 0, i = 0;
        while (i < s.Length)
        {
            var (len, d) = Bracket(s, i);
            depth += d;
            if (depth == 0) return i + len == s.Length && s[i] != '}' ? (openLen, len) : (0, 0);
            if (depth < 0) return (0, 0);
            i += len;
        }
        return (0, 0);
    }

    /// <summary>Splits at commas outside brackets; null when brackets are unbalanced or there are too many items.</summary>
    private static List<string>? SplitTopLevel(string s)
    {
        var parts = new List<string>();
        int depth = 0, start = 0, i = 0;
        while (i < s.Length)
        {
            var (len, d) = Bracket(s, i);
            depth += d;
            if (depth < 0) return null;
            if (depth == 0 && s[i] == ',')
            {
                parts.Add(s[start..i]);
                if (parts.Count >= MaxListItems) return null;
                start = i + 1;
            }
            i += len;
        }
        if (depth != 0) return null;
        parts.Add(s[start..]);
        return parts;
    }

    private static bool Same(Node a, Node b, Rational tolerance)
    {
        if (a.Kind == ListKind.None || b.Kind == ListKind.None)
            return a.Kind == b.Kind && SameAtom(a, b, tolerance);
        if (a.Items.Length != b.Items.Length) return false;
        bool ordered = (a.Kind, b.Kind) switch
        {
            (ListKind.Ordered, ListKind.Ordered) => true,
            (ListKind.Ordered, ListKind.Bare) => a.Open == "(" && a.Close == ")",
            (ListKind.Bare, ListKind.Ordered) => b.Open == "(" && b.Close == ")",
            _ => false,
        };
        if (a.Kind == ListKind.Ordered && b.Kind == ListKind.Ordered && (a.Open != b.Open || a.Close != b.Close)) return false;
        if ((a.Kind == ListKind.Ordered || b.Kind == ListKind.Ordered) && !ordered) return false;
        if (ordered)
        {
            for (int i = 0; i < a.Items.Length; i++)
                if (!Same(a.Items[i], b.Items[i], tolerance)) return false;
            return true;
        }
        // Unordered: pair identical texts first (the common case, linear), then match the rest greedily.
        var byText = new Dictionary<string, Stack<int>>();
        for (int k = b.Items.Length - 1; k >= 0; k--)
        {
            if (!byText.TryGetValue(b.Items[k].Text, out var slots)) byText[b.Items[k].Text] = slots = new Stack<int>();
            slots.Push(k);
        }
        var used = new bool[b.Items.Length];
        var rest = new List<Node>();
        foreach (var x in a.Items)
        {
            if (byText.TryGetValue(x.Text, out var slots) && slots.Count > 0) used[slots.Pop()] = true;
            else rest.Add(x);
        }
        foreach (var x in rest)
        {
            int j = -1;
            for (int k = 0; k < b.Items.Length && j < 0; k++)
                if (!used[k] && Same(x, b.Items[k], tolerance)) j = k;
            if (j < 0) return false;
            used[j] = true;
        }
        return true;
    }

    private static bool SameAtom(Node a, Node b, Rational tolerance)
    {
        if (a.Text == b.Text) return a.Text.Length > 0;
        if (a.Number is { } x && b.Number is { } y) return SameNumber(x, y, tolerance);
        return IsAsciiWord(a.Text) && IsAsciiWord(b.Text) && string.Equals(a.Text, b.Text, StringComparison.OrdinalIgnoreCase);
    }

    private static bool IsAsciiWord(string s) => s.Length > 0 && s.All(char.IsAsciiLetter);

    /// <summary>Exact equality, or within the relative tolerance when one side has no finite decimal expansion.</summary>
    internal static bool SameNumber(Rational a, Rational b, Rational tolerance) =>
        a == b || (!(a.IsInteger && b.IsInteger) && !(a.IsTerminatingDecimal && b.IsTerminatingDecimal) && Rational.WithinRelative(a, b, tolerance));

    // ---- numbers ----

    /// <summary>
    /// Recursive descent over a normalised answer:
    /// expr := term ('/' term)? ; term := factor (('\times' | '\cdot' | '*' | '×' | '·') factor)* ;
    /// factor := ('+' | '-') factor | primary ('^' exponent)? ; primary := literal | '\frac' group group | '{' expr '}' | '(' expr ')' ;
    /// literal := digits ('.' digits?)? | '.' digits, then optionally [eE] sign? digits ; exponent := digit | '{' sign? digits '}'.
    /// Depth, literal length, exponents and intermediate sizes are capped.
    /// </summary>
    private ref struct NumberParser(string s)
    {
        private int _pos;
        private int _depth;

        public bool TryParse(out Rational value) => Expr(out value) && _pos == s.Length;

        private bool Expr(out Rational value)
        {
            value = Rational.Zero;
            if (++_depth > MaxDepth) return false;
            try
            {
                if (!Term(out value)) return false;
                if (_pos < s.Length && s[_pos] == '/')
                {
                    _pos++;
                    if (!Term(out var d) || !Rational.TryDivide(value, d, out value)) return false;
                }
                return true;
            }
            finally { _depth--; }
        }

        private bool Term(out Rational value)
        {
            if (!Factor(out value)) return false;
            while (true)
            {
                if (Eat("\\times") || Eat("\\cdot") || Eat("*") || Eat("×") || Eat("·"))
                {
                    if (!Factor(out var f) || !Rational.TryMultiply(value, f, out value)) return false;
                }
                else return true;
            }
        }

        private bool Factor(out Rational value)
        {
            value = Rational.Zero;
            if (_pos < s.Length && s[_pos] is '+' or '-')
            {
                bool negative = s[_pos++] == '-';
                if (++_depth > MaxDepth) return false;
                try
                {
                    if (!Factor(out value)) return false;
                }
                finally { _depth--; }
                if (negative) value = value.Negate();
                return true;
            }
            if (!Primary(out value)) return false;
            if (_pos < s.Length && s[_pos] == '^')
            {
                _pos++;
                if (!Exponent(out long k) || !Rational.TryPower(value, k, out value)) return false;
            }
            return true;
        }

        private bool Primary(out Rational value)
        {
            value = Rational.Zero;
            if (_pos >= s.Length) return false;
            if (Eat("\\frac"))
            {
                if (!Group(out var n) || !Group(out var d)) return false;
                return Rational.TryDivide(n, d, out value);
            }
            if (s[_pos] is '{' or '(')
            {
                char close = s[_pos] == '{' ? '}' : ')';
                _pos++;
                if (!Expr(out value) || _pos >= s.Length || s[_pos] != close) return false;
                _pos++;
                return true;
            }
            return Literal(out value);
        }

        private bool Group(out Rational value)
        {
            value = Rational.Zero;
            if (_pos >= s.Length) return false;
            if (char.IsAsciiDigit(s[_pos])) { value = new Rational(s[_pos++] - '0', BigInteger.One); return true; }
            if (s[_pos] != '{') return false;
            _pos++;
            if (!Expr(out value) || _pos >= s.Length || s[_pos] != '}') return false;
            _pos++;
            return true;
        }

        private bool Exponent(out long k)
        {
            k = 0;
            if (_pos < s.Length && char.IsAsciiDigit(s[_pos])) { k = s[_pos++] - '0'; return true; }
            if (!Eat("{")) return false;
            bool negative = false;
            if (_pos < s.Length && s[_pos] is '+' or '-') negative = s[_pos++] == '-';
            if (!Integer(out k, 6) || !Eat("}")) return false;
            if (negative) k = -k;
            return true;
        }

        private bool Literal(out Rational value)
        {
            value = Rational.Zero;
            int start = _pos;
            while (_pos < s.Length && char.IsAsciiDigit(s[_pos])) _pos++;
            int intEnd = _pos, fracStart = _pos, fracEnd = _pos;
            if (_pos < s.Length && s[_pos] == '.')
            {
                fracStart = ++_pos;
                while (_pos < s.Length && char.IsAsciiDigit(s[_pos])) _pos++;
                fracEnd = _pos;
            }
            int digits = (intEnd - start) + (fracEnd - fracStart);
            if (digits == 0 || digits > MaxLiteralDigits) return false;
            long exponent = -(fracEnd - fracStart);
            if (_pos + 1 < s.Length && s[_pos] is 'e' or 'E' && (char.IsAsciiDigit(s[_pos + 1]) || (s[_pos + 1] is '+' or '-' && _pos + 2 < s.Length && char.IsAsciiDigit(s[_pos + 2]))))
            {
                _pos++;
                bool negative = false;
                if (s[_pos] is '+' or '-') negative = s[_pos++] == '-';
                if (!Integer(out long e, 6)) return false;
                exponent += negative ? -e : e;
            }
            if (Math.Abs(exponent) > 2 * MaxLiteralDigits) return false;
            var mantissa = BigInteger.Parse(string.Concat(s.AsSpan(start, intEnd - start), s.AsSpan(fracStart, fracEnd - fracStart)), NumberStyles.None, CultureInfo.InvariantCulture);
            var scale = BigInteger.Pow(10, (int)Math.Abs(exponent));
            return exponent >= 0 ? Rational.TryCreate(mantissa * scale, BigInteger.One, out value) : Rational.TryCreate(mantissa, scale, out value);
        }

        private bool Integer(out long value, int maxDigits)
        {
            value = 0;
            int start = _pos;
            while (_pos < s.Length && char.IsAsciiDigit(s[_pos]) && _pos - start < maxDigits) value = value * 10 + (s[_pos++] - '0');
            return _pos > start && !(_pos < s.Length && char.IsAsciiDigit(s[_pos]));
        }

        private bool Eat(string token)
        {
            if (_pos + token.Length > s.Length || string.CompareOrdinal(s, _pos, token, 0, token.Length) != 0) return false;
            _pos += token.Length;
            return true;
        }
    }
}
