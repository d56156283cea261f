using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spark.Native.Backends.Cuda;
using Spark.Native.Generation;
using Spark.Native.Rewards;
using Spark.Native.Rewards.Tasks;
using Spark.Native.Text;
using Spark.Native.Training;
using Spark.Native.Judging;
using Spark.Native.Training.Grpo;
using Spark.Native.Training.Recycling;

namespace Spark.Native.Demo;

/// <summary>Where the demo runs: the GPU when one works, else the CPU; or forced.</summary>
public enum DemoDevice
{
    /// <summary>CUDA when a GPU and its libraries are usable, else the CPU.</summary>
    Auto,
    /// <summary>The CPU backend.</summary>
    Cpu,
    /// <summary>The CUDA backend (fails with the reason when there is no usable GPU).</summary>
    Cuda,
}

/// <summary>
/// The sizes of a demo run: model shape, task difficulty, how much supervised warm-up (and how sloppy its teacher is),
/// how much GRPO.
/// </summary>
public sealed record DemoPreset
{
    /// <summary>Name shown in the log and summary.</summary>
    public required string Name { get; init; }
    /// <summary>The model built from scratch.</summary>
    public required ScratchModelShape Shape { get; init; }
    /// <summary>The arithmetic problems (terse prompts "a + b =", answers read by the numeric verifier).</summary>
    public required ArithmeticOptions Task { get; init; }
    /// <summary>Train problems (SFT examples cycle through them, GRPO samples from all of them).</summary>
    public int TrainProblems { get; init; } = 20000;
    /// <summary>Held-out problems evaluated before and after each phase.</summary>
    public int TestProblems { get; init; } = 256;
    /// <summary>Supervised examples, cycling through the train problems.</summary>
    public int SftExamples { get; init; } = 131072;
    /// <summary>
    /// Share of SFT answers where the teacher hedges: "71, maybe 73" (a wrong second guess 1–3 away). The verifier reads
    /// the last number, so a hedged answer is wrong. Imitation learns the habit with the skill; GRPO, rewarded by the
    /// verifier, can unlearn it. 0: clean data.
    /// </summary>
    public double SftHedgeRate { get; init; }
    /// <summary>
    /// Share of SFT examples that are judge and reflection lessons in the terse template pool (half pointwise, a quarter
    /// pairwise, a quarter reflection), graded right by the teacher. A model built from nothing has never seen a judge
    /// prompt; these teach it the formats (the verdict in \boxed{}) that SPARK then trains by reinforcement. Both methods
    /// start from this same warm-up. 0: none (the judge is then untrained).
    /// </summary>
    public double SftJudgeShare { get; init; } = 0.2;
    /// <summary>
    /// The judge works the problem before its verdict: lessons answer " 46 \boxed{Yes}" (the teacher's own result, then
    /// the verdict), and the self-judge decodes up to this many tokens greedily before it reads P(Yes) at the verdict
    /// token (<see cref="SelfJudgeOptions.ReasoningTokens"/>). 0: a quick verdict right after the prompt (" \boxed{Yes}").
    /// </summary>
    public int JudgeReasoningTokens { get; init; } = 16;
    /// <summary>How recycled items reach training in the SPARK method (reward periods by default, as the reference).</summary>
    public SparkMode SparkMode { get; init; } = SparkMode.RewardPeriods;
    /// <summary>Revision rounds of the reflect loop in the final scoring.</summary>
    public int ReflectRounds { get; init; } = 2;
    /// <summary>Answers per problem of best-of-N selection in the final scoring.</summary>
    public int BestOfN { get; init; } = 8;
    /// <summary>Held-out problems (K samples each) of the judge curve in the periodic evaluation.</summary>
    public int JudgeCurveProblems { get; init; } = 64;
    /// <summary>Sequences per SFT step.</summary>
    public int SftBatch { get; init; } = 64;
    /// <summary>Peak SFT learning rate (cosine decay after warm-up).</summary>
    public double SftLearningRate { get; init; } = 3e-3;
    /// <summary>SFT warm-up steps.</summary>
    public int SftWarmup { get; init; } = 10;
    /// <summary>GRPO rollout batches.</summary>
    public int GrpoSteps { get; init; } = 300;
    /// <summary>Prompts per GRPO step.</summary>
    public int PromptsPerStep { get; init; } = 32;
    /// <summary>Completions per prompt (G).</summary>
    public int GroupSize { get; init; } = 16;
    /// <summary>GRPO learning rate (constant after warm-up).</summary>
    public double GrpoLearningRate { get; init; } = 2e-4;
    /// <summary>Most tokens of a completion.</summary>
    public int MaxCompletionTokens { get; init; } = 16;
    /// <summary>Samples per held-out problem for pass@k.</summary>
    public int EvalK { get; init; } = 4;
    /// <summary>Evaluate on a held-out subset every this many GRPO steps (the curve in the report).</summary>
    public int EvalEvery { get; init; } = 20;

