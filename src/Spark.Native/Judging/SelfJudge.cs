using Spark.Native.Generation;
using Spark.Native.Rewards.Tasks;
using Spark.Native.Text;
using Spark.Native.Text.Templates;
using Spark.Native.Training.Recycling;

namespace Spark.Native.Judging;

/// <summary>Settings of <see cref="SelfJudge"/>.</summary>
public sealed record SelfJudgeOptions
{
    /// <summary>
    /// The start of the judge's answer, appended to the judge prompt: the verdict token is read right after it. The
    /// templates ask for the verdict inside <c>\boxed{}</c>, so a trained judge writes this first.
    /// </summary>
    public string VerdictPrefix { get; init; } = @"\boxed{";
    /// <summary>Which pointwise template of the pool asks the question (index into <see cref="TemplatePool.Pointwise"/>).</summary>
    public int PointwiseTemplate { get; init; }
    /// <summary>Which pairwise template of the pool asks the question (index into <see cref="TemplatePool.Pairwise"/>).</summary>
    public int PairwiseTemplate { get; init; }
    /// <summary>Tokens per batched forward when scoring many prompts.</summary>
    public int MaxTokensPerForward { get; init; } = 4096;
    /// <summary>
    /// 0: the verdict is read right after the judge prompt and <see cref="VerdictPrefix"/> (a quick verdict, no
    /// decoding). N &gt; 0: a generative judge — it first writes up to N tokens of its own reasoning, greedily, until it
    /// writes the verdict prefix (or runs out of tokens, and the prefix is appended), and the verdict is read after that.
    /// Either way P("Yes") comes from the logits of the verdict token, not from sampled verdicts.
    /// </summary>
    public int ReasoningTokens { get; init; }
}

/// <summary>One answer to judge.</summary>
/// <param name="Question">The problem as the policy saw it.</param>
/// <param name="Answer">What the judge is shown of the answer (see <see cref="Recycler.ShownAnswer"/>).</param>
public readonly record struct JudgeQuery(string Question, string Answer);

/// <summary>Two answers to compare.</summary>
/// <param name="Question">The problem.</param>
/// <param name="AnswerA">The answer shown as A.</param>
/// <param name="AnswerB">The answer shown as B.</param>
public readonly record struct PairQuery(string Question, string AnswerA, string AnswerB);

/// <summary>A verdict read from the logits of the verdict token.</summary>
/// <param name="Probability">
/// The probability of the positive verdict renormalised over the two verdict tokens: P(Yes) (or P(A) for an A/B
/// pointwise template) = σ(logit_yes − logit_no); for a pair, P(A is the correct one).
/// </param>
/// <param name="Mass">How much of the whole next-token distribution the two verdict tokens hold (near 1 for a judge that follows the format).</param>
/// <param name="Reasoning">What a generative judge wrote before its verdict (<see cref="SelfJudgeOptions.ReasoningTokens"/>), else null.</param>
public readonly record struct Verdict(double Probability, double Mass, string? Reasoning = null);

/// <summary>
/// The policy as its own generative reward model at test time (SPARK, arXiv 2509.22624): a judge prompt from the
/// template pool the model was trained on, followed by <see cref="SelfJudgeOptions.VerdictPrefix"/>, and the verdict read
/// from the logits of the next token — P("Yes") without sampling. Many queries are scored in a few batched forwards.
/// </summary>
public sealed class SelfJudge
{
    private readonly SparkModel _model;
    private readonly Tokenizer _tokenizer;
    private readonly RlPromptBuilder _builder;
    private readonly string _prefixText;
    private readonly int _reasoningTokens;
    private readonly int[] _prefix;
    private readonly (int Positive, int Negative) _pointwiseTokens, _pairwiseTokens;
    private readonly int _maxTokensPerForward;

