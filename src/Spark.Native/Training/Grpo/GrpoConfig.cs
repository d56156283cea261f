using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spark.Native.Rewards;
using Spark.Native.Rewards.Tasks;

namespace Spark.Native.Training.Grpo;

/// <summary>The JSON type of a configuration key.</summary>
public enum ConfigValueKind
{
    /// <summary>A JSON string.</summary>
    String,
    /// <summary>A JSON number without a fractional part.</summary>
    Integer,
    /// <summary>Any finite JSON number.</summary>
    Number,
    /// <summary>true or false.</summary>
    Boolean,
    /// <summary>An array of strings.</summary>
    StringList,
}

/// <summary>
/// One key of the GRPO configuration file: the single source of truth for parsing, defaults, validation and the
/// documentation (<see cref="GrpoConfig.Describe"/>).
/// </summary>
/// <param name="Path">Dotted path: "model", "algorithm.beta".</param>
/// <param name="Kind">JSON type.</param>
/// <param name="Default">The default value (string, long, double, bool, string[]), or null: unset (see <paramref name="DefaultText"/>).</param>
/// <param name="Description">What the key does.</param>
/// <param name="DefaultText">How the default reads in the documentation when it is not a literal ("the variant's", "required").</param>
/// <param name="Min">Smallest value allowed (numbers).</param>
/// <param name="MinExclusive">Whether <paramref name="Min"/> itself is excluded.</param>
/// <param name="Choices">The allowed values (strings).</param>
/// <param name="Nullable">Whether JSON null is accepted (meaning: the default).</param>
public sealed record ConfigKey(string Path, ConfigValueKind Kind, object? Default, string Description, string? DefaultText = null,
    double? Min = null, bool MinExclusive = false, IReadOnlyList<string>? Choices = null, bool Nullable = false)
{
    /// <summary>The section ("algorithm"), or "" for top-level keys.</summary>
    public string Section => Path.Contains('.', StringComparison.Ordinal) ? Path[..Path.IndexOf('.', StringComparison.Ordinal)] : "";

    /// <summary>What a valid value is, as the error messages and the documentation say it: "an integer ≥ 2".</summary>
    public string Rule
    {
        get
        {
            string bound = Min is { } m ? $" {(MinExclusive ? ">" : "≥")} {Format(m)}" : "";
            return Kind switch
            {
                ConfigValueKind.String when Choices is not null => $"one of {string.Join(", ", Choices.Select(c => $"\"{c}\""))}",
                ConfigValueKind.String => "a string",
                ConfigValueKind.Integer => "an integer" + bound,
                ConfigValueKind.Number => "a number" + bound,
                ConfigValueKind.Boolean => "true or false",
                _ => "an array of strings",
            } + (Nullable ? " (or null)" : "");
        }
    }

    /// <summary>The default as the documentation shows it.</summary>
    public string DefaultDisplay => DefaultText ?? Default switch
    {
        null => "null",
        string s => JsonSerializer.Serialize(s),
        bool b => b ? "true" : "false",
        string[] list => "[" + string.Join(", ", list.Select(x => JsonSerializer.Serialize(x))) + "]",
        double d => Format(d),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => Default.ToString() ?? "",
    };

    internal static string Format(double d) => d.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>
/// The configuration of <c>spark train grpo</c>: a JSON file with top-level keys and the sections <c>data</c>,
/// <c>algorithm</c>, <c>rollout</c>, <c>optimizer</c> and <c>run</c> (see <see cref="Keys"/> and docs/grpo-config.md,
/// which is <see cref="Describe"/>'s output). An unknown key or a value of the wrong type is a one-line
/// <see cref="SparkException"/> naming the key. <c>--set section.key=value</c> overrides are parsed by the same table.
/// </summary>
public sealed class GrpoConfig
{
    private static readonly string[] Variants = ["grpo", "dapo", "dr_grpo", "bnpo", "gspo"];
    private const string FromVariant = "the variant's";

    /// <summary>The sections, in documentation order ("" is the top level).</summary>
    public static IReadOnlyList<string> Sections { get; } = ["", "data", "reward", "algorithm", "rollout", "optimizer", "run", "spark"];

