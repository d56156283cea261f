using System.Text.Json.Nodes;
using Spark.Native.Generation;
using Spark.Native.Rewards;
using Spark.Native.Rewards.Tasks;
using Spark.Native.Training.Grpo;

namespace Spark.Native.Training.Recycling;

/// <summary>How SPARK's recycled items reach training.</summary>
public enum SparkMode
{
    /// <summary>Plain GRPO: nothing is recycled (the baseline, same binary).</summary>
    Off,
    /// <summary>Reward periods: when the cache holds a full batch, the next rollout batch is made of recycled items only.</summary>
    RewardPeriods,
    /// <summary>Recycled items replace part of each policy batch (<see cref="SparkPromptSource.MixShare"/>) instead.</summary>
    Mixed,
}

/// <summary>
/// SPARK on top of the unchanged GRPO loop (arXiv 2509.22624): a prompt source that serves the task's prompts (policy
/// periods), recycles every policy rollout batch it sees through <see cref="GrpoHooks.OnRollouts"/> into judge and
/// reflection items (<see cref="Recycler"/>) kept in a <see cref="RecycleCache{T}"/>, and serves a whole batch of them
/// (a reward period) whenever the cache holds one — or mixes them into policy batches. Recycled completions are scored
/// by the item's own verifier against its label; task completions by the task's score.
/// </summary>
/// <remarks>
/// The cache and the recycling counters are saved into every checkpoint (<see cref="StateFile"/>) and read back on
/// resume, so a resumed run serves the same reward periods as the uninterrupted one.
/// </remarks>
public sealed class SparkPromptSource : ICheckpointedPromptSource
{
    /// <summary>The file in a checkpoint folder that holds the cache (a header line, then one JSON object per item).</summary>
    public const string StateFile = "spark_cache.jsonl";

    private readonly ShuffledPrompts _policy;
    private readonly RlPromptBuilder _builder;
    private readonly TemplatePool _pool;
    private readonly RecyclingOptions _options;
    private readonly int _batch;
    private readonly ulong _seed;
    private readonly RecycleCache<GrpoPrompt> _cache = new(); // recycled items, already rendered and tokenized
    private readonly Dictionary<string, IVerifier> _verifiers = new(StringComparer.Ordinal);
    private readonly Queue<GrpoPrompt> _current = new();

    /// <summary>Creates the source.</summary>
    /// <param name="policy">The task's prompts; each <see cref="GrpoPrompt.Problem"/> must be an <see cref="RlProblem"/>.</param>
    /// <param name="builder">Renders recycled items as prompts (with the model's chat template when it has one).</param>
    /// <param name="promptsPerStep">The trainer's prompts per rollout batch (a reward period is one such batch).</param>
    /// <param name="mode">How recycled items are used.</param>
    /// <param name="pool">Template wordings.</param>
    /// <param name="options">Recycling ratios and caps.</param>
    /// <param name="seed">Seed of the recycling draws.</param>
    public SparkPromptSource(ShuffledPrompts policy, RlPromptBuilder builder, int promptsPerStep, SparkMode mode, TemplatePool pool,
        RecyclingOptions options, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (promptsPerStep < 1) throw new SparkException($"prompts per step is {promptsPerStep}; expected ≥ 1");
        (_policy, _builder, _batch, Mode, _pool, _options, _seed) = (policy, builder, promptsPerStep, mode, pool, options, seed);
    }

    /// <summary>How recycled items are used.</summary>
    public SparkMode Mode { get; }

    /// <summary>In <see cref="SparkMode.Mixed"/>: the share of each batch given to recycled items when the cache has them.</summary>
    public double MixShare { get; init; } = 0.5;

    /// <summary>
    /// Recycled items whose rendered prompt is longer than this many tokens are left out (a judge or reflection prompt
    /// holds the question and whole answers; it must leave the model room to answer). Null: no limit.
    /// </summary>
    public int? MaxPromptTokens { get; init; }

    /// <summary>Recycled items left out for <see cref="MaxPromptTokens"/>.</summary>
    public int DroppedTooLong { get; private set; }

    /// <summary>Whether the batch being drawn (or last drawn) is a reward period.</summary>
    public bool InRewardPeriod { get; private set; }