    /// <summary>Creates a judge over <paramref name="model"/>.</summary>
    /// <param name="model">The policy, judging its own answers.</param>
    /// <param name="tokenizer">Its tokenizer.</param>
    /// <param name="template">Its chat template, or null for plain prompts (as in training).</param>
    /// <param name="pool">The template pool the judge prompts come from.</param>
    /// <param name="options">Which templates and prefix.</param>
    /// <exception cref="SparkException">A template index outside the pool, or a tokenizer whose verdict words do not start with distinct tokens after the prefix.</exception>
    public SelfJudge(SparkModel model, Tokenizer tokenizer, ChatTemplate? template, TemplatePool pool, SelfJudgeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(pool);
        options ??= new SelfJudgeOptions();
        if (options.PointwiseTemplate < 0 || options.PointwiseTemplate >= pool.Pointwise.Count)
            throw new SparkException($"judge: pointwise template {options.PointwiseTemplate} does not exist (the pool has {pool.Pointwise.Count})");
        if (options.PairwiseTemplate < 0 || options.PairwiseTemplate >= pool.Pairwise.Count)
            throw new SparkException($"judge: pairwise template {options.PairwiseTemplate} does not exist (the pool has {pool.Pairwise.Count})");
        if (options.MaxTokensPerForward < 1) throw new SparkException($"judge: max tokens per forward is {options.MaxTokensPerForward}; expected ≥ 1");
        if (options.ReasoningTokens < 0) throw new SparkException($"judge: reasoning tokens is {options.ReasoningTokens}; expected ≥ 0");
        if (options.ReasoningTokens > 0 && options.VerdictPrefix.Length == 0) throw new SparkException("judge: a generative judge needs a non-empty verdict prefix to stop its reasoning at");
        _model = model;
        _tokenizer = tokenizer;
        _prefixText = options.VerdictPrefix;
        _reasoningTokens = options.ReasoningTokens;
        _builder = new RlPromptBuilder(tokenizer, template);
        Pointwise = pool.Pointwise[options.PointwiseTemplate];
        Pairwise = pool.Pairwise[options.PairwiseTemplate];
        _prefix = tokenizer.Encode(options.VerdictPrefix, SpecialTokens.Omit);
        _pointwiseTokens = Pointwise.Style == TemplateStyle.YesNo
            ? VerdictTokens(tokenizer, options.VerdictPrefix, "Yes", "No")
            : VerdictTokens(tokenizer, options.VerdictPrefix, "A", "B");
        _pairwiseTokens = VerdictTokens(tokenizer, options.VerdictPrefix, "A", "B");
        _maxTokensPerForward = options.MaxTokensPerForward;
    }

    /// <summary>The pointwise template in use.</summary>
    public PromptTemplate Pointwise { get; }

    /// <summary>The pairwise template in use.</summary>
    public PromptTemplate Pairwise { get; }

    /// <summary>
    /// P(correct) of each answer: P("Yes") for a Yes/No template, P("A") for an A = correct / B = incorrect one; a
    /// query whose prompt does not fit the model's context gets <see cref="Unjudged"/>.
    /// </summary>
    public IReadOnlyList<Verdict> JudgeAnswers(IReadOnlyList<JudgeQuery> queries)
    {
        ArgumentNullException.ThrowIfNull(queries);
        var prompts = queries.Select(q => Pointwise.Render(new Dictionary<string, string> { ["question"] = q.Question, ["answer"] = q.Answer })).ToArray();
        return Score(prompts, _pointwiseTokens);
    }

    /// <summary>P(answer A is the correct one) of each pair (<see cref="Unjudged"/> when the prompt does not fit the context).</summary>
    public IReadOnlyList<Verdict> JudgePairs(IReadOnlyList<PairQuery> queries)
    {
        ArgumentNullException.ThrowIfNull(queries);
        var prompts = queries.Select(q => Pairwise.Render(new Dictionary<string, string>
        {
            ["question"] = q.Question, ["answer_a"] = q.AnswerA, ["answer_b"] = q.AnswerB,
        })).ToArray();
        return Score(prompts, _pairwiseTokens);
    }

