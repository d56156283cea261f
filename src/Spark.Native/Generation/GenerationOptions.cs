namespace Spark.Native.Generation;

/// <summary>How the next token is chosen.</summary>
public enum DecodingStrategy
{
    /// <summary>Draw from the temperature/top-k/top-p filtered distribution, reproducibly from <see cref="GenerationOptions.Seed"/>.</summary>
    Sample,
    /// <summary>Always the most likely token (ties: lowest id).</summary>
    Greedy,
}

/// <summary>Why a sequence stopped.</summary>
public enum FinishReason
{
    /// <summary>A stop token (an EOS id) was generated; it is the last token of the output.</summary>
    Stop,
    /// <summary><see cref="GenerationOptions.MaxNewTokens"/> tokens were generated.</summary>
    Length,
}

/// <summary>
/// Settings of one <c>Generate</c> call. Defaults are Hugging Face <c>GenerationConfig</c>'s with <c>do_sample=True</c>
/// (temperature 1, top-k 50, top-p 1); <see cref="SparkModel.LoadGenerationDefaults"/> reads a model's own.
/// </summary>
public sealed record GenerationOptions
{
    /// <summary>Most tokens to generate per prompt.</summary>
    public int MaxNewTokens { get; init; } = 64;
    /// <summary>Sampling or greedy decoding.</summary>
    public DecodingStrategy Strategy { get; init; } = DecodingStrategy.Sample;
    /// <summary>Logits are divided by this before sampling; must be &gt; 0 when sampling.</summary>
    public float Temperature { get; init; } = 1f;
    /// <summary>Keep only the k most likely tokens (ties with the k-th kept); 0 = off.</summary>
    public int TopK { get; init; } = 50;
    /// <summary>Keep the smallest most-likely set whose probability reaches p; 1 = off.</summary>
    public float TopP { get; init; } = 1f;
    /// <summary>Seed of the random streams: the same seed, prompts and options give the same tokens.</summary>
    public ulong Seed { get; init; }
    /// <summary>Token ids that end a sequence; null means the model's EOS ids (config.json and generation_config.json).</summary>
    public IReadOnlyList<int>? StopTokenIds { get; init; }

    /// <summary>Greedy decoding of up to <paramref name="maxNewTokens"/> tokens.</summary>
    public static GenerationOptions Greedy(int maxNewTokens) => new() { MaxNewTokens = maxNewTokens, Strategy = DecodingStrategy.Greedy };

    internal void Validate()
    {
        if (MaxNewTokens < 0 || MaxNewTokens > 1 << 24) throw new SparkException($"generation option max_new_tokens is {MaxNewTokens}; expected 0 … 16777216");
        if (Strategy == DecodingStrategy.Sample && !(Temperature > 0f) ) throw new SparkException($"generation option temperature is {Temperature}; expected > 0 when sampling (use greedy decoding for temperature 0)");
        if (TopK < 0) throw new SparkException($"generation option top_k is {TopK}; expected ≥ 0 (0 = off)");
        if (!(TopP > 0f && TopP <= 1f)) throw new SparkException($"generation option top_p is {TopP}; expected in (0, 1]");
    }
}

/// <summary>The output of one prompt: the generated tokens (without the prompt) and why generation stopped.</summary>
public sealed record GenerationResult(IReadOnlyList<int> Tokens, FinishReason FinishReason);

/// <summary>A token produced during generation, reported as it is sampled (for streaming).</summary>
/// <param name="PromptIndex">Which prompt of the batch it belongs to.</param>
/// <param name="Token">The token id.</param>
public readonly record struct GeneratedToken(int PromptIndex, int Token);
