using Spark.Native.Generation;

namespace Spark.Native.Training.Recycling;

/// <summary>What a judge item shows of each answer.</summary>
public enum JudgeInput
{
    /// <summary>Only the extracted final answer (the reference implementation).</summary>
    AnswerOnly,
    /// <summary>The whole completion, reasoning included.</summary>
    FullReasoning,
}

/// <summary>Ratios and caps of recycling; the defaults are the SPARK reference's (docs/spark-algorithm.md).</summary>
public sealed record RecyclingOptions
{
    /// <summary>For a group with correct and wrong answers: the chance of a pointwise item (else pairwise). Reference 0.3.</summary>
    public double MixedPointwiseShare { get; init; } = 0.3;
    /// <summary>What judge items show of an answer.</summary>
    public JudgeInput JudgeInput { get; init; } = JudgeInput.AnswerOnly;
    /// <summary>Share of reflection items that show the whole wrong attempt (else only its final answer). Reference 0.5.</summary>
    public double ReflectionFullShare { get; init; } = 0.5;
    /// <summary>Most judge items kept per policy period (the reference keeps half a batch).</summary>
    public int MaxJudgeItems { get; init; } = 32;
    /// <summary>Most reflection items kept per policy period (the reference keeps half a batch).</summary>
    public int MaxReflectionItems { get; init; } = 32;

    internal void Validate()
    {
        if (!(MixedPointwiseShare is >= 0 and <= 1) || !(ReflectionFullShare is >= 0 and <= 1))
            throw new SparkException($"recycling shares must lie in [0, 1] (mixed pointwise {MixedPointwiseShare}, reflection full {ReflectionFullShare})");
        if (MaxJudgeItems < 0 || MaxReflectionItems < 0)
            throw new SparkException($"recycling caps must be ≥ 0 (judge {MaxJudgeItems}, reflection {MaxReflectionItems})");
    }
}

/// <summary>One answer of a group as recycling sees it.</summary>
/// <param name="Text">The whole completion.</param>
/// <param name="FinalAnswer">The extracted final answer, or null when none could be extracted.</param>
/// <param name="Correct">The verifier's verdict.</param>
public sealed record RecyclingSample(string Text, string? FinalAnswer, bool Correct);

/// <summary>One prompt's group of scored answers, with what its reflection item needs.</summary>
/// <param name="SourceId">The problem's id.</param>
/// <param name="Question">The question as the user wrote it (without chat formatting).</param>
/// <param name="ReferenceAnswer">The ground truth (the label of reflection items).</param>
/// <param name="ReferenceVerifier">The verifier that checks answers to it.</param>
/// <param name="Samples">The G answers.</param>
public sealed record RecyclingGroup(string SourceId, string Question, string ReferenceAnswer, string ReferenceVerifier, IReadOnlyList<RecyclingSample> Samples);

/// <summary>What a recycled item trains.</summary>
public enum RecycledKind
{
    /// <summary>Judge one answer.</summary>
    Pointwise,
    /// <summary>Pick the correct one of two answers.</summary>
    Pairwise,
    /// <summary>Revise a wrong attempt.</summary>
    Reflection,
}

/// <summary>A new prompt with a verifiable label, made from the policy's own rollouts.</summary>
/// <param name="Kind">What it trains.</param>
/// <param name="Prompt">The rendered instruction.</param>
/// <param name="Label">The answer a completion must box: Yes/No or A/B for judge items, the ground truth for reflection.</param>
/// <param name="Verifier">The verifier name that checks it ("verdict" for judge items, the problem's for reflection).</param>
/// <param name="SourceId">The problem it came from.</param>
public sealed record RecycledItem(RecycledKind Kind, string Prompt, string Label, string Verifier, string SourceId);

/// <summary>
/// SPARK recycling (arXiv 2509.22624, §3; docs/spark-algorithm.md): turns one policy period's scored groups into judge
/// items (pointwise and pairwise) and reflection items with verifiable labels. A pure function of its inputs and seed.
/// </summary>
public static class Recycler
{
    /// <summary>The verifier of judge items (boxed Yes/No or letter).</summary>
    public const string JudgeVerifier = "verdict";

