using System.Buffers;
using System.Diagnostics;
using System.Numerics.Tensors;
using System.Text;
using Spark.Native.Models;
using Spark.Native.Text;

namespace Spark.Native.Generation;

// Dimension legend: S slots, C capacity (positions per slot), R sampled rows of a forward (decode rows and prompts whose
// last chunk ran in it), V vocabulary.

/// <summary>
/// The rollout engine: samples many completions from the live weights of a <see cref="SparkModel"/> (no copy, so what a
/// trainer updates is what the next run samples), with continuous batching over a fixed number of KV-cache slots.
/// </summary>
/// <remarks>
/// <para>
/// Each forward holds one decode row per running sequence plus prefill chunks of newly admitted prompts, up to
/// <see cref="RolloutOptions.MaxTokensPerForward"/> tokens; the segments whose last row yields a next token come first,
/// so the sampled logits are the first R rows. A sequence that ends (stop token, stop string, length) leaves its slot at
/// once and the next waiting sample takes it in the following forward.
/// </para>
/// <para>
/// Reproducibility: sample i of a request draws its n-th token with <see cref="CounterRng"/>(stream(seed, i), n), so the
/// random numbers do not depend on slot assignment or batch composition. The logits can: a batch of other size may sum
/// a matmul in another fp32 order (on the CPU a one-row matmul is a matrix–vector product, several rows use the packed
/// GEMM), so tokens of a near-tie may differ between runs with different <see cref="RolloutOptions.Slots"/>; runs with
/// the same options and requests are identical on the CPU.
/// </para>
/// <para>
/// Log-probs are computed on the host from the downloaded [R, V] logits of the step (float32 log-softmax at the request's
/// temperature), the same numbers the backend's sampler saw. On a GPU that is an R × V download per step; a fused
/// sample-and-log-prob op would avoid it. The G samples of a prompt each prefill the prompt; sharing its KV rows is
/// future work.
/// </para>
/// </remarks>
public sealed class RolloutEngine
{
    private readonly SparkModel _model;
    private readonly RolloutOptions _options;
    private readonly Tokenizer? _tokenizer;

    /// <summary>An engine over <paramref name="model"/>'s weights; <paramref name="tokenizer"/> enables text and stop strings.</summary>
    public RolloutEngine(SparkModel model, RolloutOptions? options = null, Tokenizer? tokenizer = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _options = options ?? new RolloutOptions();
        _options.Validate();
        _tokenizer = tokenizer;
    }

    /// <summary>The engine's settings.</summary>
    public RolloutOptions Options => _options;

    /// <summary>
    /// Samples every request's completions. Results are ordered by request, then sample index, whatever order they
    /// finished in. <paramref name="onProgress"/> is called after each forward. Not thread-safe (one model, one call).
    /// </summary>
    /// <exception cref="SparkException">A request is invalid (empty prompt, no samples, prompt too long, bad settings).</exception>
    public RolloutResult Run(IReadOnlyList<RolloutRequest> requests, Action<RolloutProgress>? onProgress = null)
    {
        ArgumentNullException.ThrowIfNull(requests);
        _model.ThrowIfDisposed();
        var clock = Stopwatch.StartNew();
        var transformer = _model.Transformer;
        var backend = transformer.Backend;
        var config = transformer.Config;
        var (sequences, capacity) = Plan(requests, config);
        int total = sequences.Length;
        if (total == 0) return new RolloutResult([], new RolloutStats(0, 0, clock.Elapsed, 0, 0));

        int slotCount = Math.Min(_options.Slots, total);
        int v = config.VocabSize;
        using var cache = new KvCache(backend, config, slotCount, capacity);
        var slots = new Sequence?[slotCount];
        var waiting = new Queue<Sequence>(sequences);
        var running = new List<Sequence>(slotCount); // admission order
        var results = new RolloutSample[total];
        var hostLogits = new float[(long)slotCount * v];
        long promptTokens = 0, generated = 0;
        int peak = 0, forwards = 0, finished = 0;

        while (waiting.Count > 0 || running.Count > 0)
        {
            for (int s = 0; s < slotCount && waiting.Count > 0; s++)
            {
                if (slots[s] is not null) continue;
                var admitted = waiting.Dequeue();
                admitted.Slot = s;
                slots[s] = admitted;
                running.Add(admitted);
            }
            peak = Math.Max(peak, running.Count);

            // Plan one forward. Sampled segments first: decode rows, then prompts whose last chunk fits the budget.
            var sampled = new List<Sequence>();
            var partial = new List<Sequence>();
            var chunk = new Dictionary<Sequence, int>();
            int budget = _options.MaxTokensPerForward;
            foreach (var q in running)
            {
                if (q.Prefilling) continue;
                sampled.Add(q);
                chunk[q] = 1;
                budget--;
            }
            foreach (var q in running)
            {
                if (!q.Prefilling || budget <= 0) continue;
                int n = Math.Min(q.Prompt.Count - q.Cached, budget);
                budget -= n;
                chunk[q] = n;
                (q.Cached + n == q.Prompt.Count ? sampled : partial).Add(q);
            }
            var order = sampled.Concat(partial).ToArray();
            var segments = new Segment[order.Length];
            var tokens = new List<int>();
            for (int i = 0; i < order.Length; i++)
            {
                var q = order[i];
                int n = chunk[q];
                segments[i] = new Segment(q.Slot, q.Cached, n);
                if (q.Prefilling)
                {
                    for (int j = 0; j < n; j++) tokens.Add(q.Prompt[q.Cached + j]);
                    promptTokens += n;
                }
                else tokens.Add(q.Tokens[^1]);
                q.Cached += n;
            }

            using (var logits = transformer.Forward(tokens.ToArray(), segments, cache, LogitRows.LastOfEachSegment))
            {
                forwards++;
                int r = sampled.Count;
                if (r > 0)
                {
                    var rows = logits.Rows(0, r);
                    var next = new int[r];
                    backend.Sample(next, rows, sampled.Select(q => q.Row()).ToArray());
                    var host = hostLogits.AsSpan(0, r * v);
                    backend.Download(host, rows);
                    var logProbs = new float[r];
                    var hostArray = hostLogits;
                    Parallel.For(0, r, new ParallelOptions { MaxDegreeOfParallelism = r * (long)v >= 1 << 16 ? -1 : 1 }, i =>
                        logProbs[i] = LogProb(hostArray.AsSpan(i * v, v), next[i], sampled[i].Temperature));
                    for (int i = 0; i < r; i++)
                    {
                        var q = sampled[i];
                        generated++;
                        if (q.Append(next[i], logProbs[i]) is not { } done) continue;
                        results[q.Id] = done;
                        slots[q.Slot] = null;
                        running.Remove(q);
                        finished++;
                    }
                }
            }
            onProgress?.Invoke(new RolloutProgress(finished, total, generated, running.Count, clock.Elapsed));
        }
        GC.KeepAlive(_model); // ops read native memory through raw spans: the weights must outlive the call
        return new RolloutResult(results, new RolloutStats(promptTokens, generated, clock.Elapsed, peak, forwards));
    }