    /// <summary>
    /// Two-core CPU: a 4-layer, 128-wide model (0.77 M parameters) on one- and two-digit addition and subtraction;
    /// 131 072 SFT examples (a fifth of them judge and reflection lessons) from a teacher that hedges half its answers,
    /// then 300 GRPO steps of 32 prompts × 16 per method.
    /// </summary>
    public static DemoPreset Cpu { get; } = new()
    {
        Name = "cpu",
        Shape = new ScratchModelShape(Layers: 4, Hidden: 128, Intermediate: 352, Heads: 4, KeyValueHeads: 2, MaxPositions: 64),
        Task = new ArithmeticOptions { MinDigits = 1, MaxDigits = 2, MinOperands = 2, MaxOperands = 2, Operators = ArithmeticOperators.Add | ArithmeticOperators.Subtract },
        SftExamples = 131072, SftHedgeRate = 0.5, GrpoSteps = 300, PromptsPerStep = 32, GroupSize = 16, GrpoLearningRate = 2e-4, EvalEvery = 20,
    };

    /// <summary>
    /// One GPU: an 8-layer, 512-wide model on three-digit addition and subtraction with more of everything. Not yet run
    /// on a GPU (none was available while it was written): its sizes are a starting point, not a measured result.
    /// </summary>
    public static DemoPreset Gpu { get; } = new()
    {
        Name = "gpu",
        Shape = new ScratchModelShape(Layers: 8, Hidden: 512, Intermediate: 1408, Heads: 8, KeyValueHeads: 4, MaxPositions: 64),
        Task = new ArithmeticOptions { MinDigits = 2, MaxDigits = 3, MinOperands = 2, MaxOperands = 2, Operators = ArithmeticOperators.Add | ArithmeticOperators.Subtract },
        TrainProblems = 100000, TestProblems = 512, SftExamples = 262144, SftBatch = 128, SftLearningRate = 1e-3, SftHedgeRate = 0.5,
        GrpoSteps = 300, PromptsPerStep = 64, GroupSize = 16, GrpoLearningRate = 1e-4, MaxCompletionTokens = 20, EvalK = 8,
    };

    internal void Validate()
    {
        if (!(SftJudgeShare >= 0 && SftJudgeShare <= 1)) throw new SparkException($"demo preset {Name}: SFT judge share {SftJudgeShare} must lie in [0, 1]");
        if (ReflectRounds < 0 || BestOfN < 1 || JudgeCurveProblems < 0 || JudgeReasoningTokens < 0)
            throw new SparkException($"demo preset {Name}: reflect rounds must be ≥ 0, best-of N ≥ 1, judge curve problems and judge reasoning tokens ≥ 0");
        if (!(SftHedgeRate >= 0 && SftHedgeRate <= 1)) throw new SparkException($"demo preset {Name}: SFT hedge rate {SftHedgeRate} must lie in [0, 1]");
        if (SftExamples < 1 || SftBatch < 1 || SftWarmup < 0 || TrainProblems < 1 || TestProblems < 1 || EvalK < 1 || EvalEvery < 0)
            throw new SparkException($"demo preset {Name}: SFT examples, SFT batch, train and test problems and eval k must be ≥ 1 (warm-up and eval-every ≥ 0)");
        if (!(SftLearningRate > 0) || !(GrpoLearningRate >= 0)) throw new SparkException($"demo preset {Name}: learning rates must be positive");
    }

    /// <summary>Presets by name: "cpu", "gpu".</summary>
    public static DemoPreset ByName(string name) => name switch
    {
        "cpu" => Cpu,
        "gpu" => Gpu,
        _ => throw new SparkException($"unknown demo preset '{name}'; valid presets: cpu, gpu"),
    };
}

/// <summary>What the demo trains after the warm-up.</summary>
public enum DemoMethod
{
    /// <summary>Plain GRPO with the verifier as reward (the baseline).</summary>
    Grpo,
    /// <summary>SPARK: the same GRPO loop, plus judge and reflection items recycled from the same rollouts.</summary>
    Spark,
}

/// <summary>Settings of <see cref="DemoRunner.Run"/>.</summary>
public sealed record DemoOptions
{
    /// <summary>The run folder (replaced when it holds an earlier demo; refused when it holds anything else).</summary>
    public required string OutputDirectory { get; init; }
    /// <summary>The sizes; null: <see cref="DemoPreset.Gpu"/> on CUDA, <see cref="DemoPreset.Cpu"/> on the CPU.</summary>
    public DemoPreset? Preset { get; init; }
    /// <summary>Where to run.</summary>
    public DemoDevice Device { get; init; } = DemoDevice.Auto;
    /// <summary>Seed of the weights, the problems and all sampling.</summary>
    public ulong Seed { get; init; } = 7;
    /// <summary>
    /// The methods trained after the warm-up, each from the same SFT checkpoint with the same seed and number of steps
    /// (so two methods make a controlled comparison).
    /// </summary>
    public IReadOnlyList<DemoMethod> Methods { get; init; } = [DemoMethod.Spark];
}

