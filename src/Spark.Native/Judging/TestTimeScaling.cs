using Spark.Native.Generation;
using Spark.Native.Rewards;
using Spark.Native.Rewards.Tasks;
using Spark.Native.Text;
using Spark.Native.Text.Templates;
using Spark.Native.Training.Recycling;

namespace Spark.Native.Judging;

/// <summary>An answer the policy wrote.</summary>
/// <param name="Text">The completion.</param>
/// <param name="FinalAnswer">Its extracted final answer, or null.</param>
/// <param name="Correct">The verifier's verdict (false when unknown, e.g. without a reference).</param>
public sealed record Attempt(string Text, string? FinalAnswer, bool Correct);

/// <summary>One round of the reflect loop: an attempt and the judge's P("Yes") for it.</summary>
public sealed record ReflectStep(Attempt Attempt, double ProbabilityYes);

/// <summary>The reflect loop of one problem.</summary>
/// <param name="Steps">The first answer, then each revision, with its verdict.</param>
/// <param name="Accepted">Whether the loop stopped on a "Yes" (else it ran out of rounds).</param>
public sealed record ReflectTrace(IReadOnlyList<ReflectStep> Steps, bool Accepted)
{
    /// <summary>The answer the loop returns: its last attempt.</summary>
    public Attempt Final => Steps[^1].Attempt;
    /// <summary>Revisions made (0 when the first answer was accepted).</summary>
    public int Revisions => Steps.Count - 1;
}

/// <summary>Settings of <see cref="TestTimeScaling.Reflect"/> and <see cref="TestTimeScaling.BestOf"/>.</summary>
public sealed record TestTimeOptions
{
    /// <summary>Most tokens per answer.</summary>
    public int MaxCompletionTokens { get; init; } = 512;
    /// <summary>
    /// Sampling temperature of answers. Null: greedy (0) for the reflect loop, 1 for best-of-N (whose N answers must
    /// differ).
    /// </summary>
    public float? Temperature { get; init; }
    /// <summary>Seed of all sampling.</summary>
    public ulong Seed { get; init; }
    /// <summary>Concurrent sequences of the rollout engine.</summary>
    public int Slots { get; init; } = 32;
    /// <summary>Evaluate only the first this many problems.</summary>
    public int? Limit { get; init; }
    /// <summary>What the judge and the revision prompt are shown of an attempt (as in training: the final answer).</summary>
    public JudgeInput Input { get; init; } = JudgeInput.AnswerOnly;
    /// <summary>A verdict counts as "Yes" at this P("Yes") or above.</summary>
    public double AcceptThreshold { get; init; } = 0.5;

    internal void Validate()
    {
        if (MaxCompletionTokens < 1) throw new SparkException($"max completion tokens is {MaxCompletionTokens}; expected ≥ 1");
        if (Temperature is { } t && !(t >= 0)) throw new SparkException($"temperature is {t}; expected ≥ 0");
        if (Slots < 1) throw new SparkException($"slots is {Slots}; expected ≥ 1");
        if (Limit is < 0) throw new SparkException($"limit is {Limit}; expected ≥ 0");
        if (!(AcceptThreshold is > 0 and <= 1)) throw new SparkException($"accept threshold is {AcceptThreshold}; expected a value in (0, 1]");
    }
}

/// <summary>What the reflect loop did over a problem set.</summary>
/// <param name="Traces">Per problem.</param>
/// <param name="Rounds">The most revisions allowed.</param>
/// <param name="PlainAccuracy">Share of first answers that are correct (plain decoding).</param>
/// <param name="ReflectAccuracy">Share of final answers that are correct.</param>
/// <param name="AcceptedShare">Share of problems where the loop stopped on a "Yes".</param>
/// <param name="MeanRevisions">Mean revisions per problem.</param>
/// <param name="WrongToRight">Problems whose first answer was wrong and final answer right.</param>
/// <param name="RightToWrong">Problems whose first answer was right and final answer wrong.</param>
public sealed record ReflectReport(IReadOnlyList<ReflectTrace> Traces, int Rounds, double PlainAccuracy, double ReflectAccuracy,
    double AcceptedShare, double MeanRevisions, int WrongToRight, int RightToWrong)
{
    /// <summary>ReflectAccuracy − PlainAccuracy.</summary>
    public double Gain => ReflectAccuracy - PlainAccuracy;
}

