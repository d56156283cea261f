namespace Spark.Native.Rewards.Tasks;

/// <summary>
/// One RL prompt with a verifiable answer: the user message, the reference answer a verifier compares against, and
/// which verifier to use. The verifier is named, not referenced, so tasks and datasets stay independent of the
/// verifier implementations.
/// </summary>
/// <param name="Id">A stable id: the dataset's id field, else "file:line"; for synthetic tasks "task/seed/index".</param>
/// <param name="Prompt">The user message, with the dataset's prompt suffix already appended.</param>
/// <param name="Answer">The reference answer as text (JSON numbers keep their JSON spelling, e.g. "72", "3.50").</param>
public sealed record RlProblem(string Id, string Prompt, string Answer)
{
    /// <summary>A system message rendered before the user message, or null for none.</summary>
    public string? SystemPrompt { get; init; }

    /// <summary>
    /// The verifier's name: "math" (boxed answer against <see cref="Answer"/>) by default; a synthetic task whose
    /// answers need task-specific checking puts its own name here ("countdown") and checks with
    /// <see cref="ISyntheticTask.Verify"/>.
    /// </summary>
    public string Verifier { get; init; } = VerifierNames.Math;

    /// <summary>Task data a checker needs besides the answer, as JSON text per key (countdown: "numbers" = "[25,50,3,7]", "target" = "129").</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = EmptyMetadata;

    /// <summary>Where the problem was read: "path:line"; null for generated problems.</summary>
    public string? Source { get; init; }

    private static readonly IReadOnlyDictionary<string, string> EmptyMetadata = new Dictionary<string, string>();
}

/// <summary>The verifier names problems refer to.</summary>
public static class VerifierNames
{
    /// <summary>The last \boxed{} answer compared with the reference as math (string, number, fraction, set).</summary>
    public const string Math = "math";

    /// <summary>Exact string match of the extracted answer.</summary>
    public const string Exact = "exact";

    /// <summary>The countdown task's own checker (<see cref="CountdownTask.Verify"/>).</summary>
    public const string Countdown = "countdown";
}