/// <summary>Held-out scores of one model.</summary>
/// <param name="GreedyAccuracy">Share of problems answered correctly by greedy decoding.</param>
/// <param name="SampledAccuracy">Mean share of correct samples at temperature 1 (unbiased pass@1).</param>
/// <param name="PassAtK">Share of problems with a correct answer among K samples (unbiased pass@K).</param>
/// <param name="K">Samples per problem.</param>
/// <param name="MeanLength">Mean completion length in tokens of the sampled completions.</param>
public sealed record DemoScore(double GreedyAccuracy, double SampledAccuracy, double PassAtK, int K, double MeanLength);

/// <summary>How well a model judges its own held-out answers (the K samples of <see cref="DemoScore"/>), and what that buys at test time.</summary>
/// <param name="PointwiseAccuracy">Share of answers judged right (P(Yes) ≥ 0.5 ⇔ correct).</param>
/// <param name="BalancedAccuracy">Mean of the accuracies on correct and on wrong answers (NaN when one class is absent).</param>
/// <param name="PairwiseAccuracy">Share of (correct, wrong) pairs, both orders, where the correct one is preferred (NaN without pairs).</param>
/// <param name="CalibrationError">Expected calibration error of P(Yes), 10 bins.</param>
/// <param name="Auroc">Area under the ROC curve of P(Yes).</param>
/// <param name="VerdictMass">Mean probability the model puts on the two verdict tokens (format adherence).</param>
/// <param name="ReflectRounds">Revision rounds allowed.</param>
/// <param name="ReflectAccuracy">Greedy accuracy after the reflect loop (compare with <see cref="DemoScore.GreedyAccuracy"/>).</param>
/// <param name="BestOfN">Answers per problem of best-of-N.</param>
/// <param name="BestOfAccuracy">Accuracy of the answer with the highest P(Yes) among N samples at temperature 1.</param>
/// <param name="BestOfSampleAccuracy">Mean accuracy of those N samples (what a random pick scores).</param>
public sealed record DemoJudgeScore(double PointwiseAccuracy, double BalancedAccuracy, double PairwiseAccuracy, double CalibrationError, double Auroc,
    double VerdictMass, int ReflectRounds, double ReflectAccuracy, int BestOfN, double BestOfAccuracy, double BestOfSampleAccuracy);

/// <summary>A model's held-out scores as a policy and as its own judge.</summary>
public sealed record DemoPhase(DemoScore Policy, DemoJudgeScore Judge);

/// <summary>One method's run after the warm-up.</summary>
/// <param name="Method">The method.</param>
/// <param name="After">Scores after it.</param>
/// <param name="Seconds">Wall time of its training (with its periodic evaluations).</param>
/// <param name="Steps">Rollout batches trained (the compute budget, equal for every method).</param>
/// <param name="RewardPeriods">How many of them were reward periods (batches of recycled items; 0 for GRPO).</param>
/// <param name="RunDirectory">Its run folder (metrics, samples, checkpoints, report).</param>
public sealed record DemoMethodResult(DemoMethod Method, DemoPhase After, double Seconds, int Steps, int RewardPeriods, string RunDirectory);

/// <summary>One training step of a method, as reported to the progress callback.</summary>
/// <param name="Method">The method training.</param>
/// <param name="Progress">The step's numbers.</param>
/// <param name="RewardPeriod">Whether the step was a reward period (its prompts were recycled judge and reflection items).</param>
public sealed record DemoGrpoStep(DemoMethod Method, GrpoProgress Progress, bool RewardPeriod);

/// <summary>What a demo run reached.</summary>
/// <param name="RunDirectory">The run folder.</param>
/// <param name="Device">The device it ran on.</param>
/// <param name="Preset">The preset's name.</param>
/// <param name="Seed">The seed.</param>
/// <param name="Initial">The freshly initialised model.</param>
/// <param name="AfterSft">After the supervised warm-up.</param>
/// <param name="Methods">Each method trained from the warm-up, in the order run.</param>
/// <param name="SftSeconds">Wall time of the warm-up.</param>
/// <param name="TotalSeconds">Wall time of the whole run.</param>
/// <param name="ReportPath">The HTML report.</param>
public sealed record DemoResult(string RunDirectory, Device Device, string Preset, ulong Seed, DemoPhase Initial, DemoPhase AfterSft,
    IReadOnlyList<DemoMethodResult> Methods, double SftSeconds, double TotalSeconds, string ReportPath)
{
    /// <summary>The result of <paramref name="method"/>.</summary>
    /// <exception cref="SparkException">The method was not run.</exception>
    public DemoMethodResult Of(DemoMethod method) =>
        Methods.FirstOrDefault(m => m.Method == method) ?? throw new SparkException($"the demo did not run {DemoRunner.MethodName(method)}");
}

