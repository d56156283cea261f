using Spark.Native.Generation;
using Spark.Native.Rewards;
using Spark.Native.Rewards.Tasks;
using Spark.Native.Text;
using Spark.Native.Text.Templates;
using Spark.Native.Training.Recycling;

namespace Spark.Native.Judging;

/// <summary>Settings of <see cref="JudgeEvaluation.Run"/>.</summary>
public sealed record JudgeEvalOptions
{
    /// <summary>
    /// How the held-out answers are sampled (K per problem, temperature, length, seed, limit). Defaults: 4 samples at
    /// temperature 1, so a group holds both right and wrong answers often enough to make pairs.
    /// </summary>
    public EvalOptions Sampling { get; init; } = new() { K = 4, Temperature = 1f };
    /// <summary>What the judge is shown of each answer (as in training: the final answer by default).</summary>
    public JudgeInput Input { get; init; } = JudgeInput.AnswerOnly;
    /// <summary>Bins of the calibration error and the reliability table.</summary>
    public int CalibrationBins { get; init; } = 10;
}

/// <summary>One judged answer of the held-out rollouts.</summary>
/// <param name="Problem">Index of its problem.</param>
/// <param name="Sample">Index of the sample.</param>
/// <param name="Shown">What the judge saw.</param>
/// <param name="Correct">The verifier's label.</param>
/// <param name="Verdict">The judge's verdict.</param>
public sealed record JudgedAnswer(int Problem, int Sample, string Shown, bool Correct, Verdict Verdict);

/// <summary>One judged pair: a correct and a wrong answer of the same problem, shown in one order.</summary>
/// <param name="Problem">Index of its problem.</param>
/// <param name="CorrectSample">The correct sample's index.</param>
/// <param name="WrongSample">The wrong sample's index.</param>
/// <param name="CorrectIsA">Whether the correct answer was shown as A.</param>
/// <param name="Verdict">P(A is correct).</param>
public sealed record JudgedPair(int Problem, int CorrectSample, int WrongSample, bool CorrectIsA, Verdict Verdict)
{
    /// <summary>Whether the judge preferred the correct answer (P of its letter above 0.5).</summary>
    public bool Right => CorrectIsA ? Verdict.Probability > 0.5 : Verdict.Probability < 0.5;
}

/// <summary>How well the policy judges its own held-out answers.</summary>
/// <param name="Policy">The sampled answers and their verification (accuracy, pass@k …).</param>
/// <param name="Answers">Every judged answer (samples whose final answer could be extracted).</param>
/// <param name="Pairs">Every judged pair.</param>
/// <param name="PointwiseAccuracy">Share of answers judged right (P(Yes) ≥ 0.5 ⇔ correct).</param>
/// <param name="BalancedAccuracy">Mean of the accuracy on correct and on wrong answers (NaN when one class is absent).</param>
/// <param name="PairwiseAccuracy">Share of pairs where the correct answer got the higher probability.</param>
/// <param name="CalibrationError">Expected calibration error of P(Yes).</param>
/// <param name="Brier">Brier score of P(Yes).</param>
/// <param name="Auroc">Area under the ROC curve of P(Yes) (ranking quality; NaN when one class is absent).</param>
/// <param name="MeanYesOnCorrect">Mean P(Yes) on correct answers.</param>
/// <param name="MeanYesOnWrong">Mean P(Yes) on wrong answers.</param>
/// <param name="MeanVerdictMass">Mean probability mass on the two verdict tokens (format adherence).</param>
/// <param name="Calibration">The reliability table.</param>
/// <param name="Unjudged">Judge queries (answers and ordered pairs) left out without a verdict: their prompt did not fit the model's context.</param>
public sealed record JudgeEvalReport(EvalReport Policy, IReadOnlyList<JudgedAnswer> Answers, IReadOnlyList<JudgedPair> Pairs,
    double PointwiseAccuracy, double BalancedAccuracy, double PairwiseAccuracy, double CalibrationError, double Brier, double Auroc,
    double MeanYesOnCorrect, double MeanYesOnWrong, double MeanVerdictMass, IReadOnlyList<CalibrationBin> Calibration, int Unjudged)
{
    /// <summary>The headline numbers as a flat name → value map (metrics.jsonl, summaries).</summary>
    public IReadOnlyDictionary<string, double> Metrics(string prefix = "judge_") => new Dictionary<string, double>
    {
        [prefix + "pointwise_accuracy"] = PointwiseAccuracy, [prefix + "balanced_accuracy"] = BalancedAccuracy,
        [prefix + "pairwise_accuracy"] = PairwiseAccuracy, [prefix + "ece"] = CalibrationError, [prefix + "brier"] = Brier,
        [prefix + "auroc"] = Auroc, [prefix + "answers"] = Answers.Count, [prefix + "pairs"] = Pairs.Select(x => (x.Problem, x.CorrectSample, x.WrongSample)).Distinct().Count(),
    };
}

