namespace Spark.Native.Rewards;

/// <summary>
/// Math answers: the last <c>\boxed{}</c> compared with <see cref="MathAnswer.Equivalent"/>. No box (or an empty
/// one) scores 0 with no answer.
/// </summary>
public sealed class MathVerifier : IVerifier
{
    private readonly double _relativeTolerance;

    /// <summary>Creates the verifier.</summary>
    /// <param name="relativeTolerance">Relative tolerance for numbers without a finite decimal expansion (see <see cref="MathAnswer"/>); 0: exact only.</param>
    public MathVerifier(double relativeTolerance = MathAnswer.DefaultRelativeTolerance)
    {
        Verifiers.CheckTolerance("math verifier", relativeTolerance);
        _relativeTolerance = relativeTolerance;
    }

    /// <inheritdoc/>
    public VerifierResult Score(string completion, string reference)
    {
        string? answer = BoxedAnswer.Last(completion);
        if (answer is null) return VerifierResult.NoAnswer("no boxed answer");
        bool same = MathAnswer.Equivalent(answer, reference, _relativeTolerance);
        return VerifierResult.Of(same, answer, same ? "equivalent to the reference" : "differs from the reference");
    }
}

/// <summary>
/// Exact string match of the trimmed answer and the trimmed reference, for synthetic tasks. The answer is the last
/// box's content, or with <see cref="AnswerSource.BoxedElseText"/> and no box, the whole trimmed completion.
/// </summary>
/// <param name="comparison">How strings compare, e.g. <see cref="StringComparison.OrdinalIgnoreCase"/>.</param>
/// <param name="source">Where the answer is read.</param>
public sealed class ExactMatchVerifier(StringComparison comparison = StringComparison.Ordinal, AnswerSource source = AnswerSource.BoxedElseText) : IVerifier
{
    /// <inheritdoc/>
    public VerifierResult Score(string completion, string reference)
    {
        string? answer = BoxedAnswer.Last(completion);
        if (answer is null && source == AnswerSource.BoxedElseText && completion.Trim() is { Length: > 0 } text) answer = text;
        if (answer is null) return VerifierResult.NoAnswer(source == AnswerSource.Boxed ? "no boxed answer" : "empty completion");
        bool same = string.Equals(answer, reference.Trim(), comparison);
        return VerifierResult.Of(same, answer, same ? "matches the reference" : "differs from the reference");
    }
}

/// <summary>
/// Numeric answers for synthetic tasks. The answer is the last box's content read as one number
/// (anything <see cref="MathAnswer"/> parses: <c>\frac{1}{2}</c>, <c>1.5e3</c>, <c>1,000</c>, …), else the last
/// number literal inside the box; with <see cref="AnswerSource.BoxedElseText"/> and no box, the last number literal
/// of the completion (digits, optional thousands groups, decimals, exponent, a sign not glued to a word).
/// Two integers must be equal; otherwise |a − b| ≤ tol · max(|a|, |b|).
/// </summary>
public sealed class NumericVerifier : IVerifier
{
    private readonly Rational _tolerance;
    private readonly AnswerSource _source;

    /// <summary>Creates the verifier.</summary>
    /// <param name="relativeTolerance">Relative tolerance when either side is not an integer; 0: exact only.</param>
    /// <param name="source">Where the answer is read.</param>
    public NumericVerifier(double relativeTolerance = MathAnswer.DefaultRelativeTolerance, AnswerSource source = AnswerSource.BoxedElseText)
    {
        Verifiers.CheckTolerance("numeric verifier", relativeTolerance);
        _tolerance = Rational.FromDouble(relativeTolerance);
        _source = source;
    }

    /// <inheritdoc/>
    public VerifierResult Score(string completion, string reference)
    {
        if (!TryRead(reference, out var expected, out _))
            throw new SparkException($"numeric verifier: reference '{Verifiers.Short(reference)}' is not a number");
        string? box = BoxedAnswer.Last(completion);
        string? answer;
        Rational value;
        if (box is not null)
        {
            if (!TryRead(box, out value, out answer)) return new VerifierResult(0, box, "boxed answer holds no number");
        }
        else if (_source == AnswerSource.Boxed) return VerifierResult.NoAnswer("no boxed answer");
        else
        {
            answer = LastNumber(completion);
            if (answer is null || !TryParseLiteral(answer, out value)) return VerifierResult.NoAnswer("no number in the completion");
        }
        bool same = expected == value || (!(expected.IsInteger && value.IsInteger) && Rational.WithinRelative(value, expected, _tolerance));
        return VerifierResult.Of(same, answer!, same ? "equals the reference" : "differs from the reference");
    }

