using System.CommandLine;
using Spark.Native;
using Spark.Native.Rewards.Tasks;
using Spark.Native.Text;
using Spark.Native.Text.Templates;
using Spark.Native.Training;
using Spark.Native.Training.Grpo;

namespace Spark.Cli;

/// <summary><c>spark train grpo --config FILE [--set key=value ...] [--list-options]</c>.</summary>
internal static class TrainGrpoCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "JSON configuration file (see --list-options)" };
        var set = new Option<string[]>("--set")
        {
            Description = "Override one configuration key, e.g. --set algorithm.beta=0.02 (repeatable)",
            AllowMultipleArgumentsPerToken = false,
        };
        var list = new Option<bool>("--list-options") { Description = "Print every configuration key with its type, default and description, then exit" };
        var command = new Command("grpo", "GRPO-family reinforcement learning with verifiable rewards (grpo, dapo, dr_grpo, bnpo, gspo)") { config, set, list };
        command.SetAction(parse =>
        {
            if (parse.GetValue(list))
            {
                Console.Out.Write(GrpoConfig.Describe());
                return 0;
            }
            string path = parse.GetValue(config) ?? throw new SparkException("--config FILE is required (see 'spark train grpo --list-options' for the keys)");
            var cfg = GrpoConfig.Load(path, parse.GetValue(set) ?? []);
            return Run(cfg);
        });
        return command;
    }

    private static int Run(GrpoConfig cfg)
    {
        var options = cfg.ToOptions();
        var tokenizer = Tokenizer.Load(cfg.Model);
        ChatTemplate? template = TrainCommand.HasTemplate(cfg.Model) ? ChatTemplate.FromTokenizerConfig(Path.Combine(cfg.Model, "tokenizer_config.json")) : null;
        var problems = cfg.LoadProblems();
        var builder = new RlPromptBuilder(tokenizer, template);
        var prompts = problems.Select(p => new GrpoPrompt(builder.Build(p).Ids, p)).ToArray();
        var score = cfg.Reward();
        RewardScore Reward(GrpoPrompt prompt, Spark.Native.Generation.RolloutSample sample) =>
            score((RlProblem)prompt.Problem!, sample.Text ?? tokenizer.Decode([.. sample.Tokens]));
        Console.Error.WriteLine($"data: {prompts.Length} prompts ({cfg.TaskName ?? cfg.DataFile}), longest {prompts.Max(p => p.Ids.Count)} tokens" +
            (template is null ? "" : "; chat template applied"));
        var loss = options.Loss;
        Console.Error.WriteLine($"algorithm: {cfg["algorithm.variant"]} ({loss.LossType} loss, {loss.RewardScaling} scaling, {loss.ImportanceSampling} ratio, " +
            $"β {loss.Beta}, ε {loss.EpsilonLow}/{loss.EpsilonHigh}, max {loss.MaxCompletionLength} tokens" +
            (loss.DynamicSampling ? ", dynamic sampling" : "") + (loss.MaskTruncatedCompletions ? ", truncated masked" : "") +
            (loss.OverlongCacheLength > 0 ? $", overlong cache {loss.OverlongCacheLength}" : "") + ")");

        var load = new ModelLoadOptions { Device = cfg.Device };
        using var model = SparkModel.Load(cfg.Resume ?? cfg.Model, load);
        using var reference = loss.NeedsReferenceModel ? SparkModel.Load(cfg.Model, load) : null;
        if (reference is not null) Console.Error.WriteLine($"reference model: a frozen copy of {cfg.Model} for the KL term (β {loss.Beta})");
        var testProblems = cfg.LoadTestProblems();
        var scorer = Spark.Native.Rewards.EvalScorers.ByVerifierName();
        // the judge of the held-out evaluation is set up before training, so a template or tokenizer problem stops the run now, not hours in
        var judge = cfg.EvalJudge && testProblems.Count > 0 ? new Spark.Native.Judging.SelfJudge(model, tokenizer, template, cfg.TemplatePool, cfg.JudgeOptions) : null;
        IReadOnlyDictionary<string, double> Evaluate(SparkModel m)
        {
            var r = Spark.Native.Rewards.Evaluator.Run(m, tokenizer, template, testProblems, scorer, new Spark.Native.Rewards.EvalOptions
            {
                K = cfg.EvalK, Temperature = options.Temperature, TopK = options.TopK, TopP = options.TopP,
                MaxCompletionTokens = loss.MaxCompletionLength, Seed = options.Seed, Slots = options.Slots,
            });
            Console.Error.WriteLine($"eval on {testProblems.Count} held-out problems: accuracy {r.Accuracy:P1}, pass@{r.K} {r.PassAtK[^1]:P1}, " +
                $"maj@{r.K} {r.MajorityAtK:P1}, mean length {r.MeanCompletionTokens:F1}");
            var metrics = new Dictionary<string, double>
            {
                ["accuracy"] = r.Accuracy, [$"pass_at_{r.K}"] = r.PassAtK[^1], [$"maj_at_{r.K}"] = r.MajorityAtK, ["mean_length"] = r.MeanCompletionTokens,
            };
            if (judge is null) return metrics;
            // the same held-out answers, judged by the model itself (the judge reads the live weights of the model being trained)
            var judged = Spark.Native.Judging.JudgeEvaluation.Judge(r, judge, new Spark.Native.Judging.JudgeEvalOptions { Input = cfg.JudgeInput });
            Console.Error.WriteLine($"judge on {judged.Answers.Count} of those answers: pointwise {judged.PointwiseAccuracy:P1} (balanced {judged.BalancedAccuracy:P1}), " +
                $"pairwise {judged.PairwiseAccuracy:P1} over {judged.Metrics()["judge_pairs"]} pairs, ECE {judged.CalibrationError:F3}");
            foreach (var (name, value) in judged.Metrics())
                if (double.IsFinite(value)) metrics[name] = value; // an undefined score (one class absent) leaves a gap in the curve
            return metrics;
        }
        var policy = new ShuffledPrompts(prompts, Reward, options.Seed);
        var spark = cfg.CreateSparkSource(policy, builder, model.Config.MaxPositions);
        if (spark is not null)
            Console.Error.WriteLine($"spark: {cfg["spark.mode"]}, recycled prompts up to {spark.MaxPromptTokens} tokens" +
                (cfg["spark.templates"] is string dir ? $", templates from {dir}" : ", built-in templates"));
        IPromptSource source = spark is null ? policy : spark;
        var hooks = new GrpoHooks
        {
            OnRollouts = spark is null ? null : spark.OnRollouts,
            StepMetrics = spark is null ? null : spark.StepMetrics,
            Evaluate = testProblems.Count > 0 ? Evaluate : null,
            OnStep = p => Console.Error.WriteLine(
                $"step {p.Step}/{p.TotalSteps}{(spark is { InRewardPeriod: true } ? " [reward period]" : "")}  reward {p.Reward:F3}  acc {p.Accuracy:P0}  loss {p.Loss:F4}" +
                (p.Kl is { } kl ? $"  kl {kl:F4}" : reference is null ? "" : "  kl -") +
                $"  clip {p.ClipFraction:P1}  entropy {p.Entropy:F3}  len {p.MeanLength:F1}  groups {p.KeptGroups}" +
                $"  rollout {p.RolloutTokensPerSecond:F0} tok/s  train {p.TrainTokensPerSecond:F0} tok/s" +
                $"  time {p.RolloutSeconds:F1}s+{p.TrainSeconds:F1}s  ETA {TimeSpan.FromSeconds(Math.Round(p.EtaSeconds)):c}"),
        };
        var last = GrpoTrainer.Train(model, source, options, cfg.Output, tokenizer, reference, hooks, sourceDirectory: cfg.Model, resumeState: cfg.Resume);
        string report = RunReport.Write(cfg.Output);
        Console.Error.WriteLine(last is null ? "no steps run" : $"done: {last.Step} steps, final reward {last.Reward:F3}; report {report}");
        return 0;
    }
}