    /// <summary>
    /// log softmax(logits / T)[token] over logits [V], T = <paramref name="temperature"/> (1 when ≤ 0, i.e. greedy):
    /// shifted by the max, exponentiated and summed in float32 (TensorPrimitives), the log and the difference in float64.
    /// </summary>
    internal static float LogProb(ReadOnlySpan<float> logits, int token, float temperature)
    {
        float invT = temperature > 0f ? 1f / temperature : 1f;
        float max = TensorPrimitives.Max(logits);
        float[] rented = ArrayPool<float>.Shared.Rent(logits.Length);
        var scratch = rented.AsSpan(0, logits.Length);
        TensorPrimitives.Subtract(logits, max, scratch);
        TensorPrimitives.Multiply(scratch, invT, scratch);
        double shiftedToken = scratch[token];
        TensorPrimitives.Exp(scratch, scratch);
        double sum = TensorPrimitives.Sum<float>(scratch);
        ArrayPool<float>.Shared.Return(rented);
        return (float)(shiftedToken - Math.Log(sum));
    }

    /// <summary>Validates the requests and lays out one <see cref="Sequence"/> per sample, request-major.</summary>
    private (Sequence[] Sequences, int Capacity) Plan(IReadOnlyList<RolloutRequest> requests, ModelConfig config)
    {
        int maxPositions = config.MaxPositions;
        if (_options.Capacity > maxPositions)
            throw new SparkException($"rollout option capacity ({_options.Capacity}) exceeds the model's max_position_embeddings ({maxPositions})");
        long wanted = 0;
        for (int r = 0; r < requests.Count; r++)
        {
            var q = requests[r] ?? throw new SparkException($"rollout request {r} is null");
            string what = $"rollout request {r}";
            if (q.Prompt is null || q.Prompt.Count == 0) throw new SparkException($"{what}: the prompt is empty; a rollout needs at least one prompt token");
            if (q.Samples < 1) throw new SparkException($"{what}: samples is {q.Samples}; expected ≥ 1 completion per prompt");
            if (!(q.Temperature >= 0f) || float.IsInfinity(q.Temperature))
                throw new SparkException($"{what}: temperature is {q.Temperature}; expected a finite value ≥ 0 (0 = greedy)");
            if (q.TopK < 0) throw new SparkException($"{what}: top_k is {q.TopK}; expected ≥ 0 (0 = off)");
            if (!(q.TopP > 0f && q.TopP <= 1f)) throw new SparkException($"{what}: top_p is {q.TopP}; expected in (0, 1]");
            if (q.MaxCompletionTokens < 1) throw new SparkException($"{what}: max_completion_tokens is {q.MaxCompletionTokens}; expected ≥ 1");
            Generator.ValidateIds(q.Prompt, config.VocabSize, $"{what}, prompt");
            if (q.StopTokenIds is not null) Generator.ValidateIds(q.StopTokenIds, config.VocabSize, $"{what}, stop token ids");
            if (q.StopStrings is null || q.StopStrings.Any(string.IsNullOrEmpty))
                throw new SparkException($"{what}: stop strings must be non-empty strings");
            if (q.StopStrings.Count > 0 && _tokenizer is null)
                throw new SparkException($"{what}: stop strings need a tokenizer; pass one to the RolloutEngine");
            wanted = Math.Max(wanted, (long)q.Prompt.Count + q.MaxCompletionTokens);
        }
        int capacity = _options.Capacity ?? (int)Math.Min(wanted, maxPositions);

        var sequences = new List<Sequence>();
        for (int r = 0; r < requests.Count; r++)
        {
            var q = requests[r];
            if (q.Prompt.Count >= capacity)
                throw new SparkException($"rollout request {r}: the prompt has {q.Prompt.Count} tokens, which leaves no room for a completion in the KV capacity of {capacity} positions"
                    + (_options.Capacity is null ? $" (max_position_embeddings {maxPositions})" : ""));
            ulong seed = q.Seed ?? CounterRng.Next(_options.Seed, (ulong)r);
            var stopIds = new HashSet<int>(q.StopTokenIds ?? config.EosTokenIds);
            int limit = Math.Min(q.MaxCompletionTokens, capacity - q.Prompt.Count);
            for (int i = 0; i < q.Samples; i++)
                sequences.Add(new Sequence(sequences.Count, r, i, q, CounterRng.Next(seed, (ulong)i), limit, stopIds,
                    _tokenizer, _options.SkipSpecialTokens));
        }
        return (sequences.ToArray(), capacity);
    }