    /// <summary>The whole text as one number, else its last number literal.</summary>
    private static bool TryRead(string text, out Rational value, out string? number)
    {
        number = text.Trim();
        if (MathAnswer.TryParseNumber(MathAnswer.Normalize(text), out value)) return true;
        number = LastNumber(text);
        return number is not null && TryParseLiteral(number, out value);
    }

    private static bool TryParseLiteral(string literal, out Rational value) => MathAnswer.TryParseNumber(literal.Replace(",", ""), out value);

    /// <summary>The last number literal in the last <see cref="BoxedAnswer.MaxScanChars"/> characters, or null.</summary>
    internal static string? LastNumber(string text)
    {
        var s = text.AsSpan(Math.Max(0, text.Length - BoxedAnswer.MaxScanChars));
        int bestStart = -1, bestEnd = -1, i = 0;
        while (i < s.Length)
        {
            bool startsNumber = char.IsAsciiDigit(s[i]) || (s[i] == '.' && i + 1 < s.Length && char.IsAsciiDigit(s[i + 1]));
            if (!startsNumber) { i++; continue; }
            int start = i;
            if (start > 0 && s[start - 1] is '-' or '+' && (start < 2 || !char.IsAsciiLetterOrDigit(s[start - 2]))) start--;
            while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
            while (i + 3 < s.Length && s[i] == ',' && char.IsAsciiDigit(s[i + 1]) && char.IsAsciiDigit(s[i + 2]) && char.IsAsciiDigit(s[i + 3])
                   && (i + 4 == s.Length || !char.IsAsciiDigit(s[i + 4])))
                i += 4;
            if (i + 1 < s.Length && s[i] == '.' && char.IsAsciiDigit(s[i + 1])) { i++; while (i < s.Length && char.IsAsciiDigit(s[i])) i++; }
            if (i + 1 < s.Length && s[i] is 'e' or 'E')
            {
                int j = i + 1;
                if (j < s.Length && s[j] is '+' or '-') j++;
                if (j < s.Length && char.IsAsciiDigit(s[j])) { i = j; while (i < s.Length && char.IsAsciiDigit(s[i])) i++; }
            }
            bestStart = start;
            bestEnd = i;
        }
        return bestStart < 0 ? null : s[bestStart..bestEnd].ToString();
    }
}

/// <summary>
/// Multiple choice: the boxed letter A–Z, case-insensitive. Accepted forms: <c>B</c>, <c>(B)</c>, <c>\text{B}</c>,
/// <c>\textbf{(B)}</c>, and a letter followed by <c>.</c> <c>)</c> <c>:</c> and the option text (<c>B. 42</c>, <c>(B) 42</c>).
/// The reference is a letter in any of those forms.
/// </summary>
public sealed class ChoiceVerifier : IVerifier
{
    /// <inheritdoc/>
    public VerifierResult Score(string completion, string reference)
    {
        char expected = Letter(reference) ?? throw new SparkException($"choice verifier: reference '{Verifiers.Short(reference)}' is not a letter A-Z");
        string? box = BoxedAnswer.Last(completion);
        if (box is null) return VerifierResult.NoAnswer("no boxed answer");
        if (Letter(box) is not { } letter) return new VerifierResult(0, box, "boxed answer is not a choice letter");
        return VerifierResult.Of(letter == expected, letter.ToString(), letter == expected ? "right letter" : "wrong letter");
    }

    /// <summary>The upper-case choice letter in a boxed answer, or null.</summary>
    internal static char? Letter(string text)
    {
        string s = MathAnswer.Normalize(text);
        if (s.Length >= 3 && s[0] == '(' && char.IsAsciiLetter(s[1]) && s[2] == ')') return char.ToUpperInvariant(s[1]);
        if (s.Length >= 1 && char.IsAsciiLetter(s[0]) && (s.Length == 1 || s[1] is '.' or ')' or ':')) return char.ToUpperInvariant(s[0]);
        return null;
    }
}