/// <summary>
/// The main job, end to end and from nothing: a byte-level tokenizer and a freshly initialised Qwen2-style model
/// (<see cref="ModelFactory"/>); a supervised warm-up on synthetic arithmetic from a teacher that hedges some of its
/// answers with a wrong second guess (partial skill, plus the habit) and also teaches the judge and reflection formats;
/// then, from that same checkpoint, plain GRPO and/or SPARK with the numeric verifier as reward. Held-out problems are
/// scored before and after each phase as a policy (greedy, sampled, pass@K) and as its own judge (pointwise and
/// pairwise accuracy, calibration, the reflect loop and best-of-N). The run folder holds <c>base/</c> (tokenizer +
/// initial weights), <c>data/</c> (the SFT, GRPO and test problems as JSONL), <c>sft/</c>, one folder per method
/// (<c>grpo/</c>, <c>spark/</c>: metrics, samples, checkpoints, report), <c>summary.json</c> and <c>report.html</c>.
/// </summary>
public static class DemoRunner
{
    /// <summary>The results of a demo run (scores, settings, times), in its run folder.</summary>
    public const string SummaryFile = "summary.json";

    /// <summary>The file that marks a folder as a demo run folder, which a later demo may replace.</summary>
    public const string MarkerFile = ".spark-demo";

    /// <summary>The end-of-sequence token of the demo tokenizer.</summary>
    public const string EndOfText = "<|endoftext|>";

    /// <summary>
    /// How the demo's models begin a verdict (their answers start with a space, as in " 46"); the self-judge reads the
    /// verdict token right after it. <c>spark eval --judge --templates terse --verdict-prefix " \boxed{"</c> judges a demo model.
    /// </summary>
    public const string VerdictPrefix = @" \boxed{";

    /// <summary>The method's name on the command line and in folder names: grpo, spark.</summary>
    public static string MethodName(DemoMethod method) => method == DemoMethod.Grpo ? "grpo" : "spark";

