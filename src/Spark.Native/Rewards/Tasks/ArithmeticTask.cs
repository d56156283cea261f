using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.RegularExpressions;

namespace Spark.Native.Rewards.Tasks;

/// <summary>The operators an arithmetic problem may use.</summary>
[Flags]
public enum ArithmeticOperators
{
    /// <summary>a + b</summary>
    Add = 1,
    /// <summary>a - b (answers may be negative)</summary>
    Subtract = 2,
    /// <summary>a * b</summary>
    Multiply = 4,
    /// <summary>All three.</summary>
    All = Add | Subtract | Multiply,
}

/// <summary>Difficulty knobs of <see cref="ArithmeticTask"/>. Every operand's digit count and the operand count are drawn uniformly from their ranges.</summary>
public sealed record ArithmeticOptions
{
    /// <summary>Fewest digits of an operand (1–18).</summary>
    public int MinDigits { get; init; } = 2;
    /// <summary>Most digits of an operand (1–18).</summary>
    public int MaxDigits { get; init; } = 3;
    /// <summary>Fewest operands (2–16).</summary>
    public int MinOperands { get; init; } = 2;
    /// <summary>Most operands (2–16).</summary>
    public int MaxOperands { get; init; } = 3;
    /// <summary>The operators drawn from, uniformly.</summary>
    public ArithmeticOperators Operators { get; init; } = ArithmeticOperators.All;
    /// <summary>The question; "{expression}" is replaced by the expression ("What is 12 + 7?", or "12 + 7 =" for a terse prompt).</summary>
    public string PromptFormat { get; init; } = "What is {expression}?";
    /// <summary>Appended to every prompt.</summary>
    public string PromptSuffix { get; init; } = @" Put your final answer in \boxed{}.";
    /// <summary>System message of every problem, or null.</summary>
    public string? SystemPrompt { get; init; }
    /// <summary>The verifier named in every problem (<see cref="VerifierNames.Math"/> reads the last \boxed{}; "numeric" also takes a bare last number).</summary>
    public string Verifier { get; init; } = VerifierNames.Math;
}

/// <summary>
/// Multi-digit integer arithmetic: "What is 482 - 37 * 51?" with the usual precedence (* before + and -), answered
/// by the exact integer. Problems carry the <see cref="VerifierNames.Math"/> verifier; <see cref="Verify"/> checks
/// the same thing on its own.
/// </summary>
public sealed partial class ArithmeticTask : ISyntheticTask
{
    private readonly ArithmeticOptions _options;
    private readonly char[] _operators;

    /// <summary>Creates the task.</summary>
    /// <exception cref="SparkException">An option is out of range.</exception>
    public ArithmeticTask(ArithmeticOptions? options = null)
    {
        _options = options ?? new ArithmeticOptions();
        var o = _options;
        if (o.MinDigits < 1 || o.MaxDigits > 18 || o.MinDigits > o.MaxDigits) throw new SparkException($"arithmetic digits {o.MinDigits}–{o.MaxDigits} must lie within 1–18, min ≤ max");
        if (o.MinOperands < 2 || o.MaxOperands > 16 || o.MinOperands > o.MaxOperands) throw new SparkException($"arithmetic operands {o.MinOperands}–{o.MaxOperands} must lie within 2–16, min ≤ max");
        _operators = [.. new[] { (ArithmeticOperators.Add, '+'), (ArithmeticOperators.Subtract, '-'), (ArithmeticOperators.Multiply, '*') }
            .Where(x => o.Operators.HasFlag(x.Item1)).Select(x => x.Item2)];
        if (_operators.Length == 0) throw new SparkException("arithmetic needs at least one operator");
        if (!o.PromptFormat.Contains("{expression}", StringComparison.Ordinal))
            throw new SparkException($"arithmetic prompt format '{o.PromptFormat}' lacks the {{expression}} placeholder");
    }

    /// <inheritdoc/>
    public string Name => "arithmetic";

