using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Spark.Native.Generation;
using Spark.Native.Rewards.Tasks;
using Spark.Native.Text;
using Spark.Native.Text.Templates;

namespace Spark.Native.Rewards;

/// <summary>Pure evaluation metrics over sampled completions: pass@k, maj@k, accuracy, mean length.</summary>
public static class EvalMetrics
{
    /// <summary>
    /// The unbiased pass@k estimator of Chen et al. 2021, "Evaluating Large Language Models Trained on Code"
    /// (arXiv:2107.03374, §2.1): with n samples of which c are correct, pass@k = 1 − C(n−c, k) / C(n, k), the
    /// probability that a uniformly drawn k-subset of the n samples holds at least one correct sample. Computed as in
    /// the paper's numerically stable form, 1 − ∏_{i=n−c+1}^{n} (1 − k/i), which never forms a binomial coefficient;
    /// when n − c &lt; k every k-subset holds a correct sample and the result is exactly 1.
    /// </summary>
    /// <param name="n">Samples drawn (≥ 1).</param>
    /// <param name="c">Correct samples among them (0 … n).</param>
    /// <param name="k">Subset size (1 … n).</param>
    /// <exception cref="ArgumentOutOfRangeException">n &lt; 1, c outside [0, n] or k outside [1, n].</exception>
    public static double PassAtK(int n, int c, int k)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        if (c < 0 || c > n) throw new ArgumentOutOfRangeException(nameof(c), c, $"correct count must lie in [0, {n}]");
        if (k < 1 || k > n) throw new ArgumentOutOfRangeException(nameof(k), k, $"k must lie in [1, {n}]");
        if (n - c < k) return 1.0;
        double miss = 1.0;
        for (int i = n - c + 1; i <= n; i++) miss *= 1.0 - (double)k / i;
        return 1.0 - miss;
    }

    /// <summary>
    /// The key under which answers are grouped for a majority vote: the answer with every white-space character removed
    /// and enclosing <c>$…$</c> dropped (so "1, 2" and "$1,2$" vote together); otherwise compared ordinally
    /// (case-sensitive). Null for a null answer (no vote).
    /// </summary>
    public static string? NormalizeAnswer(string? answer)
    {
        if (answer is null) return null;
        var sb = new StringBuilder(answer.Length);
        foreach (char ch in answer) if (!char.IsWhiteSpace(ch)) sb.Append(ch);
        string s = sb.ToString();
        while (s.Length >= 2 && s[0] == '$' && s[^1] == '$') s = s[1..^1];
        return s;
    }

    /// <summary>
    /// Majority vote over the extracted answers of k samples (maj@k, "self-consistency", Wang et al. 2022,
    /// arXiv:2203.11171). Answers are grouped by <see cref="NormalizeAnswer"/>; samples without an answer (null) do
    /// not vote. The winner is the group with the most votes; a tie goes to the group whose first vote comes earliest
    /// (lowest sample index), so the result is deterministic and, for samples in generation order, favours the answer
    /// reached first. The vote is correct when the winning group's earliest sample is correct (samples with equal
    /// normalized answers are, for the built-in verifiers, scored alike).
    /// </summary>
    /// <param name="answers">Extracted answer of each sample, in sample order (null: none).</param>
    /// <param name="correct">Whether each sample is correct; same length as <paramref name="answers"/>.</param>
    /// <returns>The winning sample index (its answer is the majority answer) and whether it is correct; (-1, false) when no sample has an answer.</returns>
    /// <exception cref="ArgumentException">The lists differ in length.</exception>
    public static (int Winner, bool Correct) MajorityVote(IReadOnlyList<string?> answers, IReadOnlyList<bool> correct)
    {
        ArgumentNullException.ThrowIfNull(answers);
        ArgumentNullException.ThrowIfNull(correct);
        if (answers.Count != correct.Count) throw new ArgumentException($"{answers.Count} answers but {correct.Count} correctness flags");
        var groups = new Dictionary<string, (int First, int Votes)>(StringComparer.Ordinal);
        for (int i = 0; i < answers.Count; i++)
        {
            if (NormalizeAnswer(answers[i]) is not { } key) continue;
            groups[key] = groups.TryGetValue(key, out var g) ? (g.First, g.Votes + 1) : (i, 1);
        }
        int winner = -1, best = 0;
        foreach (var (first, votes) in groups.Values)
            if (votes > best || (votes == best && first < winner)) (winner, best) = (first, votes);
        return winner < 0 ? (-1, false) : (winner, correct[winner]);
    }

    /// <summary>Mean of the lengths (0 for none).</summary>
    public static double MeanLength(IEnumerable<int> lengths)
    {
        ArgumentNullException.ThrowIfNull(lengths);
        long sum = 0, count = 0;
        foreach (int l in lengths) { sum += l; count++; }
        return count == 0 ? 0 : (double)sum / count;
    }

    /// <summary>Accuracy: the share of problems whose first sample (the greedy one at temperature 0) is correct; 0 for none.</summary>
    public static double Accuracy(IEnumerable<bool> firstSampleCorrect)
    {
        ArgumentNullException.ThrowIfNull(firstSampleCorrect);
        int right = 0, count = 0;
        foreach (bool b in firstSampleCorrect) { if (b) right++; count++; }
        return count == 0 ? 0 : (double)right / count;
    }
}