    /// <summary>Runs the demo. <paramref name="log"/> receives phase messages; the progress callbacks each step.</summary>
    public static DemoResult Run(DemoOptions options, Action<string>? log = null, Action<SftProgress>? onSftStep = null,
        Action<DemoGrpoStep>? onGrpoStep = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        log ??= _ => { };
        var total = Stopwatch.StartNew();
        // every setting is checked before the run folder is touched
        var (device, preset, taskOptions, grpoOptions) = Plan(options, log);
        var task = new ArithmeticTask(taskOptions);
        var pool = TemplatePool.Terse;
        string dir = PrepareFolder(options.OutputDirectory);
        log($"demo: preset {preset.Name} on {device}, seed {options.Seed}, methods {string.Join(" and ", options.Methods.Select(MethodName))}, run folder {dir}");

        // ---- a tokenizer and a model from nothing
        string baseDir = Path.Combine(dir, "base");
        int vocab = ModelFactory.WriteByteTokenizer(baseDir, [EndOfText]);
        ModelFactory.WriteRandomModel(baseDir, preset.Shape, vocab, eosId: 256, options.Seed);
        var tokenizer = Tokenizer.Load(baseDir);

        // ---- problems: disjoint train and held-out test sets
        var split = SyntheticTasks.Split(task, options.Seed, preset.TrainProblems, preset.TestProblems);
        string dataDir = Path.Combine(dir, "data");
        Directory.CreateDirectory(dataDir);
        string sftPath = Path.Combine(dataDir, "sft.jsonl");
        // the SFT examples cycle through the train problems (more passes than one when asked for more examples than problems)
        WriteJsonl(sftPath, Enumerable.Range(0, preset.SftExamples).Select(i =>
        {
            var (prompt, completion) = SftExample(split.Train[i % split.Train.Count], preset, pool, options.Seed, i);
            return new JsonObject { ["prompt"] = prompt, ["completion"] = completion };
        }));
        WriteJsonl(Path.Combine(dataDir, "train.jsonl"), split.Train.Select(p => new JsonObject { ["prompt"] = p.Prompt, ["answer"] = p.Answer }));
        WriteJsonl(Path.Combine(dataDir, "test.jsonl"), split.Test.Select(p => new JsonObject { ["prompt"] = p.Prompt, ["answer"] = p.Answer }));
        log($"data: {split.Train.Count} train problems ({preset.SftExamples} SFT examples drawn from them, {preset.SftJudgeShare:P0} judge and reflection lessons), " +
            $"{split.Test.Count} held out, e.g. \"{split.Test[0].Prompt} {split.Test[0].Answer}\"");

        var scorer = EvalScorers.ByVerifierName();
        DemoPhase initial, afterSft;
        double sftSeconds;
        long parameters;
        using (var model = SparkModel.Load(baseDir, new ModelLoadOptions { Device = device }))
        {
            parameters = model.ParameterCount;
            log($"model: {model.Config.LayerCount} layers, hidden {model.Config.HiddenSize}, {model.ParameterCount:N0} parameters, vocabulary {vocab}");
            initial = Phase(model, tokenizer, split.Test, preset, pool, options.Seed);
            log($"initial model: {Describe(initial)}");

            // ---- supervised warm-up to partial skill (and the judge formats)
            var sftClock = Stopwatch.StartNew();
            var sftData = SftDataset.Load(sftPath, tokenizer, template: null, new SftFields.PromptCompletion(), maxLength: preset.Shape.MaxPositions);
            SftTrainer.Train(model, sftData, new SftOptions
            {
                BatchSize = preset.SftBatch, Epochs = 1, Schedule = ScheduleKind.Cosine, WarmupSteps = preset.SftWarmup, Seed = options.Seed,
                Optimizer = new OptimizerSettings { LearningRate = preset.SftLearningRate, WeightDecay = 0.01, MaxGradNorm = 1.0 },
            }, Path.Combine(dir, "sft"), sourceDirectory: baseDir, onStep: onSftStep);
            sftSeconds = sftClock.Elapsed.TotalSeconds;
            afterSft = Phase(model, tokenizer, split.Test, preset, pool, options.Seed);
            log($"after SFT ({sftSeconds:F0} s): {Describe(afterSft)}");
        }
        RunReport.Write(Path.Combine(dir, "sft"));

        // ---- each method from the same warm-up checkpoint, with the verifier as reward
        string sftCheckpoint = Path.Combine(dir, "sft", SftTrainer.FinalCheckpoint);
        var builder = new RlPromptBuilder(tokenizer, template: null);
        var prompts = split.Train.Select(p => new GrpoPrompt(builder.Build(p).Ids, p)).ToArray();
        var verifier = Verifiers.Create("numeric");
        RewardScore Score(GrpoPrompt prompt, RolloutSample sample)
        {
            double reward = verifier.Score(sample.Text ?? "", ((RlProblem)prompt.Problem!).Answer).Reward;
            return new RewardScore(reward, reward >= 1);
        }
        var curveProblems = split.Test.Take(Math.Min(128, split.Test.Count)).ToArray();
        var judgeCurveProblems = split.Test.Take(Math.Min(preset.JudgeCurveProblems, split.Test.Count)).ToArray();
        IReadOnlyDictionary<string, double> Curve(SparkModel m)
        {
            var greedy = Evaluator.Run(m, tokenizer, null, curveProblems, scorer, new EvalOptions
            {
                K = 1, Temperature = 0, MaxCompletionTokens = preset.MaxCompletionTokens, Seed = options.Seed, Slots = 128,
            });
            var metrics = new Dictionary<string, double> { ["greedy_accuracy"] = greedy.Accuracy };
            if (judgeCurveProblems.Length == 0) return metrics;
            var judged = JudgeEvaluation.Run(m, tokenizer, null, judgeCurveProblems, scorer, Judge(m, tokenizer, pool, preset), new JudgeEvalOptions
            {
                Sampling = new EvalOptions { K = preset.EvalK, Temperature = 1, MaxCompletionTokens = preset.MaxCompletionTokens, Seed = options.Seed, Slots = 256 },
            });
            foreach (var (name, value) in judged.Metrics())
                if (double.IsFinite(value) && name is not ("judge_answers" or "judge_pairs")) metrics[name] = value; // an undefined score leaves a gap
            return metrics;
        }

        var results = new List<DemoMethodResult>();
        foreach (var method in options.Methods)
        {
            string name = MethodName(method), runDir = Path.Combine(dir, name);
            using var model = SparkModel.Load(sftCheckpoint, new ModelLoadOptions { Device = device });
            var policy = new ShuffledPrompts(prompts, Score, options.Seed);
            int half = Math.Max(1, preset.PromptsPerStep / 2); // the reference keeps at most half a batch of each kind per period
            var spark = method == DemoMethod.Spark
                ? new SparkPromptSource(policy, builder, preset.PromptsPerStep, preset.SparkMode, pool,
                    new RecyclingOptions { MaxJudgeItems = half, MaxReflectionItems = half }, options.Seed)
                { MaxPromptTokens = preset.Shape.MaxPositions - preset.MaxCompletionTokens }
                : null;
            int rewardPeriods = 0;
            var clock = Stopwatch.StartNew();
            GrpoTrainer.Train(model, spark ?? (IPromptSource)policy, grpoOptions, runDir, tokenizer, hooks: new GrpoHooks
            {
                OnStep = p =>
                {
                    bool rewardPeriod = spark?.InRewardPeriod == true;
                    if (rewardPeriod) rewardPeriods++;
                    onGrpoStep?.Invoke(new DemoGrpoStep(method, p, rewardPeriod));
                },
                OnRollouts = spark is null ? null : spark.OnRollouts,
                StepMetrics = spark is null ? null : spark.StepMetrics,
                Evaluate = Curve,
            }, sourceDirectory: baseDir);
            double seconds = clock.Elapsed.TotalSeconds;
            var after = Phase(model, tokenizer, split.Test, preset, pool, options.Seed);
            RunReport.Write(runDir);
            results.Add(new DemoMethodResult(method, after, seconds, preset.GrpoSteps, rewardPeriods, runDir));
            log($"after {name.ToUpperInvariant()} ({seconds:F0} s{(spark is null ? "" : $", {rewardPeriods} of {preset.GrpoSteps} steps were reward periods, {spark.DroppedTooLong} recycled items too long")}): {Describe(after)}");
        }

        // the top-level report: the method's curves, or every method's on shared charts (each method folder holds its own)
        string reportPath = Path.Combine(dir, RunReport.ReportFile);
        string report = results.Count == 1 ? RunReport.Write(results[0].RunDirectory, reportPath)
            : RunReport.WriteComparison([.. results.Select(r => (MethodName(r.Method), r.RunDirectory))], reportPath,
                $"spark demo: {string.Join(" vs ", results.Select(r => MethodName(r.Method).ToUpperInvariant()))} from the same warm-up (seed {options.Seed})");
        var result = new DemoResult(dir, device, preset.Name, options.Seed, initial, afterSft, results, sftSeconds, total.Elapsed.TotalSeconds, report);
        WriteSummary(result, preset with { Task = taskOptions }, parameters);
        return result;
    }

