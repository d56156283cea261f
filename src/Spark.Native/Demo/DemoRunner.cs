using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spark.Native.Backends.Cuda;
using Spark.Native.Generation;
using Spark.Native.Rewards;
using Spark.Native.Rewards.Tasks;
using Spark.Native.Text;
using Spark.Native.Training;
using Spark.Native.Training.Grpo;

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
    /// Two-core CPU (about 10 minutes): a 4-layer, 128-wide model (0.77 M parameters) on one- and two-digit addition and
    /// subtraction; 131 072 SFT examples from a teacher that hedges half its answers, then 300 GRPO steps of 32 prompts × 16.
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
}

/// <summary>Held-out scores of one model.</summary>
/// <param name="GreedyAccuracy">Share of problems answered correctly by greedy decoding.</param>
/// <param name="SampledAccuracy">Mean share of correct samples at temperature 1 (unbiased pass@1).</param>
/// <param name="PassAtK">Share of problems with a correct answer among K samples (unbiased pass@K).</param>
/// <param name="K">Samples per problem.</param>
/// <param name="MeanLength">Mean completion length in tokens of the sampled completions.</param>
public sealed record DemoScore(double GreedyAccuracy, double SampledAccuracy, double PassAtK, int K, double MeanLength);

/// <summary>What a demo run reached.</summary>
/// <param name="RunDirectory">The run folder.</param>
/// <param name="Device">The device it ran on.</param>
/// <param name="Preset">The preset's name.</param>
/// <param name="Initial">The freshly initialised model.</param>
/// <param name="AfterSft">After the supervised warm-up.</param>
/// <param name="AfterGrpo">After GRPO.</param>
/// <param name="SftSeconds">Wall time of the warm-up.</param>
/// <param name="GrpoSeconds">Wall time of GRPO (with its periodic evaluations).</param>
/// <param name="TotalSeconds">Wall time of the whole run.</param>
/// <param name="ReportPath">The HTML report.</param>
public sealed record DemoResult(string RunDirectory, Device Device, string Preset, DemoScore Initial, DemoScore AfterSft, DemoScore AfterGrpo,
    double SftSeconds, double GrpoSeconds, double TotalSeconds, string ReportPath);

/// <summary>
/// The main job, end to end and from nothing: a byte-level tokenizer and a freshly initialised Qwen2-style model
/// (<see cref="ModelFactory"/>), a supervised warm-up on synthetic arithmetic from a teacher that hedges some of its
/// answers with a wrong second guess (partial skill, plus the habit), then GRPO with the numeric verifier as reward, scoring the held-out problems before and after each phase. The run folder holds
/// <c>base/</c> (tokenizer + initial weights), <c>data/</c> (the SFT, GRPO and test problems as JSONL), <c>sft/</c> and
/// <c>grpo/</c> (metrics, samples, checkpoints), <c>summary.json</c> and <c>report.html</c>.
/// </summary>
public static class DemoRunner
{
    /// <summary>The results of a demo run (scores, settings, times), in its run folder.</summary>
    public const string SummaryFile = "summary.json";

    /// <summary>The file that marks a folder as a demo run folder, which a later demo may replace.</summary>
    public const string MarkerFile = ".spark-demo";

    /// <summary>The end-of-sequence token of the demo tokenizer.</summary>
    public const string EndOfText = "<|endoftext|>";

