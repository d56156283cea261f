using Spark.Native.Models;

namespace Spark.Native.Generation;

/// <summary>
/// Batched generation with a KV cache: one prefill forward over all prompts (concatenated segments), then one
/// decode forward per step over the sequences still running, each at its own position.
/// </summary>
internal static class Generator
{
    public static GenerationResult[] Generate(Transformer model, IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options,
        Action<GeneratedToken>? onToken)
    {
        options.Validate();
        int batch = prompts.Count;
        if (batch == 0) return [];
        var config = model.Config;
        for (int p = 0; p < batch; p++)
        {
            if (prompts[p].Count == 0) throw new SparkException($"prompt {p} is empty; generation needs at least one token");
            ValidateIds(prompts[p], config.VocabSize, $"prompt {p}");
        }
        var stop = new HashSet<int>(options.StopTokenIds ?? config.EosTokenIds);
        var outputs = Enumerable.Range(0, batch).Select(_ => new List<int>()).ToArray();
        var finish = new FinishReason[batch];
        if (options.MaxNewTokens == 0) return outputs.Select(o => new GenerationResult(o, FinishReason.Length)).ToArray();

        long needed = (long)prompts.Max(p => p.Count) + options.MaxNewTokens;
        if (needed > config.MaxPositions)
            throw new SparkException($"the longest prompt ({prompts.Max(p => p.Count)} tokens) plus max_new_tokens ({options.MaxNewTokens}) exceeds the model's max_position_embeddings ({config.MaxPositions})");
        int capacity = (int)needed;
        var backend = model.Backend;
        using var cache = new KvCache(backend, config, batch, capacity);

        // prefill: every prompt is a segment starting at position 0 of its own slot
        var active = Enumerable.Range(0, batch).ToList();
        var tokens = prompts.SelectMany(p => p).ToArray();
        var segments = prompts.Select((p, i) => new Segment(i, 0, p.Count)).ToArray();
        var length = prompts.Select(p => p.Count).ToArray();

        for (int step = 0; active.Count > 0; step++)
        {
            using var logits = model.Forward(tokens, segments, cache, LogitRows.LastOfEachSegment);
            var next = new int[active.Count];
            var rows = active.Select(b => RowSettings(options, b, step)).ToArray();
            backend.Sample(next, logits, rows);

            var stillActive = new List<int>(active.Count);
            for (int i = 0; i < active.Count; i++)
            {
                int b = active[i];
                outputs[b].Add(next[i]);
                onToken?.Invoke(new GeneratedToken(b, next[i]));
                if (stop.Contains(next[i])) finish[b] = FinishReason.Stop;
                else if (outputs[b].Count >= options.MaxNewTokens) finish[b] = FinishReason.Length;
                else stillActive.Add(b);
            }
            var nextTokens = new int[stillActive.Count];
            var nextSegments = new Segment[stillActive.Count];
            for (int i = 0; i < stillActive.Count; i++)
            {
                int b = stillActive[i];
                nextTokens[i] = outputs[b][^1];
                nextSegments[i] = new Segment(b, length[b], 1);
                length[b]++;
            }
            active = stillActive;
            tokens = nextTokens;
            segments = nextSegments;
        }
        return outputs.Select((o, b) => new GenerationResult(o, finish[b])).ToArray();
    }

    /// <summary>
    /// Prompt b draws from its own random stream, so the other prompts of a batch change its tokens only through
    /// fp32 rounding: batched matmuls may sum in another order than a prompt run alone.
    /// </summary>
    private static SamplingRow RowSettings(GenerationOptions o, int promptIndex, int step) =>
        o.Strategy == DecodingStrategy.Greedy
            ? new SamplingRow(0f, 0, 1f, 0, 0)
            : new SamplingRow(o.Temperature, o.TopK, o.TopP, CounterRng.Next(o.Seed, (ulong)promptIndex), (ulong)step);

    public static void ValidateIds(IReadOnlyList<int> ids, int vocabSize, string what)
    {
        for (int i = 0; i < ids.Count; i++)
            if ((uint)ids[i] >= (uint)vocabSize)
                throw new SparkException($"{what}: token id {ids[i]} at index {i} is outside the vocabulary [0, {vocabSize})");
    }
}