    /// <summary>The device, preset, task and GRPO settings of a run, every one checked (nothing is written).</summary>
    internal static (Device Device, DemoPreset Preset, ArithmeticOptions Task, GrpoOptions Grpo) Plan(DemoOptions options, Action<string> log)
    {
        if (options.Methods is not { Count: > 0 } || options.Methods.Distinct().Count() != options.Methods.Count)
            throw new SparkException("demo: give one or more methods (grpo, spark), each once");
        var device = ResolveDevice(options.Device, log);
        var preset = options.Preset ?? (device == Device.Cuda ? DemoPreset.Gpu : DemoPreset.Cpu);
        var taskOptions = preset.Task with { PromptFormat = "{expression} =", PromptSuffix = "", Verifier = "numeric" };
        _ = new ArithmeticTask(taskOptions); // checks the task settings
        var grpoOptions = new GrpoOptions
        {
            Loss = GrpoLoss.Grpo(preset.MaxCompletionTokens) with { Beta = 0 },
            PromptsPerStep = preset.PromptsPerStep, GroupSize = preset.GroupSize, Temperature = 1f, Steps = preset.GrpoSteps,
            Optimizer = new OptimizerSettings { LearningRate = preset.GrpoLearningRate, MaxGradNorm = 1.0 },
            Slots = preset.PromptsPerStep * preset.GroupSize, Seed = options.Seed, WarmupSteps = 5, SampleEvery = 10, EvalEvery = preset.EvalEvery,
        };
        grpoOptions.Validate();
        preset.Validate();
        return (device, preset, taskOptions, grpoOptions);
    }

    /// <summary>
    /// The demo model's self-judge: the terse pool's first templates, the verdict read after <see cref="VerdictPrefix"/>
    /// (after the judge's own working when <see cref="DemoPreset.JudgeReasoningTokens"/> &gt; 0).
    /// </summary>
    public static SelfJudge Judge(SparkModel model, Tokenizer tokenizer, TemplatePool pool, DemoPreset preset) =>
        new(model, tokenizer, template: null, pool, new SelfJudgeOptions { VerdictPrefix = VerdictPrefix, ReasoningTokens = preset.JudgeReasoningTokens });

    /// <summary>
    /// Scores a model on held-out problems as a policy (greedy, then K samples at temperature 1) and as its own judge
    /// (the K samples judged pointwise and in pairs, the reflect loop, best-of-N).
    /// </summary>
    public static DemoPhase Phase(SparkModel model, Tokenizer tokenizer, IReadOnlyList<RlProblem> problems, DemoPreset preset, TemplatePool pool, ulong seed)
    {
        var scorer = EvalScorers.ByVerifierName();
        var common = new EvalOptions { MaxCompletionTokens = preset.MaxCompletionTokens, Seed = seed, Slots = 256 };
        var greedy = Evaluator.Run(model, tokenizer, null, problems, scorer, common with { K = 1, Temperature = 0 });
        var sampled = Evaluator.Run(model, tokenizer, null, problems, scorer, common with { K = preset.EvalK, Temperature = 1 });
        var policy = new DemoScore(greedy.Accuracy, sampled.PassAtK[0], sampled.PassAtK[^1], sampled.K, sampled.MeanCompletionTokens);

        var judge = Judge(model, tokenizer, pool, preset);
        var judged = JudgeEvaluation.Judge(sampled, judge, new JudgeEvalOptions());
        var testTime = new TestTimeOptions { MaxCompletionTokens = preset.MaxCompletionTokens, Seed = seed, Slots = 256 };
        var reflect = TestTimeScaling.Reflect(model, tokenizer, null, problems, scorer, judge, pool, preset.ReflectRounds, testTime);
        var best = TestTimeScaling.BestOf(model, tokenizer, null, problems, scorer, judge, preset.BestOfN, testTime);
        return new DemoPhase(policy, new DemoJudgeScore(judged.PointwiseAccuracy, judged.BalancedAccuracy, judged.PairwiseAccuracy, judged.CalibrationError,
            judged.Auroc, judged.MeanVerdictMass, preset.ReflectRounds, reflect.ReflectAccuracy, preset.BestOfN, best.BestOfAccuracy, best.SampleAccuracy));
    }

