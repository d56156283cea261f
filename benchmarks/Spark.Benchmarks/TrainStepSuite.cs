using Spark.Native;
using Spark.Native.Backends;
using Spark.Native.Backends.Cpu;
using Spark.Native.Models;
using Spark.Native.Training;

namespace Spark.Benchmarks;

/// <summary>
/// One full training step on the CPU backend: forward + backward (TrainingGraph) + global-norm clipping + AdamW,
/// fp32, on the 4-layer Llama of performance.md's CPU anchor (hidden 256, 8 heads / 4 kv, intermediate 688,
/// vocab 4096) at batch 8 × 128. The peer is benchmarks/train_step_torch.py (the same step in PyTorch).
/// </summary>
public static class TrainStepSuite
{
    public static BenchSuiteResult Run(BenchOptions options)
    {
        const int batch = 8, length = 128;
        var config = ModelConfig.Parse("""
            {"architectures": ["LlamaForCausalLM"], "vocab_size": 4096, "hidden_size": 256, "intermediate_size": 688,
             "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 4, "tie_word_embeddings": false,
             "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "max_position_embeddings": 2048}
            """);
        using var backend = new CpuBackend();
        var layout = new ParameterLayout(config);
        using var parameters = new ParameterArena(backend, layout);
        Randomize(backend, parameters);
        using var model = new Transformer(backend, parameters);
        using var graph = new TrainingGraph(model, batch * length);
        using var gradients = new ParameterArena(backend, layout);
        using var state = new TrainingState(backend, layout, new OptimizerSettings { LearningRate = 1e-4 });

        var tokens = Enumerable.Range(0, batch * length).Select(i => (int)((uint)(i * 2654435761u) % 4096)).ToArray();
        var targets = tokens.Select((_, i) => i % length == length - 1 ? -1 : tokens[i + 1]).ToArray();
        var segments = Enumerable.Range(0, batch).Select(_ => new Segment(0, 0, length)).ToArray();
        int predictions = targets.Count(t => t >= 0);
        int step = 0;
        void Step()
        {
            backend.Fill(gradients.Buffer, 0f);
            graph.ForwardBackward(tokens, targets, segments, gradients, predictions);
            double normSquared = backend.SumOfSquares(gradients.Buffer);
            float clip = (float)GradientClipping.Scale(normSquared, 1.0);
            step++;
            foreach (var e in layout.Entries)
                backend.AdamW(parameters[e.Name], null, gradients[e.Name], state.FirstMoment[e.Name], state.SecondMoment[e.Name],
                    new AdamWStep(1e-4f, 0.9f, 0.999f, 1e-8f, WeightDecayPolicy.AppliesTo(e.Name) ? 0.01f : 0f, step, clip));
        }
        var times = Timing.Measure(Step, warmup: 2, reps: Math.Max(5, options.Reps), minSeconds: 3);
        double median = Timing.Median(times);
        Console.Error.WriteLine($"train step (4L h256, batch {batch}×{length}): {median:F1} ms, {batch * length / (median / 1000):F0} tokens/s");
        var settings = new Dictionary<string, object>
        {
            ["model"] = "llama 4 layers, hidden 256, heads 8/4, intermediate 688, vocab 4096, untied",
            ["batch"] = batch,
            ["sequence_length"] = length,
            ["step"] = "forward + backward + global-norm clip + AdamW, fp32",
            ["threads"] = Environment.ProcessorCount,
            ["parameters"] = layout.TotalLength,
            ["activation_bytes"] = graph.ActivationBytes,
        };
        return new BenchSuiteResult(settings, [new
        {
            MedianMs = Math.Round(median, 2),
            MinMs = Math.Round(times[0], 2),
            TokensPerSecond = Math.Round(batch * length / (median / 1000), 1),
            Runs = times.Length,
        }]);
    }

    internal static void Randomize(IBackend backend, ParameterArena arena)
    {
        var rng = new Random(1);
        foreach (var e in arena.Layout.Entries)
        {
            var values = new float[e.Length];
            bool norm = e.Name.EndsWith("norm.weight", StringComparison.Ordinal);
            float scale = e.Shape.Length == 2 ? 1f / MathF.Sqrt(e.Shape[1]) : 1f;
            for (int i = 0; i < values.Length; i++) values[i] = norm ? 1f : (float)(rng.NextDouble() * 2 - 1) * scale;
            backend.Upload(arena[e.Name], values);
        }
    }
}