    /// <summary>
    /// Per group: all correct → a pointwise item on one correct answer (label Yes, or A in the A/B variant); all wrong →
    /// a pointwise item on one wrong answer whose final answer was extracted (No / B), none when no answer was; mixed →
    /// with <see cref="RecyclingOptions.MixedPointwiseShare"/> a pointwise item (correct or wrong class 50/50, then a
    /// random member), else a pairwise item with one correct and one wrong answer placed at A/B at random (label: the
    /// correct one's letter). At most one reflection item per group, from a wrong answer (full attempt or final answer
    /// only, by <see cref="RecyclingOptions.ReflectionFullShare"/>), labelled with the ground truth. Each kind is then
    /// subsampled to its cap. Templates are drawn at random from <paramref name="pool"/>.
    /// </summary>
    public static (IReadOnlyList<RecycledItem> Judge, IReadOnlyList<RecycledItem> Reflection) Recycle(IReadOnlyList<RecyclingGroup> groups,
        TemplatePool pool, RecyclingOptions options, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var judge = new List<RecycledItem>();
        var reflection = new List<RecycledItem>();
        for (int g = 0; g < groups.Count; g++)
        {
            var group = groups[g];
            var rng = new Draw(CounterRng.Next(seed, (ulong)g));
            var correct = group.Samples.Where(s => s.Correct).ToArray();
            // a wrong answer can be judged only when its final answer was extracted (else there is nothing to show)
            var wrong = group.Samples.Where(s => !s.Correct && s.FinalAnswer is not null).ToArray();
            bool anyWrong = group.Samples.Any(s => !s.Correct);
            if (correct.Length == group.Samples.Count && correct.Length > 0)
                judge.Add(Pointwise(group, rng.Pick(correct), isCorrect: true, pool, options, rng));
            else if (correct.Length == 0)
            {
                if (wrong.Length > 0) judge.Add(Pointwise(group, rng.Pick(wrong), isCorrect: false, pool, options, rng));
            }
            else if (rng.Uniform() < options.MixedPointwiseShare || wrong.Length == 0)
            {
                bool pickCorrect = wrong.Length == 0 || rng.Uniform() < 0.5;
                judge.Add(Pointwise(group, pickCorrect ? rng.Pick(correct) : rng.Pick(wrong), pickCorrect, pool, options, rng));
            }
            else judge.Add(Pairwise(group, rng.Pick(correct), rng.Pick(wrong), pool, options, rng));

            if (anyWrong)
            {
                bool full = rng.Uniform() < options.ReflectionFullShare;
                var candidates = full ? group.Samples.Where(s => !s.Correct).ToArray() : wrong;
                if (candidates.Length > 0) reflection.Add(Reflect(group, rng.Pick(candidates), full, pool, rng));
            }
        }
        return (Subsample(judge, options.MaxJudgeItems, CounterRng.Next(seed, ulong.MaxValue)),
            Subsample(reflection, options.MaxReflectionItems, CounterRng.Next(seed, ulong.MaxValue - 1)));
    }

    private static RecycledItem Pointwise(RecyclingGroup group, RecyclingSample sample, bool isCorrect, TemplatePool pool, RecyclingOptions options, Draw rng)
    {
        var template = rng.Pick(pool.Pointwise);
        string label = template.Style == TemplateStyle.YesNo ? (isCorrect ? "Yes" : "No") : (isCorrect ? "A" : "B");
        string prompt = template.Render(new Dictionary<string, string> { ["question"] = group.Question, ["answer"] = Shown(sample, options) });
        return new RecycledItem(RecycledKind.Pointwise, prompt, label, JudgeVerifier, group.SourceId);
    }