/// <summary>Best-of-N selection for one problem.</summary>
/// <param name="Candidates">The N answers.</param>
/// <param name="ProbabilityYes">The judge's P("Yes") of each.</param>
/// <param name="Chosen">The index picked: the highest P("Yes").</param>
public sealed record BestOfChoice(IReadOnlyList<Attempt> Candidates, IReadOnlyList<double> ProbabilityYes, int Chosen);

/// <summary>What best-of-N selection did over a problem set.</summary>
/// <param name="Choices">Per problem.</param>
/// <param name="N">Answers per problem.</param>
/// <param name="FirstAccuracy">Share of problems whose first sample is correct (plain sampling, pass@1).</param>
/// <param name="SampleAccuracy">Mean share of correct samples (unbiased pass@1 over all N).</param>
/// <param name="BestOfAccuracy">Share of problems whose chosen answer is correct.</param>
/// <param name="MajorityAccuracy">Share of problems whose most frequent final answer is correct (maj@N, for comparison).</param>
/// <param name="OracleAccuracy">Share of problems with any correct sample (pass@N, the ceiling of any selection).</param>
public sealed record BestOfReport(IReadOnlyList<BestOfChoice> Choices, int N, double FirstAccuracy, double SampleAccuracy,
    double BestOfAccuracy, double MajorityAccuracy, double OracleAccuracy)
{
    /// <summary>BestOfAccuracy − SampleAccuracy: the gain of self-judged selection over a random sample.</summary>
    public double Gain => BestOfAccuracy - SampleAccuracy;
}

/// <summary>
/// Test-time use of the learned self-judgement (SPARK, arXiv 2509.22624, §3.3): the reflect loop (answer → self-judge →
/// revise, until a "Yes" or N rounds) and best-of-N selection by P("Yes") from the verdict token's logits.
/// </summary>
public static class TestTimeScaling
{
    /// <summary>
    /// The reflect loop, independent of any model: <paramref name="answer"/> writes the first attempt of each problem
    /// (previous attempt null) or revises its last one; <paramref name="judge"/> gives P("Yes") of attempts. A problem
    /// stops at the first attempt judged "Yes" (P ≥ <paramref name="threshold"/>) or after <paramref name="rounds"/>
    /// revisions; every round answers and judges all problems still open in one batch.
    /// </summary>
    public static IReadOnlyList<ReflectTrace> ReflectLoop(int problems, int rounds,
        Func<IReadOnlyList<(int Problem, Attempt? Previous)>, IReadOnlyList<Attempt>> answer,
        Func<IReadOnlyList<(int Problem, Attempt Attempt)>, IReadOnlyList<double>> judge, double threshold = 0.5)
    {
        ArgumentNullException.ThrowIfNull(answer);
        ArgumentNullException.ThrowIfNull(judge);
        if (problems < 0) throw new SparkException($"problems is {problems}; expected ≥ 0");
        if (rounds < 0) throw new SparkException($"reflect rounds is {rounds}; expected ≥ 0");
        var steps = Enumerable.Range(0, problems).Select(_ => new List<ReflectStep>()).ToArray();
        var accepted = new bool[problems];
        var open = Enumerable.Range(0, problems).ToList();
        for (int round = 0; round <= rounds && open.Count > 0; round++)
        {
            var attempts = answer([.. open.Select(p => (p, round == 0 ? null : steps[p][^1].Attempt))]);
            if (attempts.Count != open.Count) throw new SparkException($"reflect: {attempts.Count} attempts for {open.Count} open problems");
            var verdicts = judge([.. open.Select((p, i) => (p, attempts[i]))]);
            if (verdicts.Count != open.Count) throw new SparkException($"reflect: {verdicts.Count} verdicts for {open.Count} attempts");
            var stillOpen = new List<int>();
            for (int i = 0; i < open.Count; i++)
            {
                int p = open[i];
                steps[p].Add(new ReflectStep(attempts[i], verdicts[i]));
                if (verdicts[i] >= threshold) accepted[p] = true;
                else stillOpen.Add(p);
            }
            open = stillOpen;
        }
        return [.. steps.Select((s, p) => new ReflectTrace(s, accepted[p]))];
    }

