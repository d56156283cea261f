using System.Diagnostics;
using Spark.Native;
using Spark.Native.Backends.Cpu;
using Spark.Native.Models;
using Spark.Native.Training;
using Spark.Native.Training.Grpo;

namespace Spark.Benchmarks;

/// <summary>
/// GRPO steps on the CPU backend at the Qwen2.5-0.5B shape (random weights, tied embeddings, vocab 151 936) with a
/// tiny batch: 2 prompts × G = 4 completions of up to 16 tokens, one optimizer step per rollout batch. Reports rollout
/// and training tokens/s, the step-time split and the process's peak working set. The reward is a dense synthetic one
/// (share of even token ids), so every group has a non-zero advantage.
/// </summary>
public static class GrpoStepSuite
{
    public static BenchSuiteResult Run(BenchOptions options)
    {
        var config = ModelConfig.Parse("""
            {"architectures": ["Qwen2ForCausalLM"], "vocab_size": 151936, "hidden_size": 896, "intermediate_size": 4864,
             "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "tie_word_embeddings": true,
             "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 32768}
            """);
        var backend = new CpuBackend();
        var parameters = new ParameterArena(backend, new ParameterLayout(config));
        TrainStepSuite.Randomize(backend, parameters);
        using var model = SparkModel.FromParameters(backend, parameters);
        const int promptLength = 24, completion = 16, prompts = 2, group = 4;
        var rng = new Random(3);
        var data = Enumerable.Range(0, 8).Select(_ => new GrpoPrompt(Enumerable.Range(0, promptLength).Select(_ => rng.Next(151936)).ToArray())).ToArray();
        int steps = Math.Max(3, options.Reps);
        var progress = new List<GrpoProgress>();
        var output = Path.Combine(Path.GetTempPath(), $"spark-grpo-bench-{Environment.ProcessId}");
        var clock = Stopwatch.StartNew();
        try
        {
            GrpoTrainer.Train(model, data, (_, s) => s.Tokens.Count == 0 ? 0 : s.Tokens.Count(t => t % 2 == 0) / (double)s.Tokens.Count,
                new GrpoOptions
                {
                    Loss = GrpoLoss.Grpo(completion) with { Beta = 0 }, PromptsPerStep = prompts, GroupSize = group, Steps = steps, Seed = 1,
                    Optimizer = new OptimizerSettings { LearningRate = 1e-6 }, SampleEvery = 0, Slots = prompts * group,
                },
                output, onStep: p =>
                {
                    progress.Add(p);
                    Console.Error.WriteLine($"step {p.Step}/{p.TotalSteps}: rollout {p.RolloutSeconds:F1} s ({p.RolloutTokensPerSecond:F1} tok/s), " +
                        $"train {p.TrainSeconds:F1} s ({p.TrainTokensPerSecond:F1} tok/s)");
                });
        }
        finally
        {
            if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
        }
        var measured = progress.Skip(1).ToList(); // the first step pays one-time costs (page faults of fresh buffers)
        double Median(Func<GrpoProgress, double> f) => Timing.Median(measured.Select(f).Order().ToArray());
        var settings = new Dictionary<string, object>
        {
            ["model"] = "Qwen2.5-0.5B shape (24 layers, hidden 896, heads 14/2, intermediate 4864, vocab 151936, tied), random weights, fp32",
            ["prompts_per_step"] = prompts,
            ["group_size"] = group,
            ["prompt_tokens"] = promptLength,
            ["max_completion_tokens"] = completion,
            ["optimizer_steps_per_rollout"] = 1,
            ["log_probs"] = "fused log-prob gather at the sampling temperature (no [tokens × vocab] logits)",
            ["threads"] = Environment.ProcessorCount,
            ["parameters"] = model.ParameterCount,
            ["steps"] = steps,
        };
        return new BenchSuiteResult(settings, [new
        {
            MedianStepSeconds = Math.Round(Median(p => p.RolloutSeconds + p.TrainSeconds), 2),
            MedianRolloutSeconds = Math.Round(Median(p => p.RolloutSeconds), 2),
            MedianTrainSeconds = Math.Round(Median(p => p.TrainSeconds), 2),
            RolloutTokensPerSecond = Math.Round(Median(p => p.RolloutTokensPerSecond), 1),
            TrainTokensPerSecond = Math.Round(Median(p => p.TrainTokensPerSecond), 1),
            PeakWorkingSetBytes = Process.GetCurrentProcess().PeakWorkingSet64,
            TotalSeconds = Math.Round(clock.Elapsed.TotalSeconds, 1),
        }]);
    }
}