    private static RecycledItem Pairwise(RecyclingGroup group, RecyclingSample right, RecyclingSample wrong, TemplatePool pool, RecyclingOptions options, Draw rng)
    {
        var template = rng.Pick(pool.Pairwise);
        bool rightFirst = rng.Uniform() < 0.5;
        var (a, b) = rightFirst ? (right, wrong) : (wrong, right);
        string prompt = template.Render(new Dictionary<string, string>
        {
            ["question"] = group.Question, ["answer_a"] = Shown(a, options), ["answer_b"] = Shown(b, options),
        });
        return new RecycledItem(RecycledKind.Pairwise, prompt, rightFirst ? "A" : "B", JudgeVerifier, group.SourceId);
    }

    private static RecycledItem Reflect(RecyclingGroup group, RecyclingSample attempt, bool full, TemplatePool pool, Draw rng)
    {
        var style = full ? TemplateStyle.Full : TemplateStyle.AnswerOnly;
        var template = rng.Pick(pool.Reflection.Where(t => t.Style == style).ToArray());
        string prompt = template.Render(new Dictionary<string, string> { ["question"] = group.Question, ["attempt"] = full ? attempt.Text : attempt.FinalAnswer! });
        return new RecycledItem(RecycledKind.Reflection, prompt, group.ReferenceAnswer, group.ReferenceVerifier, group.SourceId);
    }

    private static string Shown(RecyclingSample sample, RecyclingOptions options) => ShownAnswer(sample.Text, sample.FinalAnswer, options.JudgeInput);

    /// <summary>
    /// What a judge prompt shows of an answer: its extracted final answer (<see cref="JudgeInput.AnswerOnly"/>), or the
    /// whole completion (<see cref="JudgeInput.FullReasoning"/>, or when no final answer was extracted). Training and the
    /// test-time judge use this one rule, so the judge sees at test time what it was trained on.
    /// </summary>
    public static string ShownAnswer(string completion, string? finalAnswer, JudgeInput input) =>
        input == JudgeInput.FullReasoning || finalAnswer is null ? completion : finalAnswer;

    private static IReadOnlyList<RecycledItem> Subsample(List<RecycledItem> items, int cap, ulong seed)
    {
        if (items.Count <= cap) return items;
        // a seeded shuffle, then the first cap items in their original order
        var keys = items.Select((_, i) => (Key: CounterRng.Next(seed, (ulong)i), Index: i)).OrderBy(x => x.Key).Take(cap).Select(x => x.Index).Order();
        return [.. keys.Select(i => items[i])];
    }

    /// <summary>A group's random draws: uniform numbers in order from its counter stream.</summary>
    private sealed class Draw(ulong stream)
    {
        private ulong _counter;
        public double Uniform() => CounterRng.Uniform(stream, _counter++);
        public T Pick<T>(IReadOnlyList<T> items) => items[Math.Min(items.Count - 1, (int)(Uniform() * items.Count))];
    }
}

/// <summary>
/// Accumulates recycled items (or the prompts made from them) across policy periods and releases them a full batch at a
/// time, oldest first (the reference's cache): a reward period runs when <see cref="TryTake"/> succeeds.
/// </summary>
/// <typeparam name="T">What is cached.</typeparam>
public sealed class RecycleCache<T>
{
    private readonly Queue<T> _items = new();

    /// <summary>Items waiting.</summary>
    public int Count => _items.Count;

    /// <summary>The waiting items, oldest first.</summary>
    public IReadOnlyList<T> Items => [.. _items];

    /// <summary>Drops every waiting item.</summary>
    public void Clear() => _items.Clear();

    /// <summary>Adds items at the back.</summary>
    public void Add(IEnumerable<T> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        foreach (var item in items) _items.Enqueue(item);
    }

    /// <summary>The oldest <paramref name="batchSize"/> items, when that many are waiting.</summary>
    public bool TryTake(int batchSize, out IReadOnlyList<T> batch)
    {
        if (batchSize < 1) throw new SparkException($"recycle batch size {batchSize} must be ≥ 1");
        if (_items.Count < batchSize) { batch = []; return false; }
        var taken = new T[batchSize];
        for (int i = 0; i < batchSize; i++) taken[i] = _items.Dequeue();
        batch = taken;
        return true;
    }
}