    /// <summary>The candidate with the highest P("Yes"); the first of equal ones.</summary>
    public static int SelectBest(IReadOnlyList<double> probabilityYes)
    {
        ArgumentNullException.ThrowIfNull(probabilityYes);
        if (probabilityYes.Count == 0) throw new SparkException("best-of-N needs at least one candidate");
        int best = 0;
        for (int i = 1; i < probabilityYes.Count; i++) if (probabilityYes[i] > probabilityYes[best]) best = i;
        return best;
    }

    /// <summary>
    /// Runs the reflect loop with the model: greedy first answers (unless a temperature is set), P("Yes") from
    /// <paramref name="judge"/> (0 for an attempt without a final answer), revisions written from the first reflection
    /// template of the pool in the style of <see cref="TestTimeOptions.Input"/> (the final answer, or the whole attempt)
    /// and scored against the original problem. A revision prompt too long for the model's context keeps the attempt.
    /// </summary>
    public static ReflectReport Reflect(SparkModel model, Tokenizer tokenizer, ChatTemplate? template, IReadOnlyList<RlProblem> problems,
        Func<RlProblem, RolloutSample, VerifierResult> scorer, SelfJudge judge, TemplatePool pool, int rounds, TestTimeOptions options)
    {
        ArgumentNullException.ThrowIfNull(problems);
        ArgumentNullException.ThrowIfNull(scorer);
        ArgumentNullException.ThrowIfNull(judge);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var selected = options.Limit is { } limit ? problems.Take(limit).ToArray() : problems.ToArray();
        var style = options.Input == JudgeInput.FullReasoning ? TemplateStyle.Full : TemplateStyle.AnswerOnly;
        var revise = pool.Reflection.First(t => t.Style == style);
        var builder = new RlPromptBuilder(tokenizer, template);
        float temperature = options.Temperature ?? 0f;
        int round = 0;
        var traces = ReflectLoop(selected.Length, rounds,
            answer: batch =>
            {
                var problems = batch.Select(x => x.Previous is null ? selected[x.Problem] : selected[x.Problem] with
                {
                    Prompt = revise.Render(new Dictionary<string, string>
                    {
                        ["question"] = selected[x.Problem].Prompt,
                        ["attempt"] = Recycler.ShownAnswer(x.Previous.Text, x.Previous.FinalAnswer, options.Input),
                    }),
                    SystemPrompt = null,
                }).ToArray();
                // a revision prompt that leaves no room in the context to answer keeps the attempt as it is
                var ids = problems.Select(p => builder.Build(p).Ids).ToArray();
                var fits = Enumerable.Range(0, ids.Length).Where(i => batch[i].Previous is null || ids[i].Length < model.Config.MaxPositions).ToArray();
                var samples = Sample(model, tokenizer, [.. fits.Select(i => ids[i])], 1, temperature, options, CounterRng.Next(options.Seed, (ulong)round++));
                var attempts = batch.Select(x => x.Previous).ToArray();
                for (int f = 0; f < fits.Length; f++) attempts[fits[f]] = ToAttempt(selected[batch[fits[f]].Problem], samples[f], scorer);
                return attempts!;
            },
            judge: batch => Judge(judge, [.. batch.Select(x => (selected[x.Problem].Prompt, x.Attempt))], options.Input),
            options.AcceptThreshold);
        int n = traces.Count;
        return new ReflectReport(traces, rounds,
            PlainAccuracy: n == 0 ? 0 : traces.Count(t => t.Steps[0].Attempt.Correct) / (double)n,
            ReflectAccuracy: n == 0 ? 0 : traces.Count(t => t.Final.Correct) / (double)n,
            AcceptedShare: n == 0 ? 0 : traces.Count(t => t.Accepted) / (double)n,
            MeanRevisions: n == 0 ? 0 : traces.Average(t => t.Revisions),
            WrongToRight: traces.Count(t => !t.Steps[0].Attempt.Correct && t.Final.Correct),
            RightToWrong: traces.Count(t => t.Steps[0].Attempt.Correct && !t.Final.Correct));
    }

