namespace Spark.Native.Rewards;

/// <summary>
/// Scores one completion against the reference answer of its prompt. Implementations are pure, thread-safe and
/// bounded in time: they read at most the last <see cref="BoxedAnswer.MaxScanChars"/> characters of a completion and
/// never backtrack, so pathological model output cannot stall a training step.
/// </summary>
public interface IVerifier
{
    /// <summary>Scores <paramref name="completion"/> (the generated text) against <paramref name="reference"/> (the label).</summary>
    /// <exception cref="SparkException">The reference cannot be used by this verifier (e.g. a choice label that is not a letter).</exception>
    VerifierResult Score(string completion, string reference);
}

/// <summary>The outcome of one verification.</summary>
/// <param name="Reward">In [0, 1]; the rule-based verifiers give 0 or 1, <see cref="WeightedVerifier"/> a weighted mean.</param>
/// <param name="Answer">The final answer extracted from the completion (e.g. the content of the last <c>\boxed{}</c>), or null when none could be extracted.</param>
/// <param name="Reason">A few words for logs: why the reward is what it is.</param>
public sealed record VerifierResult(double Reward, string? Answer, string Reason)
{
    /// <summary>Whether a final answer could be extracted; SPARK recycling only turns such wrong rollouts into judge items.</summary>
    public bool HasAnswer => Answer is not null;

    internal static VerifierResult NoAnswer(string reason) => new(0, null, reason);

    internal static VerifierResult Of(bool correct, string answer, string reason) => new(correct ? 1 : 0, answer, reason);
}

/// <summary>Where a verifier looks for the answer in a completion.</summary>
public enum AnswerSource
{
    /// <summary>Only the content of the last <c>\boxed{}</c> / <c>\box{}</c>; no box means no answer.</summary>
    Boxed,

    /// <summary>The last box when there is one, otherwise the text itself (what that means is up to the verifier).</summary>
    BoxedElseText,
}
