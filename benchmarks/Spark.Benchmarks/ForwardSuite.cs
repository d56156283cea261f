using Spark.Native;
using Spark.Native.Backends;
using Spark.Native.Backends.Cpu;
using Spark.Native.Models;

namespace Spark.Benchmarks;

/// <summary>
/// Model forward throughput on the CPU backend with random weights at real shapes (values do not matter for speed):
/// prefill tokens/s (one prompt, logits of its last token, as generation does) and decode tokens/s with a KV cache
/// at batch 1 and 8.
/// </summary>
public static class ForwardSuite
{
    private sealed record Shape(string Name, int Vocab, int Hidden, int Intermediate, int Layers, int Heads, int KvHeads, bool Tied);

    private static readonly Shape[] Shapes =
    [
        new("llama-4l-h256 (performance.md CPU anchor shape)", 4096, 256, 688, 4, 8, 4, Tied: false),
        new("qwen2.5-0.5b", 151936, 896, 4864, 24, 14, 2, Tied: true),
    ];

    public static BenchSuiteResult Run(BenchOptions options)
    {
        const int prompt = 128, context = 64, decodeSteps = 16;
        var results = new List<object>();
        foreach (var shape in Shapes)
        {
            var config = ModelConfig.Parse($$"""
                {"architectures": ["{{(shape.Name.StartsWith("qwen") ? "Qwen2ForCausalLM" : "LlamaForCausalLM")}}"],
                 "vocab_size": {{shape.Vocab}}, "hidden_size": {{shape.Hidden}}, "intermediate_size": {{shape.Intermediate}},
                 "num_hidden_layers": {{shape.Layers}}, "num_attention_heads": {{shape.Heads}}, "num_key_value_heads": {{shape.KvHeads}},
                 "tie_word_embeddings": {{(shape.Tied ? "true" : "false")}}, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6}
                """);
            using var backend = new CpuBackend();
            using var arena = RandomArena(backend, config);
            using var model = new Transformer(backend, arena);
            long parameters = arena.Layout.TotalLength;
            Console.Error.WriteLine($"{shape.Name}: {parameters:N0} parameters");

            var ids = Enumerable.Range(0, prompt).Select(i => (i * 7919) % config.VocabSize).ToArray();
            var prefill = Timing.Measure(() =>
            {
                using var cache = new KvCache(backend, config, 1, prompt);
                using var logits = model.Forward(ids, [new Segment(0, 0, prompt)], cache, LogitRows.LastOfEachSegment);
            }, warmup: 1, reps: Math.Min(options.Reps, 5), minSeconds: 2);
            results.Add(Record(shape.Name, "prefill", 1, prompt, prefill, prompt, parameters));
            Console.Error.WriteLine($"  prefill T={prompt}: {prompt / (Timing.Median(prefill) / 1000):F0} tokens/s");

            foreach (int batch in new[] { 1, 8 })
            {
                using var cache = new KvCache(backend, config, batch, context + decodeSteps * 8);
                var contextIds = Enumerable.Range(0, context * batch).Select(i => (i * 31) % config.VocabSize).ToArray();
                var segments = Enumerable.Range(0, batch).Select(b => new Segment(b, 0, context)).ToArray();
                model.Forward(contextIds, segments, cache, LogitRows.LastOfEachSegment).Dispose();
                int position = context;
                var step = Enumerable.Range(0, batch).Select(b => b + 1).ToArray();
                var times = Timing.Measure(() =>
                {
                    if (position >= cache.Capacity) position = context; // rewrite the same region: the cost is identical
                    var segs = Enumerable.Range(0, batch).Select(b => new Segment(b, position, 1)).ToArray();
                    using var logits = model.Forward(step, segs, cache, LogitRows.LastOfEachSegment);
                    position++;
                }, warmup: 2, reps: decodeSteps, minSeconds: 2);
                results.Add(Record(shape.Name, "decode", batch, context, times, batch, parameters));
                Console.Error.WriteLine($"  decode batch {batch} at context {context}: {batch / (Timing.Median(times) / 1000):F1} tokens/s");
            }
        }
        var settings = new Dictionary<string, object>
        {
            ["backend"] = "cpu (f32)",
            ["prompt_tokens"] = prompt,
            ["decode_context"] = context,
            ["threads"] = Environment.ProcessorCount,
            ["weights"] = "random (throughput depends on shapes only)",
        };
        return new BenchSuiteResult(settings, results);
    }

    private static object Record(string model, string phase, int batch, int tokens, double[] times, int tokensPerRun, long parameters)
    {
        double median = Timing.Median(times);
        double tokensPerSecond = tokensPerRun / (median / 1000);
        return new
        {
            Model = model,
            Phase = phase,
            Batch = batch,
            Tokens = tokens,
            MedianMs = Math.Round(median, 3),
            TokensPerSecond = Math.Round(tokensPerSecond, 1),
            // 2·N FLOPs per token for the matmuls (attention is small at these lengths)
            ApproxGflops = Math.Round(2.0 * parameters * tokensPerSecond / 1e9, 1),
            Runs = times.Length,
        };
    }

    private static ParameterArena RandomArena(IBackend backend, ModelConfig config)
    {
        var arena = new ParameterArena(backend, new ParameterLayout(config));
        ulong state = 0x9E3779B97F4A7C15UL;
        foreach (var entry in arena.Layout.Entries)
        {
            var values = new float[entry.Length];
            float scale = entry.Shape.Length == 2 ? 1f / MathF.Sqrt(entry.Shape[1]) : 1f;
            for (int i = 0; i < values.Length; i++)
            {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                values[i] = ((state >> 40) / (float)(1 << 24) * 2 - 1) * scale;
            }
            backend.Upload(arena[entry.Name], values);
        }
        return arena;
    }
}