    /// <summary>
    /// The SFT example of index <paramref name="index"/>: with probability <see cref="DemoPreset.SftJudgeShare"/> a
    /// lesson in a terse template — half pointwise (the right answer or a near miss, verdict Yes/No or A/B), a quarter
    /// pairwise (right and near miss at random places), a quarter reflection (a near miss, shown alone or as a whole
    /// attempt; the teacher answers again) —, else the problem with the teacher's answer. Verdicts are written as
    /// <see cref="VerdictPrefix"/> + verdict + "}", after the teacher's own result when the judge reasons
    /// (<see cref="DemoPreset.JudgeReasoningTokens"/> &gt; 0): " 46 \boxed{Yes}".
    /// </summary>
    internal static (string Prompt, string Completion) SftExample(RlProblem problem, DemoPreset preset, TemplatePool pool, ulong seed, int index)
    {
        ulong stream = CounterRng.Next(seed ^ 0x1E55_0A5UL, (ulong)index);
        double Uniform(ulong i) => CounterRng.Uniform(stream, i);
        T Pick<T>(IReadOnlyList<T> items, ulong i) => items[Math.Min(items.Count - 1, (int)(Uniform(i) * items.Count))];
        string teacher = " " + TeacherAnswer(problem.Answer, preset.SftHedgeRate, seed, index);
        double u = Uniform(0);
        if (u >= preset.SftJudgeShare) return (problem.Prompt, teacher);
        double kind = u / preset.SftJudgeShare; // uniform in [0, 1) given a lesson
        long offset = Uniform(1) < 0.75 ? 1 + (long)(Uniform(2) * 3) : 10;
        if (Uniform(3) < 0.5) offset = -offset;
        string right = problem.Answer;
        string wrong = (long.Parse(right, System.Globalization.CultureInfo.InvariantCulture) + offset).ToString(System.Globalization.CultureInfo.InvariantCulture);
        bool first = Uniform(4) < 0.5;
        string working = preset.JudgeReasoningTokens > 0 ? " " + right : "";
        if (kind < 0.5)
        {
            var t = Pick(pool.Pointwise, 5);
            string verdict = t.Style == TemplateStyle.YesNo ? (first ? "Yes" : "No") : (first ? "A" : "B");
            return (t.Render(new Dictionary<string, string> { ["question"] = problem.Prompt, ["answer"] = first ? right : wrong }), working + VerdictPrefix + verdict + "}");
        }
        if (kind < 0.75)
        {
            var t = Pick(pool.Pairwise, 5);
            return (t.Render(new Dictionary<string, string>
            {
                ["question"] = problem.Prompt, ["answer_a"] = first ? right : wrong, ["answer_b"] = first ? wrong : right,
            }), working + VerdictPrefix + (first ? "A" : "B") + "}");
        }
        // a whole attempt as the policy writes it (" 73"), or its final answer only
        var style = first ? TemplateStyle.Full : TemplateStyle.AnswerOnly;
        var reflection = Pick(pool.Reflection.Where(x => x.Style == style).ToArray(), 5);
        return (reflection.Render(new Dictionary<string, string> { ["question"] = problem.Prompt, ["attempt"] = first ? " " + wrong : wrong }), teacher);
    }

    /// <summary>
    /// The answer, or with probability <paramref name="rate"/> (drawn from the seed and example index) the answer followed
    /// by a wrong second guess 1–3 away: "71, maybe 73".
    /// </summary>
    internal static string TeacherAnswer(string answer, double rate, ulong seed, int index)
    {
        ulong stream = CounterRng.Next(seed ^ 0x5109_7A11UL, (ulong)index);
        if (CounterRng.Uniform(stream, 0) >= rate) return answer;
        long offset = 1 + (long)(CounterRng.Uniform(stream, 1) * 3);
        if (CounterRng.Uniform(stream, 2) < 0.5) offset = -offset;
        long guess = long.Parse(answer, System.Globalization.CultureInfo.InvariantCulture) + offset;
        return $"{answer}, maybe {guess.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
    }

