using System.Numerics;
using System.Text;

namespace Spark.Native.Rewards.Tasks;

/// <summary>The outcome of checking a countdown answer.</summary>
public enum CountdownVerdict
{
    /// <summary>Uses only given numbers, each at most once, and equals the target.</summary>
    Correct,
    /// <summary>No expression found (no closed \boxed{} and a blank last line, or an empty box).</summary>
    NoExpression,
    /// <summary>Longer than <see cref="CountdownChecker.MaxExpressionLength"/> characters.</summary>
    TooLong,
    /// <summary>Not an expression of the grammar (words, unary minus, decimals, unbalanced or too-deep parentheses, …).</summary>
    Malformed,
    /// <summary>A number that is not given, or is used more often than given.</summary>
    NumberNotAvailable,
    /// <summary>Divides by zero somewhere.</summary>
    DivisionByZero,
    /// <summary>Well formed, numbers fine, but the value differs from the target.</summary>
    WrongValue,
}

/// <summary>
/// Checks countdown answers with a small recursive-descent parser over
/// <c>expr := term (('+'|'-') term)*; term := factor (('*'|'/') factor)*; factor := integer | '(' expr ')'</c>,
/// evaluated with exact rationals (so 6 / 4 * 2 = 3 is fine; only the final value must equal the target). No unary
/// signs, decimals or implicit multiplication. × · \times \cdot mean *, ÷ \div mean /, − means -; \left, \right, $
/// and LaTeX spacing are ignored. Input length and parenthesis depth are bounded, so every check is fast.
/// </summary>
public static class CountdownChecker
{
    /// <summary>Longest expression considered, in characters after normalization.</summary>
    public const int MaxExpressionLength = 256;

    /// <summary>Deepest parenthesis nesting accepted.</summary>
    public const int MaxDepth = 32;

    /// <summary>Finds the answer in a completion and checks it (see <see cref="ExtractExpression"/> and <see cref="Check"/>).</summary>
    public static CountdownVerdict CheckCompletion(string completion, IReadOnlyList<int> numbers, int target)
    {
        ArgumentNullException.ThrowIfNull(completion);
        string? expression = ExtractExpression(completion);
        return expression is null ? CountdownVerdict.NoExpression : Check(expression, numbers, target);
    }

    /// <summary>
    /// The expression a completion answers with: the content of its last \boxed{…}; when it has no box at all, the
    /// last non-blank line, cut before its first '=' and with a trailing '.' dropped, reduced to its trailing run of
    /// expression characters (digits, spaces, + - * / ( ) . and the symbols above), so "So: (3 + 4) * 5 = 35." gives
    /// "(3 + 4) * 5". Null when nothing is left, and when the last box is never closed (truncated).
    /// </summary>
    public static string? ExtractExpression(string completion)
    {
        ArgumentNullException.ThrowIfNull(completion);
        string? boxed = AnswerText.LastBoxed(completion);
        if (boxed is not null) return string.IsNullOrWhiteSpace(boxed) ? null : boxed;
        if (completion.Contains(@"\box", StringComparison.Ordinal)) return null;
        string line = AnswerText.LastLine(completion);
        int equals = line.IndexOf('=');
        if (equals >= 0) line = line[..equals];
        if (line.Length > 4 * MaxExpressionLength) line = line[^(4 * MaxExpressionLength)..];
        line = Normalize(line).TrimEnd().TrimEnd('.');
        int start = line.Length;
        while (start > 0 && IsExpressionChar(line[start - 1])) start--;
        string run = line[start..].Trim();
        return run.Length == 0 ? null : run;
    }

    /// <summary>Checks one expression against the given numbers (a multiset) and the target.</summary>
    public static CountdownVerdict Check(string expression, IReadOnlyList<int> numbers, int target)
    {
        ArgumentNullException.ThrowIfNull(expression);
        ArgumentNullException.ThrowIfNull(numbers);
        if (expression.Length > 4 * MaxExpressionLength) return CountdownVerdict.TooLong;
        string s = Normalize(expression).Trim();
        if (s.Length == 0) return CountdownVerdict.NoExpression;
        if (s.Length > MaxExpressionLength) return CountdownVerdict.TooLong;
        var parser = new Parser(s, numbers);
        var value = parser.Expression(0);
        if (parser.Error is null && parser.SkipSpaces() < s.Length) parser.Error = CountdownVerdict.Malformed;
        if (parser.Error is { } error) return error;
        return value == new Rational(target, 1) ? CountdownVerdict.Correct : CountdownVerdict.WrongValue;
    }