/// <summary>Settings of an <see cref="Evaluator.Run"/>.</summary>
public sealed record EvalOptions
{
    /// <summary>Samples per problem (n = k): pass@1 … pass@K and maj@K are reported. Forced to 1 when <see cref="Temperature"/> is 0.</summary>
    public int K { get; init; } = 1;

    /// <summary>Sampling temperature; 0 is greedy decoding, which makes every sample identical, so K is forced to 1.</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Nucleus sampling mass; 1 = off.</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Keep the k most likely tokens; 0 = off.</summary>
    public int TopK { get; init; }

    /// <summary>Most completion tokens per sample.</summary>
    public int MaxCompletionTokens { get; init; } = 512;

    /// <summary>Seed of the sampling streams (sample i of problem p draws from a stream keyed by the seed, p and i).</summary>
    public ulong Seed { get; init; }

    /// <summary>KV-cache slots of the rollout engine (sequences decoding at once).</summary>
    public int Slots { get; init; } = 32;

    /// <summary>Evaluate only the first this-many problems; null = all.</summary>
    public int? Limit { get; init; }

    /// <summary>A sample counts as correct when its reward is at least this (the rule-based verifiers give 0 or 1).</summary>
    public double CorrectThreshold { get; init; } = 1.0;

    /// <summary>The samples per problem actually drawn: 1 when greedy, else <see cref="K"/>.</summary>
    public int EffectiveK => Temperature == 0f ? 1 : K;

    internal void Validate()
    {
        if (K < 1) throw new SparkException($"eval option k is {K}; expected ≥ 1");
        if (!(Temperature >= 0f) || float.IsInfinity(Temperature)) throw new SparkException($"eval option temperature is {Temperature}; expected a finite value ≥ 0 (0 = greedy)");
        if (!(TopP > 0f && TopP <= 1f)) throw new SparkException($"eval option top_p is {TopP}; expected in (0, 1]");
        if (TopK < 0) throw new SparkException($"eval option top_k is {TopK}; expected ≥ 0 (0 = off)");
        if (MaxCompletionTokens < 1) throw new SparkException($"eval option max_completion_tokens is {MaxCompletionTokens}; expected ≥ 1");
        if (Slots < 1) throw new SparkException($"eval option slots is {Slots}; expected ≥ 1");
        if (Limit is < 0) throw new SparkException($"eval option limit is {Limit}; expected ≥ 0");
        if (!double.IsFinite(CorrectThreshold)) throw new SparkException($"eval option correct_threshold is {CorrectThreshold}; expected a finite value");
    }
}

/// <summary>One scored sample of a problem.</summary>
/// <param name="Text">The decoded completion.</param>
/// <param name="Tokens">Completion length in tokens.</param>
/// <param name="FinishReason">Why it ended.</param>
/// <param name="Truncated">Whether it hit the token limit.</param>
/// <param name="Reward">The scorer's reward.</param>
/// <param name="Answer">The answer the scorer extracted, or null.</param>
/// <param name="Correct">Reward ≥ <see cref="EvalOptions.CorrectThreshold"/>.</param>
public sealed record EvalSample(string Text, int Tokens, RolloutFinishReason FinishReason, bool Truncated, double Reward, string? Answer, bool Correct);

/// <summary>The evaluation of one problem.</summary>
/// <param name="Id">The problem's id.</param>
/// <param name="Prompt">The problem's user message.</param>
/// <param name="Reference">The reference answer.</param>
/// <param name="Samples">Its K scored samples, in sample order.</param>
/// <param name="PassAtK">pass@j for j = 1 … K (index j − 1), by <see cref="EvalMetrics.PassAtK"/> with n = K.</param>
/// <param name="MajorityAnswer">The majority-vote answer over the K samples, or null when none had an answer.</param>
/// <param name="MajorityCorrect">Whether the majority answer is correct (see <see cref="EvalMetrics.MajorityVote"/>).</param>
public sealed record EvalProblemResult(string Id, string Prompt, string Reference, IReadOnlyList<EvalSample> Samples, IReadOnlyList<double> PassAtK,
    string? MajorityAnswer, bool MajorityCorrect)
{
    /// <summary>Correct samples.</summary>
    public int CorrectCount => Samples.Count(s => s.Correct);

    /// <summary>Whether the first sample is correct (what <see cref="EvalReport.Accuracy"/> counts).</summary>
    public bool FirstCorrect => Samples.Count > 0 && Samples[0].Correct;
}