    private static string Describe(DemoPhase p) =>
        $"greedy accuracy {p.Policy.GreedyAccuracy:P1}, sampled accuracy {p.Policy.SampledAccuracy:P1}, pass@{p.Policy.K} {p.Policy.PassAtK:P1}, " +
        $"mean length {p.Policy.MeanLength:F1} tokens; judge pointwise {p.Judge.PointwiseAccuracy:P1} (balanced {p.Judge.BalancedAccuracy:P1}), " +
        $"pairwise {p.Judge.PairwiseAccuracy:P1}, ECE {p.Judge.CalibrationError:F3}; reflect {p.Judge.ReflectRounds} {p.Judge.ReflectAccuracy:P1}, " +
        $"best-of-{p.Judge.BestOfN} {p.Judge.BestOfAccuracy:P1} (random pick {p.Judge.BestOfSampleAccuracy:P1})";

    /// <summary>The device to run on; Auto tries CUDA and says why it falls back to the CPU.</summary>
    public static Device ResolveDevice(DemoDevice device, Action<string> log)
    {
        if (device == DemoDevice.Cpu) return Device.Cpu;
        if (device == DemoDevice.Cuda) return Device.Cuda;
        if (CudaBackend.TryCreate(out var backend, out string reason))
        {
            backend.Dispose();
            return Device.Cuda;
        }
        log($"device: CPU ({reason})");
        return Device.Cpu;
    }

    internal static string PrepareFolder(string path)
    {
        string dir = Path.GetFullPath(path);
        if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any())
        {
            if (!File.Exists(Path.Combine(dir, MarkerFile)))
                throw new SparkException($"{dir}: the folder is not empty and holds no earlier demo run (no {MarkerFile} marker); choose another --out");
            Directory.Delete(dir, recursive: true);
        }
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, MarkerFile), "a spark demo run folder; running the demo again replaces it\n");
        return dir;
    }

    private static void WriteJsonl(string path, IEnumerable<JsonObject> rows) =>
        File.WriteAllLines(path, rows.Select(r => r.ToJsonString()));

    /// <summary>A number, or null for an undefined (NaN) score.</summary>
    internal static JsonNode? Number(double value) => double.IsFinite(value) ? JsonValue.Create(value) : null;

    /// <summary>A phase's scores as JSON: the policy's, and the judge's under "judge".</summary>
    internal static JsonObject PhaseJson(DemoPhase p) => new()
    {
        ["greedy_accuracy"] = p.Policy.GreedyAccuracy, ["sampled_accuracy"] = p.Policy.SampledAccuracy, [$"pass_at_{p.Policy.K}"] = p.Policy.PassAtK,
        ["mean_length"] = p.Policy.MeanLength,
        ["judge"] = new JsonObject
        {
            ["pointwise_accuracy"] = Number(p.Judge.PointwiseAccuracy), ["balanced_accuracy"] = Number(p.Judge.BalancedAccuracy),
            ["pairwise_accuracy"] = Number(p.Judge.PairwiseAccuracy), ["ece"] = Number(p.Judge.CalibrationError), ["auroc"] = Number(p.Judge.Auroc),
            ["verdict_mass"] = Number(p.Judge.VerdictMass),
            [$"reflect_{p.Judge.ReflectRounds}_accuracy"] = p.Judge.ReflectAccuracy,
            [$"best_of_{p.Judge.BestOfN}_accuracy"] = p.Judge.BestOfAccuracy, [$"best_of_{p.Judge.BestOfN}_random_pick_accuracy"] = p.Judge.BestOfSampleAccuracy,
        },
    };

    private static void WriteSummary(DemoResult r, DemoPreset preset, long parameters)
    {
        var json = new JsonObject
        {
            ["preset"] = preset.Name, ["device"] = r.Device.ToString(), ["seed"] = r.Seed, ["parameters"] = parameters,
            ["methods"] = new JsonArray([.. r.Methods.Select(m => (JsonNode?)MethodName(m.Method))]),
            ["processors"] = Environment.ProcessorCount, ["machine"] = Environment.MachineName,
            ["settings"] = JsonSerializer.SerializeToNode(preset with { }, new JsonSerializerOptions { WriteIndented = false, Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() } }),
            ["initial"] = PhaseJson(r.Initial), ["after_sft"] = PhaseJson(r.AfterSft),
            ["sft_seconds"] = r.SftSeconds, ["total_seconds"] = r.TotalSeconds,
        };
        foreach (var m in r.Methods)
        {
            json[$"after_{MethodName(m.Method)}"] = PhaseJson(m.After);
            json[$"{MethodName(m.Method)}_seconds"] = m.Seconds;
            json[$"{MethodName(m.Method)}_reward_periods"] = m.RewardPeriods;
        }
        File.WriteAllText(Path.Combine(r.RunDirectory, SummaryFile), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