/// <summary>
/// Judge evaluation on held-out rollouts (SPARK's judge metrics): the policy samples K answers per held-out problem,
/// the verifier labels them, and the same policy judges them through <see cref="SelfJudge"/> — pointwise (every answer
/// with an extracted final answer, label = correct), pairwise (per problem with a right and a wrong answer, the first of
/// each, shown in both orders so position bias cancels) — with accuracy, balanced accuracy and calibration of P("Yes").
/// </summary>
public static class JudgeEvaluation
{
    /// <summary>Samples, verifies and judges.</summary>
    public static JudgeEvalReport Run(SparkModel model, Tokenizer tokenizer, ChatTemplate? template, IReadOnlyList<RlProblem> problems,
        Func<RlProblem, RolloutSample, VerifierResult> scorer, SelfJudge judge, JudgeEvalOptions options, Action<RolloutProgress>? onProgress = null)
    {
        ArgumentNullException.ThrowIfNull(judge);
        ArgumentNullException.ThrowIfNull(options);
        var policy = Evaluator.Run(model, tokenizer, template, problems, scorer, options.Sampling, onProgress);
        return Judge(policy, judge, options);
    }

    /// <summary>Judges answers already sampled and verified (<see cref="Evaluator.Run"/>'s report).</summary>
    public static JudgeEvalReport Judge(EvalReport policy, SelfJudge judge, JudgeEvalOptions options)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(judge);
        ArgumentNullException.ThrowIfNull(options);
        var answerRefs = new List<(int Problem, int Sample, string Shown, bool Correct)>();
        var pairRefs = new List<(int Problem, int Right, int Wrong, bool RightIsA)>();
        for (int problem = 0; problem < policy.Problems.Count; problem++)
        {
            var samples = policy.Problems[problem].Samples;
            for (int s = 0; s < samples.Count; s++)
                if (samples[s].Answer is { } answer)
                    answerRefs.Add((problem, s, Recycler.ShownAnswer(samples[s].Text, answer, options.Input), samples[s].Correct));
            int right = FirstIndex(samples, x => x.Correct), wrong = FirstIndex(samples, x => !x.Correct && x.Answer is not null);
            if (right >= 0 && wrong >= 0)
            {
                pairRefs.Add((problem, right, wrong, true));
                pairRefs.Add((problem, right, wrong, false));
            }
        }
        var answerVerdicts = judge.JudgeAnswers([.. answerRefs.Select(a => new JudgeQuery(policy.Problems[a.Problem].Prompt, a.Shown))]);
        var pairVerdicts = judge.JudgePairs([.. pairRefs.Select(x =>
        {
            var samples = policy.Problems[x.Problem].Samples;
            string right = Recycler.ShownAnswer(samples[x.Right].Text, samples[x.Right].Answer, options.Input);
            string wrong = Recycler.ShownAnswer(samples[x.Wrong].Text, samples[x.Wrong].Answer, options.Input);
            return x.RightIsA ? new PairQuery(policy.Problems[x.Problem].Prompt, right, wrong) : new PairQuery(policy.Problems[x.Problem].Prompt, wrong, right);
        })]);

        // queries without a verdict (their prompt did not fit the context) are left out and counted
        var answers = answerRefs.Select((a, i) => new JudgedAnswer(a.Problem, a.Sample, a.Shown, a.Correct, answerVerdicts[i]))
            .Where(a => !double.IsNaN(a.Verdict.Probability)).ToArray();
        var pairs = pairRefs.Select((x, i) => new JudgedPair(x.Problem, x.Right, x.Wrong, x.RightIsA, pairVerdicts[i]))
            .Where(x => !double.IsNaN(x.Verdict.Probability)).ToArray();
        int unjudged = answerRefs.Count - answers.Length + pairRefs.Count - pairs.Length;
        var p = answers.Select(a => a.Verdict.Probability).ToArray();
        var y = answers.Select(a => a.Correct).ToArray();
        return new JudgeEvalReport(policy, answers, pairs,
            PointwiseAccuracy: JudgeMetrics.Accuracy(p, y),
            BalancedAccuracy: JudgeMetrics.BalancedAccuracy(p, y),
            PairwiseAccuracy: pairs.Length == 0 ? double.NaN : pairs.Count(x => x.Right) / (double)pairs.Length,
            CalibrationError: JudgeMetrics.ExpectedCalibrationError(p, y, options.CalibrationBins),
            Brier: JudgeMetrics.Brier(p, y),
            Auroc: JudgeMetrics.Auroc(p, y),
            MeanYesOnCorrect: MeanOrNaN(answers.Where(a => a.Correct).Select(a => a.Verdict.Probability)),
            MeanYesOnWrong: MeanOrNaN(answers.Where(a => !a.Correct).Select(a => a.Verdict.Probability)),
            MeanVerdictMass: MeanOrNaN(answers.Select(a => a.Verdict.Mass).Concat(pairs.Select(x => x.Verdict.Mass))),
            Calibration: JudgeMetrics.Bins(p, y, options.CalibrationBins), Unjudged: unjudged);
    }

    private static int FirstIndex<T>(IReadOnlyList<T> items, Func<T, bool> match)
    {
        for (int i = 0; i < items.Count; i++) if (match(items[i])) return i;
        return -1;
    }

    private static double MeanOrNaN(IEnumerable<double> values)
    {
        double sum = 0;
        int n = 0;
        foreach (double v in values) { sum += v; n++; }
        return n == 0 ? double.NaN : sum / n;
    }
}
