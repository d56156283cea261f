using System.Globalization;
using System.Numerics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Spark.Native.Rewards.Tasks;

/// <summary>Difficulty knobs of <see cref="CountdownTask"/>.</summary>
public sealed record CountdownOptions
{
    /// <summary>Fewest given numbers (2–8).</summary>
    public int MinNumbers { get; init; } = 3;
    /// <summary>Most given numbers (2–8).</summary>
    public int MaxNumbers { get; init; } = 4;
    /// <summary>Smallest given number (≥ 1).</summary>
    public int MinNumber { get; init; } = 1;
    /// <summary>Largest given number (≤ 1,000,000).</summary>
    public int MaxNumber { get; init; } = 99;
    /// <summary>Smallest target (≥ 1).</summary>
    public int MinTarget { get; init; } = 1;
    /// <summary>Largest target.</summary>
    public int MaxTarget { get; init; } = 999;
    /// <summary>Appended to every prompt.</summary>
    public string PromptSuffix { get; init; } = @" Put the expression in \boxed{}, e.g. \boxed{(1 + 2) * 3}.";
    /// <summary>System message of every problem, or null.</summary>
    public string? SystemPrompt { get; init; }
}

/// <summary>
/// Countdown: reach a target from given numbers with + - * / and parentheses, each number at most once. The
/// generator draws the numbers, then combines all of them in a random order with random operators, keeping every
/// intermediate value a positive integer, until the result lands in the target range; that constructing expression is
/// the problem's <see cref="RlProblem.Answer"/>, so every problem is solvable. Any other expression that reaches the
/// target is accepted too (<see cref="CountdownChecker"/>). Metadata: "numbers" (JSON array) and "target".
/// </summary>
public sealed class CountdownTask : ISyntheticTask
{
    private const int MaxAttempts = 10_000;
    private readonly CountdownOptions _o;

    /// <summary>Creates the task.</summary>
    /// <exception cref="SparkException">An option is out of range.</exception>
    public CountdownTask(CountdownOptions? options = null)
    {
        _o = options ?? new CountdownOptions();
        if (_o.MinNumbers < 2 || _o.MaxNumbers > 8 || _o.MinNumbers > _o.MaxNumbers) throw new SparkException($"countdown number count {_o.MinNumbers}–{_o.MaxNumbers} must lie within 2–8, min ≤ max");
        if (_o.MinNumber < 1 || _o.MaxNumber > 1_000_000 || _o.MinNumber > _o.MaxNumber) throw new SparkException($"countdown numbers {_o.MinNumber}–{_o.MaxNumber} must lie within 1–1000000, min ≤ max");
        if (_o.MinTarget < 1 || _o.MinTarget > _o.MaxTarget) throw new SparkException($"countdown targets {_o.MinTarget}–{_o.MaxTarget} must be ≥ 1, min ≤ max");
    }

    /// <inheritdoc/>
    public string Name => "countdown";

    /// <inheritdoc/>
    /// <exception cref="SparkException">No target in range was reached in 10,000 draws (the ranges do not fit together).</exception>
    public IReadOnlyList<RlProblem> Generate(ulong seed, int count)
    {
        if (count < 0) throw new SparkException($"problem count {count} is negative");
        var problems = new RlProblem[count];
        for (int i = 0; i < count; i++)
        {
            var rng = TaskRandom.ForProblem(seed, i);
            (int[] numbers, int target, string expression) = Construct(ref rng)
                ?? throw new SparkException($"countdown: no target in {_o.MinTarget}–{_o.MaxTarget} reached from {_o.MinNumbers}–{_o.MaxNumbers} numbers in {_o.MinNumber}–{_o.MaxNumber} after {MaxAttempts} draws; widen the target range");
            string list = string.Join(", ", numbers.Select(n => n.ToString(CultureInfo.InvariantCulture)));
            problems[i] = new RlProblem($"countdown/{seed}/{i}",
                $"Using the numbers {list}, write an arithmetic expression that equals {target.ToString(CultureInfo.InvariantCulture)}. " +
                $"You may use +, -, *, / and parentheses, and each number at most once.{_o.PromptSuffix}",
                expression)
            {
                SystemPrompt = _o.SystemPrompt,
                Verifier = VerifierNames.Countdown,
                Metadata = new Dictionary<string, string>
                {
                    ["numbers"] = $"[{string.Join(",", numbers.Select(n => n.ToString(CultureInfo.InvariantCulture)))}]",
                    ["target"] = target.ToString(CultureInfo.InvariantCulture),
                },
            };
        }
        return problems;
    }