    /// <summary>Recycled items waiting.</summary>
    public int Cached => _cache.Count;

    /// <summary>Judge and reflection items recycled so far.</summary>
    public (int Judge, int Reflection) Recycled { get; private set; }

    /// <inheritdoc/>
    public string Name => "spark";

    /// <inheritdoc/>
    public string Fingerprint => $"spark mode={Mode} mix={MixShare} {_policy.Fingerprint} recycling={_options}";

    /// <summary>
    /// Task prompts drawn so far (the policy stream's position): a resume continues the task stream exactly; the cache
    /// comes back through <see cref="LoadState"/>.
    /// </summary>
    public long Position
    {
        get => _policy.Position - _current.Count(p => p.Problem is not RecycledItem);
        set
        {
            _policy.Position = value;
            _current.Clear();
        }
    }

    /// <inheritdoc/>
    public GrpoPrompt Next()
    {
        if (_current.Count == 0) StartBatch();
        return _current.Dequeue();
    }

    private void StartBatch()
    {
        InRewardPeriod = false;
        IReadOnlyList<GrpoPrompt> recycled = [];
        if (Mode == SparkMode.RewardPeriods && _cache.TryTake(_batch, out var batch)) (recycled, InRewardPeriod) = (batch, true);
        else if (Mode == SparkMode.Mixed)
        {
            int take = Math.Min((int)Math.Round(MixShare * _batch), _cache.Count);
            if (take > 0 && _cache.TryTake(take, out var some)) recycled = some;
        }
        foreach (var prompt in recycled) _current.Enqueue(prompt);
        for (int i = recycled.Count; i < _batch; i++) _current.Enqueue(_policy.Next());
    }

    private bool Fits(GrpoPrompt prompt)
    {
        if (MaxPromptTokens is not { } limit || prompt.Ids.Count <= limit) return true;
        DroppedTooLong++;
        return false;
    }

    private GrpoPrompt ToPrompt(RecycledItem item)
    {
        var problem = new RlProblem($"{item.Kind.ToString().ToLowerInvariant()}:{item.SourceId}", item.Prompt, item.Label) { Verifier = item.Verifier };
        return new GrpoPrompt(_builder.Build(problem).Ids, item);
    }

    /// <inheritdoc/>
    public RewardScore Score(GrpoPrompt prompt, RolloutSample sample)
    {
        if (prompt.Problem is not RecycledItem item) return _policy.Score(prompt, sample);
        var result = VerifierOf(item.Verifier).Score(sample.Text ?? "", item.Label);
        return new RewardScore(result.Reward, result.Reward >= 1);
    }

    /// <summary>
    /// The <see cref="GrpoHooks.OnRollouts"/> callback: recycles the task groups of a step (never the recycled ones) and
    /// caches the items.
    /// </summary>
    public void OnRollouts(long step, IReadOnlyList<ScoredGroup> groups)
    {
        ArgumentNullException.ThrowIfNull(groups);
        if (Mode == SparkMode.Off) return;
        var recyclable = new List<RecyclingGroup>();
        foreach (var group in groups)
        {
            if (group.Prompt.Problem is not RlProblem problem) continue; // a recycled item's own rollouts are not recycled
            var verifier = problem.Verifier == VerifierNames.Countdown ? null : VerifierOf(problem.Verifier);
            var samples = group.Samples.Select((s, i) =>
            {
                string text = s.Text ?? "";
                string? answer = verifier?.Score(text, problem.Answer).Answer ?? BoxedAnswer.Last(text);
                return new RecyclingSample(text, answer, group.Scores[i].Correct);
            }).ToArray();
            recyclable.Add(new RecyclingGroup(problem.Id, problem.Prompt, problem.Answer, problem.Verifier, samples));
        }
        var (judge, reflection) = Recycler.Recycle(recyclable, _pool, _options, CounterRng.Next(_seed, (ulong)step));
        _cache.Add(judge.Concat(reflection).Select(ToPrompt).Where(Fits));
        Recycled = (Recycled.Judge + judge.Count, Recycled.Reflection + reflection.Count);
    }