    /// <summary>Every key of the configuration, in documentation order.</summary>
    public static IReadOnlyList<ConfigKey> Keys { get; } =
    [
        new("model", ConfigValueKind.String, null, "Model folder to start from (Hugging Face layout with tokenizer files; a chat template is used when it has one).", DefaultText: "required"),
        new("output", ConfigValueKind.String, null, "Output folder: metrics.jsonl and report.html.", DefaultText: "required"),

        new("data.task", ConfigValueKind.String, null, "Built-in synthetic task to train on; exactly one of data.task and data.file.", Choices: SyntheticTasks.Names, Nullable: true),
        new("data.file", ConfigValueKind.String, null, "JSONL file of problems (one JSON object per line); exactly one of data.task and data.file.", Nullable: true),
        new("data.prompt_field", ConfigValueKind.String, "prompt", "Field of a data.file row holding the question (a dotted path reaches into objects)."),
        new("data.answer_field", ConfigValueKind.String, "answer", "Field of a data.file row holding the reference answer."),
        new("data.verifier", ConfigValueKind.String, null, "Verifier scoring data.file completions; a task uses its own.", DefaultText: "\"math\"", Choices: [.. Verifiers.Names, VerifierNames.Countdown], Nullable: true),
        new("data.system_prompt", ConfigValueKind.String, null, "System message rendered before every prompt.", Nullable: true),
        new("data.prompt_suffix", ConfigValueKind.String, "", "Appended verbatim to every prompt (a task's prompts already ask for \\boxed{})."),
        new("data.train_count", ConfigValueKind.Integer, 0L, "Problems to train on: generated for a task (0: 1000), the first N rows of a file (0: all).", Min: 0),
        new("data.test_count", ConfigValueKind.Integer, 100L, "Task problems held out of training (no prompt of the train set is in it); ignored for a file.", Min: 0),
        new("data.seed", ConfigValueKind.Integer, 0L, "Seed of the task's problems.", Min: 0),

        new("reward.format_weight", ConfigValueKind.Number, 0.0, "Share of the reward from the format check (exactly one \\boxed{} answer, at most reward.format_max_trailing characters after it): reward = (1 − w)·verifier + w·format, w ≤ 1; accuracy counts the verifier alone. 0 = off.", Min: 0),
        new("reward.format_max_trailing", ConfigValueKind.Integer, 100L, "Characters the format check allows after the box.", Min: 0),

        new("algorithm.variant", ConfigValueKind.String, "grpo", "Loss preset (docs/spark-algorithm.md): grpo (DeepSeekMath), dapo, dr_grpo, bnpo or gspo; the keys below override it.", Choices: Variants),
        new("algorithm.beta", ConfigValueKind.Number, null, "Coefficient of the k3 KL to the frozen reference model (grpo and bnpo: 0.04, others 0); ≠ 0 loads a second copy of the model.", DefaultText: FromVariant, Min: 0, Nullable: true),
        new("algorithm.epsilon_low", ConfigValueKind.Number, null, "Lower clip: the ratio is clipped at 1 − ε_low (0.2; gspo 3e-4).", DefaultText: FromVariant, Min: 0, Nullable: true),
        new("algorithm.epsilon_high", ConfigValueKind.Number, null, "Upper clip: the ratio is clipped at 1 + ε_high (0.2; dapo 0.28; gspo 4e-4).", DefaultText: FromVariant, Min: 0, Nullable: true),
        new("algorithm.max_completion_tokens", ConfigValueKind.Integer, 256L, "Longest completion in tokens (and the dr_grpo normaliser).", Min: 1),
        new("algorithm.mask_truncated", ConfigValueKind.Boolean, null, "Leave completions that hit the length limit out of the loss (dapo: true).", DefaultText: FromVariant, Nullable: true),
        new("algorithm.overlong_cache", ConfigValueKind.Integer, null, "L_cache of the DAPO soft overlong penalty in tokens; 0 = off (dapo: max_completion_tokens / 5, others 0).", DefaultText: FromVariant, Min: 0, Nullable: true),
        new("algorithm.dynamic_sampling", ConfigValueKind.Boolean, null, "Drop groups whose rewards are all equal and sample more (dapo: true).", DefaultText: FromVariant, Nullable: true),
        new("algorithm.reward_scaling", ConfigValueKind.String, null, "What the centred reward is divided by: the group's std, the batch's, or nothing (dr_grpo: none, others group).", DefaultText: FromVariant, Choices: ["group", "batch", "none"], Nullable: true),
        new("algorithm.max_sampling_attempts", ConfigValueKind.Integer, 4L, "Rollout batches drawn at most per step when dynamic sampling drops groups.", Min: 1),

        new("rollout.prompts_per_step", ConfigValueKind.Integer, 8L, "Prompts per rollout batch (step).", Min: 1),
        new("rollout.group_size", ConfigValueKind.Integer, 8L, "Completions per prompt (G); advantages compare completions within a group.", Min: 2),
        new("rollout.temperature", ConfigValueKind.Number, 1.0, "Sampling temperature (log-probs are taken at the same temperature).", Min: 0, MinExclusive: true),
        new("rollout.top_k", ConfigValueKind.Integer, 0L, "Top-k sampling; 0 = off.", Min: 0),
        new("rollout.top_p", ConfigValueKind.Number, 1.0, "Top-p (nucleus) sampling; 1 = off.", Min: 0, MinExclusive: true),
        new("rollout.stop", ConfigValueKind.StringList, Array.Empty<string>(), "Strings that end a completion, besides the model's EOS tokens."),
        new("rollout.slots", ConfigValueKind.Integer, 64L, "Sequences the rollout engine decodes at once.", Min: 1),

        new("optimizer.learning_rate", ConfigValueKind.Number, 1e-6, "AdamW peak learning rate.", Min: 0),
        new("optimizer.weight_decay", ConfigValueKind.Number, 0.0, "AdamW decoupled weight decay (not applied to norms and biases).", Min: 0),
        new("optimizer.beta1", ConfigValueKind.Number, 0.9, "AdamW decay of the first moment.", Min: 0),
        new("optimizer.beta2", ConfigValueKind.Number, 0.999, "AdamW decay of the second moment.", Min: 0),
        new("optimizer.epsilon", ConfigValueKind.Number, 1e-8, "AdamW ε.", Min: 0, MinExclusive: true),
        new("optimizer.max_grad_norm", ConfigValueKind.Number, 1.0, "Global gradient-norm clipping; 0 = off.", Min: 0),
        new("optimizer.mini_batches", ConfigValueKind.Integer, 1L, "Optimizer steps per rollout batch; above 1 the old log-probs are the sampling-time ones.", Min: 1),
        new("optimizer.gradient_accumulation", ConfigValueKind.Integer, 1L, "Micro-batches per mini-batch: the forward/backward runs in this many parts whose gradients add up before the optimizer step (same update, less memory).", Min: 1),
        new("optimizer.schedule", ConfigValueKind.String, "constant", "Learning-rate shape after warm-up, per optimizer step.", Choices: ["constant", "linear", "cosine"]),
        new("optimizer.warmup_steps", ConfigValueKind.Integer, 0L, "Linear learning-rate warm-up, in optimizer steps.", Min: 0),

        new("run.steps", ConfigValueKind.Integer, 100L, "Rollout batches (steps) of the run.", Min: 1),
        new("run.seed", ConfigValueKind.Integer, 0L, "Seed of prompt order and sampling.", Min: 0),
        new("run.device", ConfigValueKind.String, "cpu", "cpu (F32 reference backend) or cuda.", Choices: ["cpu", "cuda"]),
        new("run.master_weights", ConfigValueKind.String, "fp32", "BF16 weights (cuda): fp32 keeps an F32 master copy; stochastic_rounding updates in place.", Choices: ["fp32", "stochastic_rounding"]),
        new("run.save_every", ConfigValueKind.Integer, 0L, "Checkpoint (Hugging Face weights + training state) every N steps; 0 = only output/final.", Min: 0),
        new("run.sample_every", ConfigValueKind.Integer, 10L, "Log one group's completions to samples.jsonl every N steps; 0 = never.", Min: 0),
        new("run.eval_every", ConfigValueKind.Integer, 0L, "Evaluate on the held-out problems (accuracy, pass@k, mean length) every N steps and after the last; 0 = never. Task data only.", Min: 0),
        new("run.eval_k", ConfigValueKind.Integer, 4L, "Samples per held-out problem for pass@k (at the rollout temperature).", Min: 1),
        new("run.eval_judge", ConfigValueKind.Boolean, null, "With run.eval_every: also let the model judge its own held-out answers (pointwise and pairwise accuracy, calibration of P(Yes)); default: on when spark.mode is not off.", DefaultText: "spark.mode != off", Nullable: true),
        new("run.resume", ConfigValueKind.String, null, "Checkpoint folder (output/checkpoint-N) to resume the same run from; null = a new run.", Nullable: true),

        new("spark.mode", ConfigValueKind.String, "off", "SPARK (arXiv 2509.22624): off = plain GRPO; reward_periods = recycle every task rollout batch into judge and reflection items and train on a whole batch of them whenever one is cached; mixed = put them into task batches instead.", Choices: ["off", "reward_periods", "mixed"]),
        new("spark.mix_share", ConfigValueKind.Number, 0.5, "With mode mixed: the share of each batch given to recycled items when some are cached (at most 1).", Min: 0),
        new("spark.judge_input", ConfigValueKind.String, "answer_only", "What judge items show of an answer: its extracted final answer (the reference) or the whole completion.", Choices: ["answer_only", "full_reasoning"]),
        new("spark.mixed_pointwise_share", ConfigValueKind.Number, 0.3, "For a group with right and wrong answers: the chance of a pointwise judge item, else pairwise (reference 0.3; at most 1).", Min: 0),
        new("spark.reflection_full_share", ConfigValueKind.Number, 0.5, "Share of reflection items showing the whole wrong attempt, else only its final answer (reference 0.5; at most 1).", Min: 0),
        new("spark.max_judge_items", ConfigValueKind.Integer, 0L, "Most judge items recycled per task batch; 0 = half a batch (the reference).", Min: 0),
        new("spark.max_reflection_items", ConfigValueKind.Integer, 0L, "Most reflection items recycled per task batch; 0 = half a batch (the reference).", Min: 0),
        new("spark.templates", ConfigValueKind.String, null, "Template pools: a folder with pointwise.json, pairwise.json and reflection.json, or a built-in pool: builtin (templates/spark, the default) or terse (templates/spark-terse, for tiny models with short contexts).", Nullable: true),
        new("spark.verdict_prefix", ConfigValueKind.String, "\\boxed{", "What a judge answer starts with; the held-out judge evaluation reads P(Yes) from the token after it.", Nullable: false),
        new("spark.judge_reasoning_tokens", ConfigValueKind.Integer, 0L, "Held-out judge evaluation: 0 reads the verdict right after the judge prompt and spark.verdict_prefix; N lets the judge write up to N tokens of its own working first (greedy).", Min: 0),
        new("spark.max_prompt_tokens", ConfigValueKind.Integer, 0L, "Recycled prompts longer than this many tokens are left out; 0 = the model's context minus algorithm.max_completion_tokens.", Min: 0),
    ];