    /// <summary>
    /// Best-of-N: samples <paramref name="n"/> answers per problem (temperature 1 unless set), judges each with
    /// <paramref name="judge"/> in batched forwards (no extra sampling) and keeps the highest P("Yes").
    /// </summary>
    public static BestOfReport BestOf(SparkModel model, Tokenizer tokenizer, ChatTemplate? template, IReadOnlyList<RlProblem> problems,
        Func<RlProblem, RolloutSample, VerifierResult> scorer, SelfJudge judge, int n, TestTimeOptions options)
    {
        ArgumentNullException.ThrowIfNull(problems);
        ArgumentNullException.ThrowIfNull(scorer);
        ArgumentNullException.ThrowIfNull(judge);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (n < 1) throw new SparkException($"best-of-N: N is {n}; expected ≥ 1");
        var selected = options.Limit is { } limit ? problems.Take(limit).ToArray() : problems.ToArray();
        var builder = new RlPromptBuilder(tokenizer, template);
        var samples = Sample(model, tokenizer, [.. selected.Select(p => builder.Build(p).Ids)], n, options.Temperature ?? 1f, options, options.Seed);
        var candidates = selected.Select((problem, p) => Enumerable.Range(0, n).Select(i => ToAttempt(problem, samples[p * n + i], scorer)).ToArray()).ToArray();
        var verdicts = Judge(judge, [.. candidates.SelectMany((c, p) => c.Select(a => (selected[p].Prompt, a)))], options.Input);
        var choices = candidates.Select((c, p) =>
        {
            var probabilities = verdicts.Skip(p * n).Take(n).ToArray();
            return new BestOfChoice(c, probabilities, SelectBest(probabilities));
        }).ToArray();
        int count = choices.Length;
        double Share(Func<BestOfChoice, bool> f) => count == 0 ? 0 : choices.Count(f) / (double)count;
        return new BestOfReport(choices, n,
            FirstAccuracy: Share(c => c.Candidates[0].Correct),
            SampleAccuracy: count == 0 ? 0 : choices.Average(c => c.Candidates.Count(a => a.Correct) / (double)n),
            BestOfAccuracy: Share(c => c.Candidates[c.Chosen].Correct),
            MajorityAccuracy: Share(c => EvalMetrics.MajorityVote(c.Candidates.Select(a => a.FinalAnswer).ToArray(), c.Candidates.Select(a => a.Correct).ToArray()).Correct),
            OracleAccuracy: Share(c => c.Candidates.Any(a => a.Correct)));
    }

    /// <summary>
    /// P("Yes") of each attempt in one batched judge call; an attempt without an extractable final answer cannot be
    /// right and gets 0 without asking the judge (recycling never trains the judge on such answers either), and so does
    /// one whose judge prompt does not fit the context.
    /// </summary>
    private static double[] Judge(SelfJudge judge, IReadOnlyList<(string Question, Attempt Attempt)> items, JudgeInput input)
    {
        var asked = Enumerable.Range(0, items.Count).Where(i => items[i].Attempt.FinalAnswer is not null).ToArray();
        var verdicts = judge.JudgeAnswers([.. asked.Select(i =>
            new JudgeQuery(items[i].Question, Recycler.ShownAnswer(items[i].Attempt.Text, items[i].Attempt.FinalAnswer, input)))]);
        var probabilities = new double[items.Count];
        for (int a = 0; a < asked.Length; a++) probabilities[asked[a]] = double.IsNaN(verdicts[a].Probability) ? 0 : verdicts[a].Probability;
        return probabilities;
    }

    private static Attempt ToAttempt(RlProblem problem, RolloutSample sample, Func<RlProblem, RolloutSample, VerifierResult> scorer)
    {
        var score = scorer(problem, sample);
        return new Attempt(sample.Text ?? "", score.Answer, score.Reward >= 1);
    }

    /// <summary>Samples <paramref name="samples"/> completions per prompt (the evaluator's rollout run), in request order.</summary>
    private static IReadOnlyList<RolloutSample> Sample(SparkModel model, Tokenizer tokenizer, IReadOnlyList<int[]> prompts,
        int samples, float temperature, TestTimeOptions options, ulong seed) =>
        prompts.Count == 0 ? [] : Evaluator.Sample(model, tokenizer, prompts, samples, new EvalOptions
        {
            Temperature = temperature, MaxCompletionTokens = options.MaxCompletionTokens, Slots = options.Slots, Seed = seed,
        }).Samples;
}