    /// <summary>Per-step metrics for <see cref="GrpoHooks.StepMetrics"/>: reward_period (1 or 0), cached items, items recycled so far.</summary>
    public IReadOnlyDictionary<string, double> StepMetrics() => new Dictionary<string, double>
    {
        ["reward_period"] = InRewardPeriod ? 1 : 0, ["recycle_cache"] = _cache.Count,
        ["recycled_judge"] = Recycled.Judge, ["recycled_reflection"] = Recycled.Reflection, ["recycled_too_long"] = DroppedTooLong,
    };

    /// <inheritdoc/>
    public void SaveState(string checkpointDirectory)
    {
        string path = Path.Combine(checkpointDirectory, StateFile);
        var text = new System.Text.StringBuilder();
        text.Append(new JsonObject
        {
            ["format"] = "spark-recycle-cache/1", ["items"] = _cache.Count, ["recycled_judge"] = Recycled.Judge,
            ["recycled_reflection"] = Recycled.Reflection, ["dropped_too_long"] = DroppedTooLong,
        }.ToJsonString()).Append('\n');
        foreach (var prompt in _cache.Items)
        {
            var item = (RecycledItem)prompt.Problem!;
            text.Append(new JsonObject
            {
                ["kind"] = item.Kind.ToString().ToLowerInvariant(), ["prompt"] = item.Prompt, ["label"] = item.Label,
                ["verifier"] = item.Verifier, ["source_id"] = item.SourceId,
            }.ToJsonString()).Append('\n');
        }
        IO.AtomicFile.Write(path, stream => stream.Write(System.Text.Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <inheritdoc/>
    public void LoadState(string checkpointDirectory)
    {
        string path = Path.Combine(checkpointDirectory, StateFile);
        if (!File.Exists(path)) throw new SparkException($"{path}: missing; this checkpoint holds no SPARK recycle cache (written by an older version, or a copy without the file), so the run cannot resume exactly");
        var lines = File.ReadAllLines(path);
        JsonObject Parse(int i)
        {
            try { return IO.JsonLine.ParseObject(System.Text.Encoding.UTF8.GetBytes(lines[i])); }
            catch (SparkException e) { throw new SparkException($"{path}:{i + 1}: {e.Message}"); }
        }
        string Text(JsonObject o, string field, int i) =>
            o[field] is JsonValue v && v.TryGetValue(out string? value) ? value : throw new SparkException($"{path}:{i + 1}: field \"{field}\" must be a string");
        int Count(JsonObject o, string field) =>
            o[field] is JsonValue v && v.TryGetValue(out int value) && value >= 0 ? value : throw new SparkException($"{path}:1: field \"{field}\" must be a count ≥ 0");
        if (lines.Length == 0) throw new SparkException($"{path}: empty; expected a header line");
        var header = Parse(0);
        if (header["format"]?.ToString() != "spark-recycle-cache/1") throw new SparkException($"{path}:1: expected \"format\": \"spark-recycle-cache/1\"");
        int items = Count(header, "items");
        if (lines.Length - 1 != items) throw new SparkException($"{path}: the header announces {items} items but {lines.Length - 1} follow (a torn write?)");
        var prompts = new List<GrpoPrompt>(items);
        for (int i = 1; i < lines.Length; i++)
        {
            var o = Parse(i);
            string kind = Text(o, "kind", i);
            var parsed = Enum.GetValues<RecycledKind>().FirstOrDefault(k => k.ToString().Equals(kind, StringComparison.OrdinalIgnoreCase), (RecycledKind)(-1));
            if (!Enum.IsDefined(parsed)) throw new SparkException($"{path}:{i + 1}: kind \"{kind}\" is not pointwise, pairwise or reflection");
            prompts.Add(ToPrompt(new RecycledItem(parsed, Text(o, "prompt", i), Text(o, "label", i), Text(o, "verifier", i), Text(o, "source_id", i))));
        }
        _cache.Clear();
        _cache.Add(prompts);
        Recycled = (Count(header, "recycled_judge"), Count(header, "recycled_reflection"));
        DroppedTooLong = Count(header, "dropped_too_long");
    }

    private IVerifier VerifierOf(string name)
    {
        if (!_verifiers.TryGetValue(name, out var verifier)) _verifiers[name] = verifier = Verifiers.Create(name);
        return verifier;
    }
}