    /// <summary>One sample in flight: its prompt, cache progress, completion so far and stop rules.</summary>
    private sealed class Sequence(int id, int requestIndex, int sampleIndex, RolloutRequest request, ulong stream, int limit,
        HashSet<int> stopIds, Tokenizer? tokenizer, SkipSpecialTokens skip)
    {
        private readonly List<float> _logProbs = [];
        private readonly IncrementalDecoder? _decoder = tokenizer?.CreateIncrementalDecoder(skip);
        private readonly StringBuilder? _text = tokenizer is null ? null : new StringBuilder();
        private readonly int _longestStop = request.StopStrings.Count == 0 ? 0 : request.StopStrings.Max(s => s.Length);

        /// <summary>Position in the run's result list.</summary>
        public int Id { get; } = id;
        public IReadOnlyList<int> Prompt { get; } = request.Prompt;
        public float Temperature { get; } = request.Temperature;
        public int Slot { get; set; } = -1;
        /// <summary>Tokens whose keys and values are in the slot.</summary>
        public int Cached { get; set; }
        public bool Prefilling => Cached < Prompt.Count;
        public List<int> Tokens { get; } = [];

        /// <summary>Sampling settings of the next token: draw number Tokens.Count of this sample's stream.</summary>
        public SamplingRow Row() => new(request.Temperature, request.TopK, request.TopP, stream, (ulong)Tokens.Count);

        /// <summary>Adds a sampled token; returns the finished sample when a stop rule fires, else null.</summary>
        public RolloutSample? Append(int token, float logProb)
        {
            Tokens.Add(token);
            _logProbs.Add(logProb);
            if (stopIds.Contains(token)) return Finish(RolloutFinishReason.Eos, null);
            if (_text is not null && (uint)token < (uint)tokenizer!.VocabSize) // ids past the tokenizer (padded vocabularies) have no text
            {
                int before = _text.Length;
                _text.Append(_decoder!.Append(token));
                if (_longestStop > 0 && _text.Length > before && FindStop(before) is { } hit)
                {
                    _text.Length = hit.Index;
                    return Finish(RolloutFinishReason.StopString, hit.Stop);
                }
            }
            return Tokens.Count >= limit ? Finish(RolloutFinishReason.Length, null) : null;
        }

        /// <summary>The earliest stop string that ends in the text appended from <paramref name="before"/> on.</summary>
        private (int Index, string Stop)? FindStop(int before)
        {
            int start = Math.Max(0, before - (_longestStop - 1));
            string window = _text!.ToString(start, _text.Length - start);
            (int Index, string Stop)? best = null;
            foreach (string stop in request.StopStrings)
            {
                int at = window.IndexOf(stop, StringComparison.Ordinal);
                if (at >= 0 && (best is null || start + at < best.Value.Index)) best = (start + at, stop);
            }
            return best;
        }

        private RolloutSample Finish(RolloutFinishReason reason, string? stop)
        {
            if (reason != RolloutFinishReason.StopString) _text?.Append(_decoder!.Flush());
            return new RolloutSample(requestIndex, sampleIndex, Tokens.ToArray(), _logProbs.ToArray(), reason,
                Truncated: reason == RolloutFinishReason.Length, stop, _text?.ToString());
        }
    }
}