    private Verdict[] Score(IReadOnlyList<string> judgePrompts, (int Positive, int Negative) tokens)
    {
        var verdicts = new Verdict[judgePrompts.Count];
        if (judgePrompts.Count == 0) return verdicts;
        var prompts = judgePrompts.Select(p => _builder.Build(new RlProblem("judge", p, "")).Ids).ToArray();
        var reasoning = _reasoningTokens > 0 ? Reason(prompts) : new string?[prompts.Length];
        var ids = prompts.Select((p, i) => (IReadOnlyList<int>)[.. p, .. reasoning[i] is { Length: > 0 } r ? _tokenizer.Encode(r, SpecialTokens.Omit) : [], .. _prefix]).ToArray();
        // a prompt longer than the context cannot be judged: its verdict is undefined (NaN), not an error
        var fits = Enumerable.Range(0, ids.Length).Where(i => ids[i].Count <= _model.Config.MaxPositions).ToArray();
        Array.Fill(verdicts, Unjudged);
        // 64 prompts at a time, each row reduced to its verdict at once: never more than 64 vocabulary rows in memory
        foreach (var chunk in fits.Chunk(64))
        {
            var logits = _model.NextTokenLogits([.. chunk.Select(i => ids[i])], _maxTokensPerForward);
            for (int f = 0; f < chunk.Length; f++)
                verdicts[chunk[f]] = FromLogits(logits.Row(f), tokens.Positive, tokens.Negative) with { Reasoning = reasoning[chunk[f]] };
        }
        return verdicts;
    }

    /// <summary>
    /// The generative judge's reasoning for each prompt: greedy decoding until it writes the verdict prefix (the text
    /// before it), or the whole text when it does not within <see cref="SelfJudgeOptions.ReasoningTokens"/> (fewer when
    /// the context has less room: the prefix must still fit after the reasoning); null (no reasoning) for a prompt that
    /// leaves no room for it.
    /// </summary>
    private string?[] Reason(int[][] prompts)
    {
        var reasoning = new string?[prompts.Length];
        int Budget(int i) => Math.Min(_reasoningTokens, _model.Config.MaxPositions - prompts[i].Length - _prefix.Length);
        var room = Enumerable.Range(0, prompts.Length).Where(i => Budget(i) >= 1).ToArray();
        if (room.Length == 0) return reasoning;
        var engine = new RolloutEngine(_model, new RolloutOptions { Slots = 64, SkipSpecialTokens = SkipSpecialTokens.Yes }, _tokenizer);
        var samples = engine.Run([.. room.Select(i => new RolloutRequest
        {
            Prompt = prompts[i], Temperature = 0, MaxCompletionTokens = Budget(i), StopStrings = [_prefixText],
        })]).Samples;
        for (int r = 0; r < room.Length; r++) reasoning[room[r]] = samples[r].Text ?? "";
        return reasoning;
    }

    /// <summary>The verdict of a judge prompt that does not fit the model's context: probability NaN, mass 0.</summary>
    public static Verdict Unjudged { get; } = new(double.NaN, 0);

    /// <summary>
    /// The verdict of one row of next-token logits: P(positive) = σ(ℓ₊ − ℓ₋) over the two verdict tokens, and the mass
    /// softmax(ℓ)₊ + softmax(ℓ)₋ they hold of the whole distribution.
    /// </summary>
    public static Verdict FromLogits(ReadOnlySpan<float> logits, int positive, int negative)
    {
        double max = double.NegativeInfinity;
        foreach (float x in logits) max = Math.Max(max, x);
        double sum = 0;
        foreach (float x in logits) sum += Math.Exp(x - max);
        double lp = logits[positive], ln = logits[negative];
        double probability = 1 / (1 + Math.Exp(ln - lp));
        double mass = (Math.Exp(lp - max) + Math.Exp(ln - max)) / sum;
        return new Verdict(probability, mass);
    }

    /// <summary>
    /// The first token of each verdict word written after the prefix, found by encoding prefix + word: it must extend
    /// the prefix's own encoding (no merge across the boundary) and the two tokens must differ.
    /// </summary>
    internal static (int Positive, int Negative) VerdictTokens(Tokenizer tokenizer, string prefix, string positive, string negative)
    {
        int[] head = tokenizer.Encode(prefix, SpecialTokens.Omit);
        int First(string word)
        {
            int[] full = tokenizer.Encode(prefix + word, SpecialTokens.Omit);
            if (full.Length <= head.Length || !full.AsSpan(0, head.Length).SequenceEqual(head))
                throw new SparkException($"judge: the tokenizer encodes \"{prefix}{word}\" across the verdict prefix \"{prefix}\", so no verdict token can be read after it; choose another prefix");
            return full[head.Length];
        }
        int p = First(positive), n = First(negative);
        if (p == n) throw new SparkException($"judge: \"{positive}\" and \"{negative}\" start with the same token ({p}) after \"{prefix}\"; their verdicts cannot be told apart");
        return (p, n);
    }
}