    /// <inheritdoc/>
    public IReadOnlyList<RlProblem> Generate(ulong seed, int count)
    {
        if (count < 0) throw new SparkException($"problem count {count} is negative");
        var problems = new RlProblem[count];
        for (int i = 0; i < count; i++)
        {
            var rng = TaskRandom.ForProblem(seed, i);
            int n = (int)rng.Range(_options.MinOperands, _options.MaxOperands);
            var operands = new long[n];
            var ops = new char[n - 1];
            for (int k = 0; k < n; k++)
            {
                int digits = (int)rng.Range(_options.MinDigits, _options.MaxDigits);
                operands[k] = digits == 1 ? rng.Range(0, 9) : rng.Range(Pow10(digits - 1), Pow10(digits) - 1);
                if (k > 0) ops[k - 1] = _operators[rng.Below(_operators.Length)];
            }
            var expression = new StringBuilder().Append(operands[0].ToString(CultureInfo.InvariantCulture));
            for (int k = 1; k < n; k++) expression.Append(' ').Append(ops[k - 1]).Append(' ').Append(operands[k].ToString(CultureInfo.InvariantCulture));
            problems[i] = new RlProblem($"arithmetic/{seed}/{i}", _options.PromptFormat.Replace("{expression}", expression.ToString(), StringComparison.Ordinal) + _options.PromptSuffix,
                Evaluate(operands, ops).ToString(CultureInfo.InvariantCulture))
            {
                SystemPrompt = _options.SystemPrompt,
                Verifier = _options.Verifier,
            };
        }
        return problems;
    }

    /// <summary>
    /// 1 when the answer equals the reference integer, else 0. The answer is the last \boxed{} (which must hold just
    /// an integer, thousands separators and spaces allowed), or, when the completion opens no box, the last integer of
    /// its last line. A box that is never closed (a truncated answer) scores 0.
    /// </summary>
    public double Verify(string completion, RlProblem problem)
    {
        ArgumentNullException.ThrowIfNull(completion);
        ArgumentNullException.ThrowIfNull(problem);
        if (!BigInteger.TryParse(problem.Answer, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var expected))
            throw new SparkException($"problem {problem.Id}: answer '{problem.Answer}' is not an integer");
        string? candidate = AnswerText.LastBoxed(completion);
        if (candidate is null)
        {
            if (completion.Contains(@"\box", StringComparison.Ordinal)) return 0;
            var matches = IntegerPattern().Matches(AnswerText.LastLine(completion));
            if (matches.Count == 0) return 0;
            candidate = matches[^1].Value;
        }
        return TryParseInteger(candidate, out var got) && got == expected ? 1 : 0;
    }

    /// <summary>Sum of products: * binds tighter than + and -.</summary>
    internal static BigInteger Evaluate(long[] operands, char[] ops)
    {
        BigInteger total = 0, term = operands[0];
        int sign = 1;
        for (int k = 0; k < ops.Length; k++)
        {
            if (ops[k] == '*') { term *= operands[k + 1]; continue; }
            total += sign * term;
            sign = ops[k] == '-' ? -1 : 1;
            term = operands[k + 1];
        }
        return total + sign * term;
    }

    private static bool TryParseInteger(string text, out BigInteger value)
    {
        value = default;
        if (text.Length > 64) return false;
        string s = text.Replace(@"\,", "", StringComparison.Ordinal).Replace("{,}", "", StringComparison.Ordinal)
            .Replace("$", "", StringComparison.Ordinal).Replace('\u2212', '-').Trim().TrimEnd('.');
        s = string.Concat(s.Where(c => c != ',' && !char.IsWhiteSpace(c)));
        return s.Length > 0 && s.Skip(s[0] is '-' or '+' ? 1 : 0).All(char.IsAsciiDigit) && s.Any(char.IsAsciiDigit)
            && BigInteger.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);
    }

    private static long Pow10(int n)
    {
        long p = 1;
        for (int i = 0; i < n; i++) p *= 10;
        return p;
    }

    [GeneratedRegex(@"[-\u2212]?\d[\d,]*")]
    private static partial Regex IntegerPattern();
}