    private static bool IsExpressionChar(char c) => char.IsAsciiDigit(c) || c is ' ' or '\t' or '+' or '-' or '*' or '/' or '(' or ')' or '.';

    private static string Normalize(string text) => new StringBuilder(text)
        .Replace(@"\left", "").Replace(@"\right", "").Replace(@"\times", "*").Replace(@"\cdot", "*").Replace(@"\div", "/")
        .Replace(@"\,", " ").Replace(@"\;", " ").Replace(@"\!", "").Replace(@"\ ", " ").Replace("$", "")
        .Replace('×', '*').Replace('·', '*').Replace('∗', '*').Replace('÷', '/').Replace('∕', '/').Replace('−', '-').Replace('–', '-')
        .ToString();

    /// <summary>Parses and evaluates in one pass; the first error sticks and ends the parse.</summary>
    private sealed class Parser(string s, IReadOnlyList<int> numbers)
    {
        private readonly List<int> _available = [.. numbers];
        private int _pos;

        public CountdownVerdict? Error;

        public int SkipSpaces()
        {
            while (_pos < s.Length && s[_pos] is ' ' or '\t') _pos++;
            return _pos;
        }

        private char Peek() => SkipSpaces() < s.Length ? s[_pos] : '\0';

        public Rational Expression(int depth)
        {
            var value = Term(depth);
            while (Error is null && Peek() is '+' or '-')
            {
                char op = s[_pos++];
                var right = Term(depth);
                value = op == '+' ? value + right : value - right;
            }
            return value;
        }

        private Rational Term(int depth)
        {
            var value = Factor(depth);
            while (Error is null && Peek() is '*' or '/')
            {
                char op = s[_pos++];
                var right = Factor(depth);
                if (Error is not null) break;
                if (op == '*') value *= right;
                else if (right.IsZero) Error = CountdownVerdict.DivisionByZero;
                else value /= right;
            }
            return value;
        }

        private Rational Factor(int depth)
        {
            if (Error is not null) return default;
            char c = Peek();
            if (c == '(')
            {
                if (depth >= MaxDepth) { Error = CountdownVerdict.Malformed; return default; }
                _pos++;
                var inner = Expression(depth + 1);
                if (Error is null && Peek() != ')') Error = CountdownVerdict.Malformed;
                _pos++;
                return inner;
            }
            if (!char.IsAsciiDigit(c)) { Error = CountdownVerdict.Malformed; return default; }
            int start = _pos;
            while (_pos < s.Length && char.IsAsciiDigit(s[_pos])) _pos++;
            if (_pos < s.Length && s[_pos] == '.') { Error = CountdownVerdict.Malformed; return default; }
            if (!int.TryParse(s.AsSpan(start, _pos - start), System.Globalization.NumberStyles.None, null, out int n) || !_available.Remove(n))
            {
                Error = CountdownVerdict.NumberNotAvailable;
                return default;
            }
            return new Rational(n, 1);
        }
    }
}

/// <summary>An exact fraction Num/Den with Den &gt; 0 and gcd(Num, Den) = 1 (default is 0/1).</summary>
internal readonly struct Rational : IEquatable<Rational>
{
    private readonly BigInteger _den; // stored minus one so default(Rational) is 0/1

    public Rational(BigInteger num, BigInteger den)
    {
        if (den.IsZero) throw new DivideByZeroException();
        if (den.Sign < 0) { num = -num; den = -den; }
        var g = BigInteger.GreatestCommonDivisor(num, den);
        if (!g.IsOne && !g.IsZero) { num /= g; den /= g; }
        Num = num;
        _den = den - 1;
    }

    public BigInteger Num { get; }
    public BigInteger Den => _den + 1;
    public bool IsZero => Num.IsZero;

    public static Rational operator +(Rational a, Rational b) => new(a.Num * b.Den + b.Num * a.Den, a.Den * b.Den);
    public static Rational operator -(Rational a, Rational b) => new(a.Num * b.Den - b.Num * a.Den, a.Den * b.Den);
    public static Rational operator *(Rational a, Rational b) => new(a.Num * b.Num, a.Den * b.Den);
    public static Rational operator /(Rational a, Rational b) => new(a.Num * b.Den, a.Den * b.Num);
    public static bool operator ==(Rational a, Rational b) => a.Equals(b);
    public static bool operator !=(Rational a, Rational b) => !a.Equals(b);
    public bool Equals(Rational other) => Num == other.Num && Den == other.Den;
    public override bool Equals(object? obj) => obj is Rational r && Equals(r);
    public override int GetHashCode() => HashCode.Combine(Num, Den);
    public override string ToString() => Den.IsOne ? Num.ToString() : $"{Num}/{Den}";
}
