using Spark.Native.Text;

namespace Spark.Native.Generation;

/// <summary>Settings of a <see cref="RolloutEngine"/>: how many sequences run at once and how big a forward may get.</summary>
public sealed record RolloutOptions
{
    /// <summary>KV-cache slots: the most sequences decoding at once. A finished sequence frees its slot for the next one.</summary>
    public int Slots { get; init; } = 32;

    /// <summary>
    /// Most tokens one forward processes (decode rows plus prefill chunks). Prompts longer than what is left after the
    /// decode rows are prefilled in chunks over several forwards, interleaved with the other slots' decoding.
    /// </summary>
    public int MaxTokensPerForward { get; init; } = 2048;

    /// <summary>
    /// Positions per KV slot (prompt + completion). Null: the longest prompt plus its request's
    /// <see cref="RolloutRequest.MaxCompletionTokens"/>, over all requests, capped at the model's max_position_embeddings.
    /// A completion that reaches the capacity before its own limit ends with <see cref="RolloutFinishReason.Length"/>.
    /// </summary>
    public int? Capacity { get; init; }

    /// <summary>Seed of the requests that have no <see cref="RolloutRequest.Seed"/> of their own (mixed with the request index).</summary>
    public ulong Seed { get; init; }

    /// <summary>Whether special tokens are left out of <see cref="RolloutSample.Text"/> (and of what stop strings see).</summary>
    public SkipSpecialTokens SkipSpecialTokens { get; init; } = SkipSpecialTokens.No;

    internal void Validate()
    {
        if (Slots < 1) throw new SparkException($"rollout option slots is {Slots}; expected ≥ 1");
        if (MaxTokensPerForward < 1) throw new SparkException($"rollout option max_tokens_per_forward is {MaxTokensPerForward}; expected ≥ 1");
        if (Capacity is < 2) throw new SparkException($"rollout option capacity is {Capacity}; expected ≥ 2 (a prompt token and a completion token)");
    }
}

/// <summary>
/// One prompt to complete <see cref="Samples"/> times (the G of a GRPO group). Sample i of a request draws from the
/// random stream keyed by (seed, i), where seed is <see cref="Seed"/> or, when null, derived from
/// <see cref="RolloutOptions.Seed"/> and the request's index; the stream does not depend on the slot the sample runs in
/// nor on what else is in the batch.
/// </summary>
public sealed record RolloutRequest
{
    /// <summary>The prompt's token ids (at least one).</summary>
    public required IReadOnlyList<int> Prompt { get; init; }

    /// <summary>Completions to sample from this prompt (each prefills the prompt on its own).</summary>
    public int Samples { get; init; } = 1;

    /// <summary>Logits are divided by this before sampling; 0 means greedy (argmax, ties to the lowest id).</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Keep only the k most likely tokens (ties with the k-th kept); 0 = off.</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest most-likely set whose probability reaches p; 1 = off.</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Most completion tokens (stop tokens included); reaching it sets <see cref="RolloutSample.Truncated"/>.</summary>
    public int MaxCompletionTokens { get; init; } = 256;

    /// <summary>Token ids that end a completion (kept as its last token); null means the model's EOS ids.</summary>
    public IReadOnlyList<int>? StopTokenIds { get; init; }

    /// <summary>
    /// Strings that end a completion when they appear in its decoded text (needs a tokenizer). The text is cut before the
    /// stop string; the tokens keep everything up to and including the token that completed it.
    /// </summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>This request's seed; null derives one from <see cref="RolloutOptions.Seed"/> and the request index.</summary>
    public ulong? Seed { get; init; }
}

/// <summary>Why a rollout completion ended.</summary>
public enum RolloutFinishReason
{
    /// <summary>A stop token id (EOS) was sampled; it is the completion's last token.</summary>
    Eos,
    /// <summary>A stop string appeared in the decoded text; <see cref="RolloutSample.Text"/> ends before it.</summary>
    StopString,
    /// <summary>The completion reached its token limit (or the KV capacity): it is truncated.</summary>
    Length,
}

/// <summary>One sampled completion.</summary>
/// <param name="RequestIndex">Index of its request.</param>
/// <param name="SampleIndex">Which of the request's samples (0 … Samples−1).</param>
/// <param name="Tokens">Completion token ids (without the prompt).</param>
/// <param name="LogProbs">
/// log π(token | prefix) of each token at sampling time, from the logits the token was drawn from: log softmax(logits / T)
/// at the request's temperature T over the whole vocabulary (top-k/top-p do not renormalise it), T = 1 for greedy
/// requests. Same length as <see cref="Tokens"/>.
/// </param>
/// <param name="FinishReason">Why it ended.</param>
/// <param name="Truncated">True when it ended by length (<see cref="RolloutFinishReason.Length"/>).</param>
/// <param name="StopString">The stop string that ended it, else null.</param>
/// <param name="Text">Decoded completion (without a final stop token, cut before a stop string); null without a tokenizer.</param>
public sealed record RolloutSample(int RequestIndex, int SampleIndex, IReadOnlyList<int> Tokens, float[] LogProbs,
    RolloutFinishReason FinishReason, bool Truncated, string? StopString, string? Text);

/// <summary>Counters of one <see cref="RolloutEngine.Run"/>.</summary>
/// <param name="PromptTokens">Prompt tokens prefilled (each sample prefills its prompt).</param>
/// <param name="GeneratedTokens">Completion tokens sampled.</param>
/// <param name="Elapsed">Wall time of the run.</param>
/// <param name="PeakConcurrentSlots">Most slots holding a sequence at once (≤ <see cref="RolloutOptions.Slots"/>).</param>
/// <param name="Forwards">Model forwards run.</param>
public sealed record RolloutStats(long PromptTokens, long GeneratedTokens, TimeSpan Elapsed, int PeakConcurrentSlots, int Forwards)
{
    /// <summary>Generated tokens per second of wall time (prefill time included).</summary>
    public double TokensPerSecond => Elapsed > TimeSpan.Zero ? GeneratedTokens / Elapsed.TotalSeconds : 0;
}

/// <summary>Where a run stands, reported after each forward.</summary>
/// <param name="FinishedSamples">Completions done.</param>
/// <param name="TotalSamples">Completions requested.</param>
/// <param name="GeneratedTokens">Completion tokens sampled so far.</param>
/// <param name="ActiveSlots">Slots holding a sequence after this forward's retirements.</param>
/// <param name="Elapsed">Wall time so far.</param>
public readonly record struct RolloutProgress(int FinishedSamples, int TotalSamples, long GeneratedTokens, int ActiveSlots, TimeSpan Elapsed);

/// <summary>The completions of a run, ordered by request then sample index, and its counters.</summary>
/// <param name="Samples">Every completion, request-major.</param>
/// <param name="Stats">Counters and throughput.</param>
public sealed record RolloutResult(IReadOnlyList<RolloutSample> Samples, RolloutStats Stats);