/// <summary>An evaluation's per-problem results and aggregates (means over problems).</summary>
/// <param name="Problems">Per-problem results, in input order.</param>
/// <param name="K">Samples per problem actually drawn.</param>
/// <param name="Temperature">The sampling temperature (0 = greedy).</param>
/// <param name="Accuracy">Share of problems whose first sample is correct.</param>
/// <param name="PassAtK">Mean pass@j over problems for j = 1 … K (index j − 1).</param>
/// <param name="MajorityAtK">maj@K: share of problems whose majority-vote answer is correct.</param>
/// <param name="MeanCompletionTokens">Mean completion length in tokens over all samples.</param>
/// <param name="TruncatedFraction">Share of samples that hit the token limit.</param>
/// <param name="Stats">The rollout engine's counters (tokens, time, throughput).</param>
public sealed record EvalReport(IReadOnlyList<EvalProblemResult> Problems, int K, float Temperature, double Accuracy, IReadOnlyList<double> PassAtK,
    double MajorityAtK, double MeanCompletionTokens, double TruncatedFraction, RolloutStats Stats)
{
    /// <summary>Generated tokens per second of wall time.</summary>
    public double TokensPerSecond => Stats.TokensPerSecond;
}

/// <summary>Samples K completions per problem with the <see cref="RolloutEngine"/>, scores them, and aggregates.</summary>
public static class Evaluator
{
    /// <summary>
    /// Evaluates <paramref name="problems"/> (the first <see cref="EvalOptions.Limit"/> of them): builds each prompt
    /// with <see cref="RlPromptBuilder"/>, samples <see cref="EvalOptions.EffectiveK"/> completions per problem in one
    /// continuously batched rollout run (the model's EOS ends a completion), scores each with
    /// <paramref name="scorer"/>, and reports accuracy (first sample), pass@1 … pass@K, maj@K and mean length. With
    /// temperature 0 decoding is greedy and K is forced to 1, since greedy samples are identical.
    /// </summary>
    /// <param name="model">The policy.</param>
    /// <param name="tokenizer">Its tokenizer (prompts are encoded and completions decoded with it; special tokens are left out of the text).</param>
    /// <param name="template">The chat template, or null for plain-text prompts.</param>
    /// <param name="problems">The problems.</param>
    /// <param name="scorer">Scores one completion of a problem (e.g. <see cref="EvalScorers.ByVerifierName"/>).</param>
    /// <param name="options">Sampling and selection settings.</param>
    /// <param name="onProgress">Called after each forward of the rollout run.</param>
    /// <exception cref="SparkException">Invalid options, or a prompt the model cannot take.</exception>
    public static EvalReport Run(SparkModel model, Tokenizer tokenizer, ChatTemplate? template, IReadOnlyList<RlProblem> problems,
        Func<RlProblem, RolloutSample, VerifierResult> scorer, EvalOptions options, Action<RolloutProgress>? onProgress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(problems);
        ArgumentNullException.ThrowIfNull(scorer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var selected = options.Limit is { } limit ? problems.Take(limit).ToArray() : problems.ToArray();
        int k = options.EffectiveK;
        var builder = new RlPromptBuilder(tokenizer, template);
        var rollout = Sample(model, tokenizer, [.. selected.Select(p => builder.Build(p).Ids)], k, options, onProgress);

        var results = new EvalProblemResult[selected.Length];
        for (int p = 0; p < selected.Length; p++)
        {
            var problem = selected[p];
            var samples = new EvalSample[k];
            for (int i = 0; i < k; i++)
            {
                var s = rollout.Samples[p * k + i];
                Debug.Assert(s.RequestIndex == p && s.SampleIndex == i);
                var score = scorer(problem, s);
                samples[i] = new EvalSample(s.Text ?? "", s.Tokens.Count, s.FinishReason, s.Truncated, score.Reward, score.Answer,
                    score.Reward >= options.CorrectThreshold);
            }
            int c = samples.Count(x => x.Correct);
            var passAt = Enumerable.Range(1, k).Select(j => EvalMetrics.PassAtK(k, c, j)).ToArray();
            var (winner, majorityCorrect) = EvalMetrics.MajorityVote(samples.Select(x => x.Answer).ToArray(), samples.Select(x => x.Correct).ToArray());
            results[p] = new EvalProblemResult(problem.Id, problem.Prompt, problem.Answer, samples, passAt, winner < 0 ? null : samples[winner].Answer, majorityCorrect);
        }

        int count = results.Length;
        var meanPass = Enumerable.Range(0, k).Select(j => count == 0 ? 0 : results.Average(r => r.PassAtK[j])).ToArray();
        var all = results.SelectMany(r => r.Samples).ToArray();
        return new EvalReport(results, k, options.Temperature,
            Accuracy: EvalMetrics.Accuracy(results.Select(r => r.FirstCorrect)),
            PassAtK: meanPass,
            MajorityAtK: count == 0 ? 0 : results.Count(r => r.MajorityCorrect) / (double)count,
            MeanCompletionTokens: EvalMetrics.MeanLength(all.Select(s => s.Tokens)),
            TruncatedFraction: all.Length == 0 ? 0 : all.Count(s => s.Truncated) / (double)all.Length,
            rollout.Stats);
    }

    /// <summary>
    /// <paramref name="samples"/> completions of each prompt in one continuously batched rollout run (results in request
    /// order, special tokens left out of the text), sampled as <paramref name="options"/> says (temperature, top-k,
    /// top-p, length, slots); request p draws from the stream (seed, p). Evaluation and test-time scaling share it.
    /// </summary>
    internal static RolloutResult Sample(SparkModel model, Tokenizer tokenizer, IReadOnlyList<int[]> prompts, int samples, EvalOptions options,
        Action<RolloutProgress>? onProgress = null)
    {
        var requests = prompts.Select((ids, p) => new RolloutRequest
        {
            Prompt = ids, Samples = samples, Temperature = options.Temperature, TopK = options.TopK, TopP = options.TopP,
            MaxCompletionTokens = options.MaxCompletionTokens, Seed = CounterRng.Next(options.Seed, (ulong)p),
        }).ToArray();
        var engine = new RolloutEngine(model, new RolloutOptions { Slots = options.Slots, Seed = options.Seed, SkipSpecialTokens = SkipSpecialTokens.Yes }, tokenizer);
        return engine.Run(requests, onProgress);
    }
}

/// <summary>Scorers for <see cref="Evaluator.Run"/>: a problem's <see cref="RlProblem.Verifier"/> name to its checker.</summary>
public static class EvalScorers
{
    /// <summary>The verifier names <see cref="ByVerifierName"/> accepts: <see cref="Verifiers.Names"/> and "countdown".</summary>
    public static IReadOnlyList<string> Names { get; } = [.. Verifiers.Names, VerifierNames.Countdown];