/// <summary>
/// SPARK judge verdicts: the boxed <c>Yes</c> / <c>No</c> (case-insensitive, optionally in <c>\text{}</c>, with a
/// trailing <c>.</c> or <c>!</c>), or for the A/B variants a choice letter as <see cref="ChoiceVerifier"/> reads it.
/// The reference is Yes, No or a letter.
/// </summary>
public sealed class VerdictVerifier : IVerifier
{
    /// <inheritdoc/>
    public VerifierResult Score(string completion, string reference)
    {
        string expected = Verdict(reference) ?? throw new SparkException($"verdict verifier: reference '{Verifiers.Short(reference)}' is not Yes, No or a letter A-Z");
        string? box = BoxedAnswer.Last(completion);
        if (box is null) return VerifierResult.NoAnswer("no boxed verdict");
        if (Verdict(box) is not { } verdict) return new VerifierResult(0, box, "boxed answer is not a verdict");
        return VerifierResult.Of(verdict == expected, verdict, verdict == expected ? "right verdict" : "wrong verdict");
    }

    /// <summary>"Yes", "No", an upper-case letter, or null.</summary>
    internal static string? Verdict(string text)
    {
        string s = MathAnswer.Normalize(text).TrimEnd('!', '.');
        if (s.Equals("yes", StringComparison.OrdinalIgnoreCase)) return "Yes";
        if (s.Equals("no", StringComparison.OrdinalIgnoreCase)) return "No";
        return ChoiceVerifier.Letter(text)?.ToString();
    }
}

/// <summary>
/// A format reward: 1 when the completion holds exactly one complete top-level box with a non-blank content and at
/// most <c>maxCharsAfterBox</c> characters (after trimming) follow it, else 0. Ignores the reference.
/// </summary>
public sealed class FormatReward : IVerifier
{
    private readonly int _maxCharsAfterBox;

    /// <summary>Creates the reward.</summary>
    /// <param name="maxCharsAfterBox">How much text may follow the box (e.g. "$." or a closing tag); default 100.</param>
    public FormatReward(int maxCharsAfterBox = 100)
    {
        if (maxCharsAfterBox < 0) throw new SparkException($"format reward: max chars after box {maxCharsAfterBox} must be >= 0");
        _maxCharsAfterBox = maxCharsAfterBox;
    }

    /// <inheritdoc/>
    public VerifierResult Score(string completion, string reference)
    {
        var boxes = BoxedAnswer.TopLevel(BoxedAnswer.Find(completion, out int offset));
        if (boxes.Count == 0) return VerifierResult.NoAnswer("no boxed answer");
        var box = boxes[^1];
        string content = completion.Substring(offset + box.ContentStart, box.ContentEnd - box.ContentStart).Trim();
        string? answer = content.Length == 0 ? null : content;
        if (boxes.Count > 1) return new VerifierResult(0, answer, $"{boxes.Count} boxes");
        if (answer is null) return new VerifierResult(0, null, "empty box");
        int after = completion.AsSpan(offset + box.End).Trim().Length;
        return after <= _maxCharsAfterBox
            ? new VerifierResult(1, answer, "one box at the end")
            : new VerifierResult(0, answer, $"{after} characters after the box");
    }
}

/// <summary>
/// A weighted mean of verifiers: reward = Σ wᵢ·rᵢ / Σ wᵢ, so it stays in [0, 1]. The answer is the first
/// non-null answer of the parts in order; the reason lists every part.
/// </summary>
public sealed class WeightedVerifier : IVerifier
{
    private readonly (IVerifier Verifier, double Weight)[] _parts;
    private readonly double _total;

    /// <summary>Creates the composition; weights must be finite and ≥ 0 with a positive sum.</summary>
    public WeightedVerifier(params (IVerifier Verifier, double Weight)[] parts)
    {
        if (parts.Length == 0) throw new SparkException("weighted verifier: no verifiers given");
        foreach (var (verifier, weight) in parts)
        {
            ArgumentNullException.ThrowIfNull(verifier);
            if (!double.IsFinite(weight) || weight < 0) throw new SparkException($"weighted verifier: weight {weight} must be finite and >= 0");
        }
        _total = parts.Sum(p => p.Weight);
        if (_total <= 0) throw new SparkException("weighted verifier: the weights sum to 0");
        _parts = [.. parts];
    }

    /// <inheritdoc/>
    public VerifierResult Score(string completion, string reference)
    {
        double sum = 0;
        string? answer = null;
        var reasons = new List<string>(_parts.Length);
        foreach (var (verifier, weight) in _parts)
        {
            var r = verifier.Score(completion, reference);
            sum += weight * r.Reward;
            answer ??= r.Answer;
            reasons.Add($"{verifier.GetType().Name} {r.Reward:0.###}: {r.Reason}");
        }
        return new VerifierResult(Math.Clamp(sum / _total, 0, 1), answer, string.Join("; ", reasons));
    }
}