    /// <summary>Runs the demo. <paramref name="log"/> receives phase messages; the progress callbacks each step.</summary>
    public static DemoResult Run(DemoOptions options, Action<string>? log = null, Action<SftProgress>? onSftStep = null,
        Action<GrpoProgress>? onGrpoStep = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        log ??= _ => { };
        var total = Stopwatch.StartNew();
        var device = ResolveDevice(options.Device, log);
        var preset = options.Preset ?? (device == Device.Cuda ? DemoPreset.Gpu : DemoPreset.Cpu);
        // every setting is checked before the run folder is touched
        var taskOptions = preset.Task with { PromptFormat = "{expression} =", PromptSuffix = "", Verifier = "numeric" };
        var task = new ArithmeticTask(taskOptions);
        var grpoOptions = new GrpoOptions
        {
            Loss = GrpoLoss.Grpo(preset.MaxCompletionTokens) with { Beta = 0 },
            PromptsPerStep = preset.PromptsPerStep, GroupSize = preset.GroupSize, Temperature = 1f, Steps = preset.GrpoSteps,
            Optimizer = new OptimizerSettings { LearningRate = preset.GrpoLearningRate, MaxGradNorm = 1.0 },
            Slots = preset.PromptsPerStep * preset.GroupSize, Seed = options.Seed, WarmupSteps = 5, SampleEvery = 10, EvalEvery = preset.EvalEvery,
        };
        grpoOptions.Validate();
        preset.Validate();
        string dir = PrepareFolder(options.OutputDirectory);
        log($"demo: preset {preset.Name} on {device}, seed {options.Seed}, run folder {dir}");

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
            var p = split.Train[i % split.Train.Count];
            return new JsonObject { ["prompt"] = p.Prompt, ["completion"] = " " + TeacherAnswer(p.Answer, preset.SftHedgeRate, options.Seed, i) };
        }));
        WriteJsonl(Path.Combine(dataDir, "train.jsonl"), split.Train.Select(p => new JsonObject { ["prompt"] = p.Prompt, ["answer"] = p.Answer }));
        WriteJsonl(Path.Combine(dataDir, "test.jsonl"), split.Test.Select(p => new JsonObject { ["prompt"] = p.Prompt, ["answer"] = p.Answer }));
        log($"data: {split.Train.Count} train problems ({preset.SftExamples} SFT examples drawn from them), {split.Test.Count} held out, e.g. \"{split.Test[0].Prompt} {split.Test[0].Answer}\"");

        using var model = SparkModel.Load(baseDir, new ModelLoadOptions { Device = device });
        log($"model: {model.Config.LayerCount} layers, hidden {model.Config.HiddenSize}, {model.ParameterCount:N0} parameters, vocabulary {vocab}");
        var initial = Score(model, tokenizer, split.Test, preset, options.Seed);
        log($"initial model: {Describe(initial)}");

        // ---- supervised warm-up to partial skill
        var sftClock = Stopwatch.StartNew();
        var sftData = SftDataset.Load(sftPath, tokenizer, template: null, new SftFields.PromptCompletion(), maxLength: preset.Shape.MaxPositions);
        SftTrainer.Train(model, sftData, new SftOptions
        {
            BatchSize = preset.SftBatch, Epochs = 1, Schedule = ScheduleKind.Cosine, WarmupSteps = preset.SftWarmup, Seed = options.Seed,
            Optimizer = new OptimizerSettings { LearningRate = preset.SftLearningRate, WeightDecay = 0.01, MaxGradNorm = 1.0 },
        }, Path.Combine(dir, "sft"), sourceDirectory: baseDir, onStep: onSftStep);
        double sftSeconds = sftClock.Elapsed.TotalSeconds;
        var afterSft = Score(model, tokenizer, split.Test, preset, options.Seed);
        log($"after SFT ({sftSeconds:F0} s): {Describe(afterSft)}");

        // ---- GRPO with the verifier as reward
        var grpoClock = Stopwatch.StartNew();
        var builder = new RlPromptBuilder(tokenizer, template: null);
        var prompts = split.Train.Select(p => new GrpoPrompt(builder.Build(p).Ids, p)).ToArray();
        var verifier = Verifiers.Create("numeric");
        double Reward(GrpoPrompt prompt, RolloutSample sample) =>
            verifier.Score(sample.Text ?? tokenizer.Decode([.. sample.Tokens], SkipSpecialTokens.Yes), ((RlProblem)prompt.Problem!).Answer).Reward;
        var curveProblems = split.Test.Take(Math.Min(128, split.Test.Count)).ToArray();
        IReadOnlyDictionary<string, double> Evaluate(SparkModel m)
        {
            var r = Evaluator.Run(m, tokenizer, null, curveProblems, EvalScorers.ByVerifierName(), new EvalOptions
            {
                K = 1, Temperature = 0, MaxCompletionTokens = preset.MaxCompletionTokens, Seed = options.Seed, Slots = 128,
            });
            return new Dictionary<string, double> { ["greedy_accuracy"] = r.Accuracy };
        }
        GrpoTrainer.Train(model, prompts, Reward, grpoOptions, Path.Combine(dir, "grpo"), tokenizer, sourceDirectory: baseDir, onStep: onGrpoStep, evaluate: Evaluate);
        double grpoSeconds = grpoClock.Elapsed.TotalSeconds;
        var afterGrpo = Score(model, tokenizer, split.Test, preset, options.Seed);
        log($"after GRPO ({grpoSeconds:F0} s): {Describe(afterGrpo)}");

        RunReport.Write(Path.Combine(dir, "sft"));
        string report = RunReport.Write(Path.Combine(dir, "grpo"), Path.Combine(dir, RunReport.ReportFile));
        var result = new DemoResult(dir, device, preset.Name, initial, afterSft, afterGrpo, sftSeconds, grpoSeconds, total.Elapsed.TotalSeconds, report);
        WriteSummary(result, options, preset with { Task = taskOptions }, model.ParameterCount);
        return result;
    }

    /// <summary>Greedy accuracy, then K samples per problem at temperature 1 (pass@1, pass@K, mean length).</summary>
    public static DemoScore Score(SparkModel model, Tokenizer tokenizer, IReadOnlyList<RlProblem> problems, DemoPreset preset, ulong seed)
    {
        var scorer = EvalScorers.ByVerifierName();
        var common = new EvalOptions { MaxCompletionTokens = preset.MaxCompletionTokens, Seed = seed, Slots = 256 };
        var greedy = Evaluator.Run(model, tokenizer, null, problems, scorer, common with { K = 1, Temperature = 0 });
        var sampled = Evaluator.Run(model, tokenizer, null, problems, scorer, common with { K = preset.EvalK, Temperature = 1 });
        return new DemoScore(greedy.Accuracy, sampled.PassAtK[0], sampled.PassAtK[^1], sampled.K, sampled.MeanCompletionTokens);
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

    private static string Describe(DemoScore s) =>
        $"greedy accuracy {s.GreedyAccuracy:P1}, sampled accuracy {s.SampledAccuracy:P1}, pass@{s.K} {s.PassAtK:P1}, mean length {s.MeanLength:F1} tokens";

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

    private static string PrepareFolder(string path)
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

    private static void WriteSummary(DemoResult r, DemoOptions options, DemoPreset preset, long parameters)
    {
        JsonObject Scores(DemoScore s) => new()
        {
            ["greedy_accuracy"] = s.GreedyAccuracy, ["sampled_accuracy"] = s.SampledAccuracy, [$"pass_at_{s.K}"] = s.PassAtK, ["mean_length"] = s.MeanLength,
        };
        var json = new JsonObject
        {
            ["preset"] = preset.Name, ["device"] = r.Device.ToString(), ["seed"] = options.Seed, ["parameters"] = parameters,
            ["processors"] = Environment.ProcessorCount, ["machine"] = Environment.MachineName,
            ["settings"] = JsonSerializer.SerializeToNode(preset with { }, new JsonSerializerOptions { WriteIndented = false }),
            ["initial"] = Scores(r.Initial), ["after_sft"] = Scores(r.AfterSft), ["after_grpo"] = Scores(r.AfterGrpo),
            ["sft_seconds"] = r.SftSeconds, ["grpo_seconds"] = r.GrpoSeconds, ["total_seconds"] = r.TotalSeconds,
        };
        File.WriteAllText(Path.Combine(r.RunDirectory, SummaryFile), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