    /// <summary>
    /// A scorer that reads each problem's verifier name: "countdown" uses the countdown checker
    /// (<see cref="CountdownChecker"/>: reward 1 for a <see cref="CountdownVerdict.Correct"/> expression, the extracted
    /// expression as the answer); any other name is created by <see cref="Verifiers.Create"/> (math, exact, numeric, …)
    /// and scores the completion text against <see cref="RlProblem.Answer"/>. Verifiers are created once per name and
    /// shared (they are thread-safe).
    /// </summary>
    /// <exception cref="SparkException">(When scoring) a problem names an unknown verifier; the message lists the valid ones.</exception>
    public static Func<RlProblem, RolloutSample, VerifierResult> ByVerifierName()
    {
        var cache = new ConcurrentDictionary<string, IVerifier>(StringComparer.Ordinal);
        return (problem, sample) =>
        {
            ArgumentNullException.ThrowIfNull(problem);
            ArgumentNullException.ThrowIfNull(sample);
            string text = sample.Text ?? "";
            if (problem.Verifier == VerifierNames.Countdown) return Countdown(text, problem);
            var verifier = cache.GetOrAdd(problem.Verifier, name => Create(name));
            return verifier.Score(text, problem.Answer);
        };
    }

    /// <summary>Checks that every problem names a verifier <see cref="ByVerifierName"/> knows, before any sampling.</summary>
    /// <exception cref="SparkException">The first problem with an unknown verifier; the message lists the valid ones.</exception>
    public static void Validate(IEnumerable<RlProblem> problems)
    {
        ArgumentNullException.ThrowIfNull(problems);
        foreach (var p in problems)
            if (!Names.Contains(p.Verifier, StringComparer.Ordinal))
                throw new SparkException($"problem {p.Id}: unknown verifier '{p.Verifier}'; expected one of: {string.Join(", ", Names)}");
    }

    private static IVerifier Create(string name) =>
        Verifiers.Names.Contains(name, StringComparer.Ordinal) ? Verifiers.Create(name)
            : throw new SparkException($"unknown verifier '{name}'; expected one of: {string.Join(", ", Names)}");

    private static VerifierResult Countdown(string text, RlProblem problem)
    {
        var (numbers, target) = CountdownTask.ReadMetadata(problem);
        string? expression = CountdownChecker.ExtractExpression(text);
        if (expression is null) return new VerifierResult(0, null, "no expression");
        var verdict = CountdownChecker.Check(expression, numbers, target);
        return new VerifierResult(verdict == CountdownVerdict.Correct ? 1 : 0, expression, verdict.ToString());
    }
}