/// <summary>
/// Integer answers with partial credit, a denser reward for multi-digit arithmetic: 1 when the answer (the last box,
/// else the last number of the completion) equals the reference integer; otherwise
/// <c>partialWeight</c> × the share of positions that agree when both are written as sign + digits aligned at the units
/// (a missing digit disagrees), so a near miss scores above a wild guess and below the right answer. An answer that is
/// not an integer scores 0.
/// </summary>
public sealed class DigitsVerifier : IVerifier
{
    private readonly double _partialWeight;

    /// <summary>Creates the verifier.</summary>
    /// <param name="partialWeight">The most a wrong answer can score, in [0, 1).</param>
    public DigitsVerifier(double partialWeight = 0.5)
    {
        if (!(partialWeight >= 0 && partialWeight < 1)) throw new SparkException($"digits verifier: partial weight {partialWeight} must lie in [0, 1)");
        _partialWeight = partialWeight;
    }

    /// <inheritdoc/>
    public VerifierResult Score(string completion, string reference)
    {
        if (!TryInteger(reference.Trim(), out bool negativeRef, out string digitsRef))
            throw new SparkException($"digits verifier: reference '{Verifiers.Short(reference)}' is not an integer");
        string? answer = (BoxedAnswer.Last(completion)?.Trim() ?? NumericVerifier.LastNumber(completion))?.Replace(",", "", StringComparison.Ordinal);
        if (answer is null) return VerifierResult.NoAnswer("no number in the completion");
        if (!TryInteger(answer, out bool negative, out string digits)) return new VerifierResult(0, answer, "not an integer");
        if (negative == negativeRef && digits == digitsRef) return VerifierResult.Of(true, answer, "equals the reference");
        int width = Math.Max(digits.Length, digitsRef.Length);
        int agree = negative == negativeRef ? 1 : 0;
        for (int i = 1; i <= width; i++)
            if (i <= digits.Length && i <= digitsRef.Length && digits[^i] == digitsRef[^i]) agree++;
        return new VerifierResult(_partialWeight * agree / (width + 1), answer, $"{agree} of {width + 1} sign and digit positions agree");
    }

    /// <summary>"-0042" → (true, "42"); "0" → (false, "0"); anything but an optional sign and ASCII digits (≤ 64) → false.</summary>
    private static bool TryInteger(string text, out bool negative, out string digits)
    {
        negative = text.StartsWith('-') || text.StartsWith('\u2212');
        string body = text.TrimStart('-', '+', '\u2212');
        digits = body.TrimStart('0');
        if (digits.Length == 0) (digits, negative) = ("0", false);
        return body.Length is > 0 and <= 64 && body.All(char.IsAsciiDigit) && text.Length - body.Length <= 1;
    }
}

/// <summary>The verifiers by name, for configuration files and the command line.</summary>
public static class Verifiers
{
    /// <summary>The names <see cref="Create"/> knows.</summary>
    public static IReadOnlyList<string> Names { get; } = ["math", "exact", "exact-ignore-case", "numeric", "digits", "choice", "verdict", "format"];

    /// <summary>A verifier with default settings by name (see <see cref="Names"/>).</summary>
    /// <exception cref="SparkException">Unknown name; the message lists the valid ones.</exception>
    public static IVerifier Create(string name) => name switch
    {
        "math" => new MathVerifier(),
        "exact" => new ExactMatchVerifier(),
        "exact-ignore-case" => new ExactMatchVerifier(StringComparison.OrdinalIgnoreCase),
        "numeric" => new NumericVerifier(),
        "digits" => new DigitsVerifier(),
        "choice" => new ChoiceVerifier(),
        "verdict" => new VerdictVerifier(),
        "format" => new FormatReward(),
        _ => throw new SparkException($"unknown verifier '{name}'; expected one of: {string.Join(", ", Names)}"),
    };

    internal static void CheckTolerance(string who, double tolerance)
    {
        if (!double.IsFinite(tolerance) || tolerance < 0) throw new SparkException($"{who}: relative tolerance {tolerance} must be finite and >= 0");
    }

    /// <summary>At most 40 characters of a text, on one line, for error messages.</summary>
    internal static string Short(string text)
    {
        string line = text.ReplaceLineEndings(" ");
        return line.Length <= 40 ? line : string.Concat(line.AsSpan(0, 40), "…");
    }
}