    private static readonly Dictionary<string, ConfigKey> ByPath = Keys.ToDictionary(k => k.Path, StringComparer.Ordinal);

    private readonly Dictionary<string, object?> _values;

    private GrpoConfig(Dictionary<string, object?> values) => _values = values;

    /// <summary>A configuration with every key at its default (model and output unset).</summary>
    public static GrpoConfig Defaults() => new(Keys.ToDictionary(k => k.Path, k => k.Default, StringComparer.Ordinal));

    /// <summary>Reads a configuration file and applies <paramref name="overrides"/> ("algorithm.beta=0.02") on top.</summary>
    /// <exception cref="SparkException">Unreadable file, bad JSON, an unknown key, a value of the wrong type, a missing required key.</exception>
    public static GrpoConfig Load(string path, IEnumerable<string>? overrides = null)
    {
        string text;
        try { text = System.IO.File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new SparkException($"{path}: cannot read: {e.Message}", e); }
        return Parse(text, Path.GetFileName(path), overrides);
    }

    /// <summary>Parses configuration JSON; <paramref name="source"/> starts every error message ("config.json").</summary>
    /// <exception cref="SparkException">Bad JSON, an unknown key, a value of the wrong type, a missing required key.</exception>
    public static GrpoConfig Parse(string json, string source = "config", IEnumerable<string>? overrides = null)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            throw new SparkException($"{source}: not valid JSON: {e.Message.ReplaceLineEndings(" ")}", e);
        }
        if (root is not JsonObject top) throw new SparkException($"{source}: the configuration must be a JSON object");
        var config = Defaults();
        foreach (var (name, node) in top)
        {
            if (Sections.Contains(name) && name.Length > 0)
            {
                if (node is not JsonObject section) throw new SparkException($"{source}: '{name}' must be an object (a section)");
                foreach (var (child, value) in section) config.Set(source, $"{name}.{child}", value);
            }
            else config.Set(source, name, node);
        }
        foreach (string o in overrides ?? [])
        {
            int eq = o.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) throw new SparkException($"--set {o}: expected key=value, e.g. --set algorithm.beta=0.02");
            config.Set($"--set {o}", o[..eq].Trim(), ValueNode(o[(eq + 1)..]));
        }
        config.Check(source);
        return config;
    }

    /// <summary>An override's value: JSON when it parses as JSON, else the text as a string.</summary>
    private static JsonNode? ValueNode(string text)
    {
        try { return JsonNode.Parse(text); }
        catch (JsonException) { return JsonValue.Create(text); }
    }

    private void Set(string source, string path, JsonNode? node)
    {
        if (!ByPath.TryGetValue(path, out var key))
        {
            string section = path.Contains('.', StringComparison.Ordinal) ? path[..path.IndexOf('.', StringComparison.Ordinal)] : "";
            var valid = Sections.Contains(section) ? Keys.Where(k => k.Section == section).Select(k => k.Path) : [];
            if (section.Length == 0) valid = valid.Concat(Sections.Where(s => s.Length > 0));
            else if (!Sections.Contains(section)) valid = Sections.Where(s => s.Length > 0);
            string what = Sections.Contains(section) || section.Length == 0 ? "key" : "section";
            string name = what == "section" ? section : path;
            throw new SparkException($"{source}: unknown {what} '{name}'; valid {what}s: {string.Join(", ", valid)}");
        }
        _values[path] = Convert(source, key, node);
    }

    private static object? Convert(string source, ConfigKey key, JsonNode? node)
    {
        SparkException Bad() => new($"{source}: '{key.Path}' must be {key.Rule} (got {(node is null ? "null" : node.ToJsonString())})");
        if (node is null) return key.Nullable ? key.Default : throw Bad();
        switch (key.Kind)
        {
            case ConfigValueKind.String:
                if (node is not JsonValue sv || sv.GetValueKind() != JsonValueKind.String) throw Bad();
                string s = sv.GetValue<string>();
                if (key.Choices is not null && !key.Choices.Contains(s, StringComparer.Ordinal)) throw Bad();
                return s;
            case ConfigValueKind.Boolean:
                return node is JsonValue bv && bv.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? bv.GetValue<bool>() : throw Bad();
            case ConfigValueKind.StringList:
                if (node is JsonValue one && one.GetValueKind() == JsonValueKind.String) return new[] { one.GetValue<string>() };
                if (node is not JsonArray array) throw Bad();
                return array.Select(x => x is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : throw Bad()).ToArray();
            default:
                if (node is not JsonValue nv || nv.GetValueKind() != JsonValueKind.Number) throw Bad();
                double d = nv.GetValue<double>();
                if (!double.IsFinite(d)) throw Bad();
                if (key.Min is { } min && (d < min || (key.MinExclusive && d == min))) throw Bad();
                if (key.Kind == ConfigValueKind.Number) return d;
                return nv.TryGetValue<long>(out long l) ? l : throw Bad();
        }
    }

    private void Check(string source)
    {
        foreach (string required in new[] { "model", "output" })
            if (_values[required] is null) throw new SparkException($"{source}: '{required}' is required");
        if ((TaskName is null) == (DataFile is null)) throw new SparkException($"{source}: set exactly one of 'data.task' and 'data.file'");
        if (TaskName is not null && _values["data.verifier"] is not null)
            throw new SparkException($"{source}: 'data.verifier' applies to data.file; task '{TaskName}' uses its own verifier");
        foreach (string share in new[] { "spark.mix_share", "spark.mixed_pointwise_share", "spark.reflection_full_share" })
            if (Number(share) > 1) throw new SparkException($"{source}: '{share}' is {Number(share)}; expected 0 … 1");
        if (Number("reward.format_weight") > 1)
            throw new SparkException($"{source}: 'reward.format_weight' is {Number("reward.format_weight")}; expected 0 … 1 (the share of the reward from the format check)");
        try { ToOptions().Validate(); }
        catch (SparkException e) { throw new SparkException($"{source}: {e.Message}", e); }
    }

    /// <summary>The value of a key (string, long, double, bool, string[], or null when unset).</summary>
    /// <exception cref="SparkException">Unknown key.</exception>
    public object? this[string path] => _values.TryGetValue(path, out var v) ? v : throw new SparkException($"unknown key '{path}'");

    private long Int(string path) => (long)_values[path]!;
    private double Number(string path) => (double)_values[path]!;
    private string String(string path) => (string)_values[path]!;

    /// <summary>Model folder.</summary>
    public string Model => String("model");
    /// <summary>Output folder.</summary>
    public string Output => String("output");
    /// <summary>The synthetic task's name, or null.</summary>
    public string? TaskName => (string?)_values["data.task"];
    /// <summary>The JSONL data file, or null.</summary>
    public string? DataFile => (string?)_values["data.file"];
    /// <summary>The device to train on.</summary>
    public Device Device => String("run.device") == "cuda" ? Device.Cuda : Device.Cpu;

    /// <summary>The trainer's options: the variant's preset, then every key that is set.</summary>
    public GrpoOptions ToOptions()
    {
        int maxTokens = checked((int)Int("algorithm.max_completion_tokens"));
        var loss = String("algorithm.variant") switch
        {
            "dapo" => GrpoLoss.Dapo(maxTokens, maxTokens / 5),
            "dr_grpo" => GrpoLoss.DrGrpo(maxTokens),
            "bnpo" => GrpoLoss.Bnpo(maxTokens),
            "gspo" => GrpoLoss.Gspo(maxTokens),
            _ => GrpoLoss.Grpo(maxTokens),
        };
        if (_values["algorithm.beta"] is double beta) loss = loss with { Beta = beta };
        if (_values["algorithm.epsilon_low"] is double low) loss = loss with { EpsilonLow = low };
        if (_values["algorithm.epsilon_high"] is double high) loss = loss with { EpsilonHigh = high };
        if (_values["algorithm.mask_truncated"] is bool mask) loss = loss with { MaskTruncatedCompletions = mask };
        if (_values["algorithm.overlong_cache"] is long cache) loss = loss with { OverlongCacheLength = checked((int)cache) };
        if (_values["algorithm.dynamic_sampling"] is bool dynamic) loss = loss with { DynamicSampling = dynamic };
        if (_values["algorithm.reward_scaling"] is string scaling)
            loss = loss with { RewardScaling = scaling switch { "batch" => RewardScaling.Batch, "none" => RewardScaling.None, _ => RewardScaling.Group } };
        return new GrpoOptions
        {
            Loss = loss,
            PromptsPerStep = checked((int)Int("rollout.prompts_per_step")),
            GroupSize = checked((int)Int("rollout.group_size")),
            Temperature = (float)Number("rollout.temperature"),
            TopK = checked((int)Int("rollout.top_k")),
            TopP = (float)Number("rollout.top_p"),
            StopStrings = (string[])_values["rollout.stop"]!,
            Slots = checked((int)Int("rollout.slots")),
            MiniBatches = checked((int)Int("optimizer.mini_batches")),
            GradientAccumulation = checked((int)Int("optimizer.gradient_accumulation")),
            Optimizer = new OptimizerSettings
            {
                LearningRate = Number("optimizer.learning_rate"), WeightDecay = Number("optimizer.weight_decay"),
                Beta1 = Number("optimizer.beta1"), Beta2 = Number("optimizer.beta2"), Epsilon = Number("optimizer.epsilon"),
                MaxGradNorm = Number("optimizer.max_grad_norm"),
            },
            Steps = checked((int)Int("run.steps")),
            Seed = (ulong)Int("run.seed"),
            MasterWeights = String("run.master_weights") == "stochastic_rounding" ? MasterWeights.StochasticRounding : MasterWeights.Fp32,
            MaxSamplingAttempts = checked((int)Int("algorithm.max_sampling_attempts")),
            Schedule = String("optimizer.schedule") switch { "linear" => ScheduleKind.Linear, "cosine" => ScheduleKind.Cosine, _ => ScheduleKind.Constant },
            WarmupSteps = checked((int)Int("optimizer.warmup_steps")),
            SaveEvery = checked((int)Int("run.save_every")),
            SampleEvery = checked((int)Int("run.sample_every")),
            EvalEvery = checked((int)Int("run.eval_every")),
        };
    }

    /// <summary>How SPARK is used (spark.mode).</summary>
    public Recycling.SparkMode SparkMode => String("spark.mode") switch
    {
        "reward_periods" => Recycling.SparkMode.RewardPeriods,
        "mixed" => Recycling.SparkMode.Mixed,
        _ => Recycling.SparkMode.Off,
    };

    /// <summary>
    /// The SPARK prompt source over <paramref name="policy"/> (spark.* keys), for a model with
    /// <paramref name="contextTokens"/> positions; null when spark.mode is off.
    /// </summary>
    /// <exception cref="SparkException">The template folder is missing or malformed.</exception>
    public Recycling.SparkPromptSource? CreateSparkSource(ShuffledPrompts policy, Rewards.Tasks.RlPromptBuilder builder, int contextTokens)
    {
        if (SparkMode == Recycling.SparkMode.Off) return null;
        var options = ToOptions();
        int half = Math.Max(1, options.PromptsPerStep / 2);
        var recycling = new Recycling.RecyclingOptions
        {
            JudgeInput = JudgeInput,
            MixedPointwiseShare = Number("spark.mixed_pointwise_share"), ReflectionFullShare = Number("spark.reflection_full_share"),
            MaxJudgeItems = Int("spark.max_judge_items") is > 0 and var j ? checked((int)j) : half,
            MaxReflectionItems = Int("spark.max_reflection_items") is > 0 and var r ? checked((int)r) : half,
        };
        var pool = TemplatePool;
        long limit = Int("spark.max_prompt_tokens") is > 0 and var m ? m : contextTokens - options.Loss.MaxCompletionLength;
        return new Recycling.SparkPromptSource(policy, builder, options.PromptsPerStep, SparkMode, pool, recycling, options.Seed)
        {
            MixShare = Number("spark.mix_share"), MaxPromptTokens = (int)Math.Clamp(limit, 1, int.MaxValue),
        };
    }

    /// <summary>Whether the held-out evaluation also judges (run.eval_judge; by default when SPARK is on).</summary>
    public bool EvalJudge => _values["run.eval_judge"] is bool b ? b : SparkMode != Recycling.SparkMode.Off;

    /// <summary>The template pool of recycling and judging (spark.templates).</summary>
    public Recycling.TemplatePool TemplatePool => (string?)_values["spark.templates"] is { } dir ? Recycling.TemplatePool.Resolve(dir) : Recycling.TemplatePool.BuiltIn;

    /// <summary>What judge items and the held-out judge show of an answer (spark.judge_input).</summary>
    public Recycling.JudgeInput JudgeInput =>
        String("spark.judge_input") == "full_reasoning" ? Recycling.JudgeInput.FullReasoning : Recycling.JudgeInput.AnswerOnly;

    /// <summary>How the held-out judge is asked: spark.verdict_prefix and spark.judge_reasoning_tokens.</summary>
    public Judging.SelfJudgeOptions JudgeOptions => new()
    {
        VerdictPrefix = String("spark.verdict_prefix"), ReasoningTokens = checked((int)Int("spark.judge_reasoning_tokens")),
    };

    /// <summary>The checkpoint folder to resume from (run.resume), or null for a new run.</summary>
    public string? Resume => (string?)_values["run.resume"];

    /// <summary>Samples per held-out problem of the periodic evaluation (run.eval_k).</summary>
    public int EvalK => checked((int)Int("run.eval_k"));

    /// <summary>The held-out problems of a task (data.test_count of its test split, disjoint from training); empty for file data.</summary>
    public IReadOnlyList<RlProblem> LoadTestProblems()
    {
        if (TaskName is not { } name) return [];
        string? system = (string?)_values["data.system_prompt"];
        string suffix = String("data.prompt_suffix");
        int trainCount = checked((int)Int("data.train_count"));
        var split = SyntheticTasks.Split(SyntheticTasks.Get(name), (ulong)Int("data.seed"), trainCount == 0 ? 1000 : trainCount,
            checked((int)Int("data.test_count")));
        return [.. split.Test.Select(p => p with { Prompt = p.Prompt + suffix, SystemPrompt = system ?? p.SystemPrompt })];
    }

    /// <summary>The training problems: the task's train split, or the file's rows (the first data.train_count when set).</summary>
    /// <exception cref="SparkException">Unknown task, unreadable data, a bad row.</exception>
    public IReadOnlyList<RlProblem> LoadProblems()
    {
        string? system = (string?)_values["data.system_prompt"];
        string suffix = String("data.prompt_suffix");
        int trainCount = checked((int)Int("data.train_count"));
        if (TaskName is { } name)
        {
            var split = SyntheticTasks.Split(SyntheticTasks.Get(name), (ulong)Int("data.seed"), trainCount == 0 ? 1000 : trainCount,
                checked((int)Int("data.test_count")));
            return [.. split.Train.Select(p => p with { Prompt = p.Prompt + suffix, SystemPrompt = system ?? p.SystemPrompt })];
        }
        var data = RlDataset.Load(DataFile!, new RlDataOptions
        {
            PromptField = String("data.prompt_field"), AnswerField = String("data.answer_field"), SystemPrompt = system,
            PromptSuffix = suffix, Verifier = (string?)_values["data.verifier"] ?? VerifierNames.Math,
        });
        return trainCount == 0 ? data.Problems : [.. data.Problems.Take(trainCount)];
    }

    /// <summary>
    /// The reward of a completion for a problem by the problem's verifier name: "countdown" checks with
    /// <see cref="CountdownTask.Verify"/>, any other name scores with <see cref="Verifiers.Create"/>(name) against the answer.
    /// </summary>
    public static Func<RlProblem, string, double> VerifierReward()
    {
        var countdown = new CountdownTask();
        var cache = new System.Collections.Concurrent.ConcurrentDictionary<string, IVerifier>(StringComparer.Ordinal);
        return (problem, completion) => problem.Verifier == VerifierNames.Countdown
            ? countdown.Verify(completion, problem)
            : cache.GetOrAdd(problem.Verifier, Verifiers.Create).Score(completion, problem.Answer).Reward;
    }

    /// <summary>
    /// The reward of this configuration: the problem's verifier (<see cref="VerifierReward"/>), mixed with the format
    /// check when reward.format_weight w &gt; 0 as (1 − w)·verifier + w·format. A completion is correct when the verifier
    /// alone gives 1.
    /// </summary>
    public Func<RlProblem, string, RewardScore> Reward()
    {
        var verifier = VerifierReward();
        double w = Number("reward.format_weight");
        var format = new FormatReward(checked((int)Int("reward.format_max_trailing")));
        return (problem, completion) =>
        {
            double correct = verifier(problem, completion);
            double reward = w == 0 ? correct : (1 - w) * correct + w * format.Score(completion, problem.Answer).Reward;
            return new RewardScore(reward, correct >= 1);
        };
    }

    /// <summary>Every key with its type, default and description, as Markdown (docs/grpo-config.md is this text).</summary>
    public static string Describe()
    {
        var text = new StringBuilder();
        text.Append("# `spark train grpo` configuration\n\n");
        text.Append("Generated by `spark train grpo --list-options`; do not edit by hand (a test compares this file with the output).\n\n");
        text.Append("Usage: `spark train grpo --config FILE [--set section.key=value ...]`. The file is one JSON object; ");
        text.Append("comments and trailing commas are allowed. An unknown key or a value of the wrong type stops the run with a ");
        text.Append("message naming the key. `--set` values are JSON (`--set rollout.stop='[\"\\n\\n\"]'`) or else plain text ");
        text.Append("(`--set data.task=countdown`). `null` sets a key back to its default where the type says \"(or null)\".\n\n");
        text.Append("Example:\n\n```json\n{\n  \"model\": \"models/Qwen2.5-0.5B-Instruct\",\n  \"output\": \"runs/grpo-arith\",\n");
        text.Append("  \"data\": { \"task\": \"arithmetic\" },\n  \"algorithm\": { \"variant\": \"dapo\", \"max_completion_tokens\": 512 },\n");
        text.Append("  \"rollout\": { \"prompts_per_step\": 16, \"group_size\": 8 },\n  \"run\": { \"steps\": 200, \"device\": \"cuda\" }\n}\n```\n");
        foreach (string section in Sections)
        {
            text.Append(section.Length == 0 ? "\n## Top level\n\n" : $"\n## {section}\n\n");
            text.Append("| key | type | default | description |\n|---|---|---|---|\n");
            foreach (var key in Keys.Where(k => k.Section == section))
                text.Append($"| `{key.Path}` | {Cell(key.Rule)} | {Cell(key.DefaultDisplay)} | {Cell(key.Description)} |\n");
        }
        return text.ToString();
    }

    private static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal);
}