    /// <summary>1 when the completion's expression (see <see cref="CountdownChecker.ExtractExpression"/>) is <see cref="CountdownVerdict.Correct"/>, else 0.</summary>
    /// <exception cref="SparkException">The problem lacks "numbers" (a JSON array of integers) or "target" (an integer) metadata.</exception>
    public double Verify(string completion, RlProblem problem)
    {
        ArgumentNullException.ThrowIfNull(problem);
        var (numbers, target) = ReadMetadata(problem);
        return CountdownChecker.CheckCompletion(completion, numbers, target) == CountdownVerdict.Correct ? 1 : 0;
    }

    /// <summary>The numbers and target of a countdown problem.</summary>
    internal static (int[] Numbers, int Target) ReadMetadata(RlProblem problem)
    {
        int[]? numbers = null;
        if (problem.Metadata.TryGetValue("numbers", out string? n))
        {
            try
            {
                if (JsonNode.Parse(n) is JsonArray array && array.All(x => x is JsonValue v && v.TryGetValue(out int _)))
                    numbers = [.. array.Select(x => x!.GetValue<int>())];
            }
            catch (JsonException) { }
        }
        if (numbers is null) throw new SparkException($"problem {problem.Id}: countdown needs metadata 'numbers' as a JSON array of integers");
        if (!problem.Metadata.TryGetValue("target", out string? t) || !int.TryParse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int target))
            throw new SparkException($"problem {problem.Id}: countdown needs metadata 'target' as an integer");
        return (numbers, target);
    }

    private (int[] Numbers, int Target, string Expression)? Construct(ref TaskRandom rng)
    {
        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            int count = (int)rng.Range(_o.MinNumbers, _o.MaxNumbers);
            var numbers = new int[count];
            var items = new List<(BigInteger Value, string Text, int Precedence)>(count);
            for (int k = 0; k < count; k++)
            {
                numbers[k] = (int)rng.Range(_o.MinNumber, _o.MaxNumber);
                items.Add((numbers[k], numbers[k].ToString(CultureInfo.InvariantCulture), 3));
            }
            while (items.Count > 1)
            {
                int a = rng.Below(items.Count);
                int b = rng.Below(items.Count - 1);
                if (b >= a) b++;
                var combined = Combine(items[a], items[b], ref rng);
                items[Math.Min(a, b)] = combined;
                items.RemoveAt(Math.Max(a, b));
            }
            var (value, text, _) = items[0];
            if (value >= _o.MinTarget && value <= _o.MaxTarget) return (numbers, (int)value, text);
        }
        return null;
    }

    /// <summary>Combines two positive integers with a random operator whose result is a positive integer (+ and * always are).</summary>
    private static (BigInteger, string, int) Combine((BigInteger Value, string Text, int Precedence) x, (BigInteger Value, string Text, int Precedence) y, ref TaskRandom rng)
    {
        char op = "+-*/"[rng.Below(4)];
        if (op == '-' || op == '/')
        {
            if (x.Value < y.Value) (x, y) = (y, x);
            if (op == '-' && x.Value == y.Value) op = "+*"[rng.Below(2)];
            if (op == '/' && !(x.Value % y.Value).IsZero) op = "+-*"[rng.Below(3)];
            if (op == '-' && x.Value == y.Value) op = '+';
        }
        int precedence = op is '+' or '-' ? 1 : 2;
        string left = x.Precedence < precedence ? $"({x.Text})" : x.Text;
        string right = y.Precedence < precedence || (y.Precedence == precedence && op is '-' or '/') ? $"({y.Text})" : y.Text;
        BigInteger value = op switch { '+' => x.Value + y.Value, '-' => x.Value - y.Value, '*' => x.Value * y.Value, _ => x.Value / y.Value };
        return (value, $"{left} {op} {right}", precedence);
    }
}
