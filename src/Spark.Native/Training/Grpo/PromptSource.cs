using Spark.Native.Generation;

namespace Spark.Native.Training.Grpo;

/// <summary>The score of one completion: its reward, and whether it counts as correct for the accuracy metrics.</summary>
/// <param name="Reward">The reward (verifiers give [0, 1]; shaping may add to it).</param>
/// <param name="Correct">Whether the answer is right (a composed reward such as correctness + format can be below 1 and still right).</param>
public readonly record struct RewardScore(double Reward, bool Correct);

/// <summary>
/// Where the prompts of GRPO rollout batches come from, and how their completions are scored. The trainer asks for
/// <see cref="GrpoOptions.PromptsPerStep"/> prompts per rollout batch and scores every completion with the source of
/// its prompt, so a source can bring its own verifier (SPARK adds recycled judge and reflection prompts this way,
/// beside the task's prompts, without the core loop knowing).
/// </summary>
public interface IPromptSource
{
    /// <summary>A short name for logs and metrics ("policy", "judge", …).</summary>
    string Name { get; }

    /// <summary>
    /// What the prompts are (e.g. their count, seed and a hash of their ids): saved with a run and compared on resume,
    /// so a run cannot be resumed on other prompts.
    /// </summary>
    string Fingerprint { get; }

    /// <summary>
    /// How far the source has read: the trainer saves it with every checkpoint and sets it back on resume. A source
    /// whose next prompts depend only on it (<see cref="ShuffledPrompts"/>) resumes exactly; a source with more state
    /// (say, a queue filled by <see cref="GrpoHooks.OnRollouts"/>) implements <see cref="ICheckpointedPromptSource"/>.
    /// </summary>
    long Position { get; set; }

    /// <summary>The next prompt (deterministic given <see cref="Position"/>).</summary>
    GrpoPrompt Next();

    /// <summary>Scores one completion of a prompt this source gave out.</summary>
    RewardScore Score(GrpoPrompt prompt, RolloutSample sample);
}

/// <summary>
/// A prompt source with state beyond its <see cref="IPromptSource.Position"/> (SPARK's cache of recycled items): the
/// trainer has it write that state into every checkpoint folder (inside the atomic write) and read it back on resume,
/// so a resumed run continues as the uninterrupted one would.
/// </summary>
public interface ICheckpointedPromptSource : IPromptSource
{
    /// <summary>Writes the state into <paramref name="checkpointDirectory"/> (a folder being assembled; its own files only).</summary>
    void SaveState(string checkpointDirectory);

    /// <summary>Reads the state back from a checkpoint folder written by <see cref="SaveState"/>.</summary>
    /// <exception cref="SparkException">The state file is missing or malformed (the message names it).</exception>
    void LoadState(string checkpointDirectory);
}

/// <summary>
/// A fixed list of prompts read in a fresh shuffle per pass (the shuffle of pass e is a function of the seed and e),
/// scored by one reward function. <see cref="Position"/> counts prompts drawn since the start.
/// </summary>
public sealed class ShuffledPrompts : IPromptSource
{
    private readonly IReadOnlyList<GrpoPrompt> _prompts;
    private readonly Func<GrpoPrompt, RolloutSample, RewardScore> _score;
    private readonly ulong _seed;
    private int[] _order = [];
    private long _orderPass = -1;

    /// <summary>Creates the source.</summary>
    /// <exception cref="SparkException">No prompts.</exception>
    public ShuffledPrompts(IReadOnlyList<GrpoPrompt> prompts, Func<GrpoPrompt, RolloutSample, RewardScore> score, ulong seed, string name = "policy")
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(score);
        if (prompts.Count == 0) throw new SparkException($"prompt source '{name}' has no prompts");
        (_prompts, _score, _seed, Name) = (prompts, score, seed, name);
    }

    /// <summary>A source whose completions count as correct when their reward is ≥ 1.</summary>
    public static ShuffledPrompts WithReward(IReadOnlyList<GrpoPrompt> prompts, Func<GrpoPrompt, RolloutSample, double> reward, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(reward);
        return new ShuffledPrompts(prompts, (p, s) => { double r = reward(p, s); return new RewardScore(r, r >= 1); }, seed);
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <summary>The prompts.</summary>
    public IReadOnlyList<GrpoPrompt> Prompts => _prompts;

    /// <inheritdoc/>
    public string Fingerprint => $"{Name} prompts={_prompts.Count} seed={_seed} ids={IdsHash():x16}";

    /// <inheritdoc/>
    public long Position
    {
        get => _position;
        set => _position = value >= 0 ? value : throw new SparkException($"prompt source '{Name}': position {value} is negative");
    }

    private long _position;

    private ulong IdsHash()
    {
        ulong h = 14695981039346656037UL;
        foreach (var prompt in _prompts)
        {
            foreach (int id in prompt.Ids) h = (h ^ (uint)id) * 1099511628211UL;
            h = (h ^ 0xFFFF_FFFFUL) * 1099511628211UL; // prompt boundary
        }
        return h;
    }

    /// <inheritdoc/>
    public GrpoPrompt Next()
    {
        long pass = Position / _prompts.Count;
        if (pass != _orderPass) (_order, _orderPass) = (SftTrainer.Shuffle(_prompts.Count, _seed, checked((int)pass)), pass);
        return _prompts[_order[_position++ % _prompts.Count]];
    }

    /// <inheritdoc/>
    public RewardScore Score(GrpoPrompt prompt, RolloutSample sample) => _score(prompt, sample);
}

/// <summary>One prompt's group of completions after scoring, as the trainer hands it to <see cref="GrpoHooks.OnRollouts"/>.</summary>
/// <param name="Prompt">The prompt.</param>
/// <param name="Samples">Its G completions.</param>
/// <param name="Scores">Their scores (before overlong shaping).</param>
public sealed record ScoredGroup(GrpoPrompt Prompt, IReadOnlyList<RolloutSample> Samples, IReadOnlyList<RewardScore> Scores);

/// <summary>Callbacks of a GRPO run; all optional.</summary>
public sealed record GrpoHooks
{
    /// <summary>After every step, with its metrics.</summary>
    public Action<GrpoProgress>? OnStep { get; init; }

    /// <summary>
    /// Once per step, after its rollouts are scored and before the update, with every group sampled in the step
    /// (including groups dynamic sampling dropped) — what SPARK recycles into judge and reflection prompts. Called with
    /// the step number (1-based).
    /// </summary>
    public Action<long, IReadOnlyList<ScoredGroup>>? OnRollouts { get; init; }

    /// <summary>Extra numbers for each step's metrics line (e.g. which period a SPARK step was), read after the step.</summary>
    public Func<IReadOnlyDictionary<string, double>>? StepMetrics { get; init; }

    /// <summary>Held-out evaluation every <see cref="GrpoOptions.EvalEvery"/> steps; its numbers join the step's metrics as eval_*.</summary>
    public Func<SparkModel, IReadOnlyDictionary<string, double>>? Evaluate { get; init; }
}
