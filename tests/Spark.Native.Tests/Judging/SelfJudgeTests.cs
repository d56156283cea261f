using Spark.Native.Demo;
using Spark.Native.Judging;
using Spark.Native.Rewards;
using Spark.Native.Rewards.Tasks;
using Spark.Native.Tests.Fixtures;
using Spark.Native.Tests.IO;
using Spark.Native.Text;
using Spark.Native.Training.Recycling;

namespace Spark.Native.Tests.Judging;

/// <summary>A byte-level tokenizer and a random Qwen2-style model with 96 positions, built once for the class.</summary>
public sealed class TinyJudgeModel : IDisposable
{
    private readonly TempDir _dir = new();

    public TinyJudgeModel()
    {
        int vocab = ModelFactory.WriteByteTokenizer(_dir.Path, [DemoRunner.EndOfText]);
        ModelFactory.WriteRandomModel(_dir.Path, new ScratchModelShape(Layers: 2, Hidden: 32, Intermediate: 64, Heads: 4, KeyValueHeads: 2, MaxPositions: 96),
            vocab, eosId: 256, seed: 11);
        Tokenizer = Tokenizer.Load(_dir.Path);
        Model = SparkModel.Load(_dir.Path);
    }

    public string Directory => _dir.Path;
    public Tokenizer Tokenizer { get; }
    public SparkModel Model { get; }

    public void Dispose()
    {
        Model.Dispose();
        _dir.Dispose();
    }
}

public class SelfJudgeTests(TinyJudgeModel tiny) : IClassFixture<TinyJudgeModel>
{
    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    [Fact]
    public void NextTokenLogitsEqualTheLastRowOfAFullForwardInEveryChunking()
    {
        int[][] prompts = [.. Enumerable.Range(0, 7).Select(i => tiny.Tokenizer.Encode(new string('x', 1 + 5 * i) + " = ?", SpecialTokens.Omit))];
        foreach (int perForward in new[] { 4096, 40, 1 }) // one pass, several, one prompt per pass
        {
            var batched = tiny.Model.NextTokenLogits(prompts, perForward);
            Assert.Equal(prompts.Length, batched.Rows);
            for (int i = 0; i < prompts.Length; i++)
            {
                var full = tiny.Model.Forward(prompts[i]);
                double error = Numerics.RelativeError(batched.Row(i), full.Row(full.Rows - 1));
                Assert.True(error < 1e-5, $"prompt {i}, {perForward} tokens per forward: relative error {error}");
            }
        }
        Assert.Contains("prompt 1 is empty", Assert.Throws<SparkException>(() => tiny.Model.NextTokenLogits([[1], []])).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void VerdictIsTheTwoTokenSoftmaxAfterTheJudgePromptAndPrefix()
    {
        var pool = TemplatePool.Terse;
        var judge = new SelfJudge(tiny.Model, tiny.Tokenizer, null, pool, new SelfJudgeOptions { VerdictPrefix = " \\boxed{" });
        Assert.Equal(TemplateStyle.YesNo, judge.Pointwise.Style);
        var queries = new[] { new JudgeQuery("12 + 30 =", "42"), new JudgeQuery("7 - 9 =", "-3") };
        var verdicts = judge.JudgeAnswers(queries);
        var pairs = judge.JudgePairs([new PairQuery("12 + 30 =", "42", "41")]);
        int yes = tiny.Tokenizer.Encode("Y", SpecialTokens.Omit)[0], no = tiny.Tokenizer.Encode("N", SpecialTokens.Omit)[0];
        int a = tiny.Tokenizer.Encode("A", SpecialTokens.Omit)[0], b = tiny.Tokenizer.Encode("B", SpecialTokens.Omit)[0];
        for (int i = 0; i < queries.Length; i++)
        {
            string prompt = judge.Pointwise.Render(new Dictionary<string, string> { ["question"] = queries[i].Question, ["answer"] = queries[i].Answer });
            var logits = tiny.Model.Forward(tiny.Tokenizer.Encode(prompt + " \\boxed{", SpecialTokens.Add));
            var last = logits.Row(logits.Rows - 1);
            Assert.Equal(Sigmoid(last[yes] - last[no]), verdicts[i].Probability, 5);
            double max = last.ToArray().Max(), sum = last.ToArray().Sum(x => Math.Exp(x - max));
            Assert.Equal((Math.Exp(last[yes] - max) + Math.Exp(last[no] - max)) / sum, verdicts[i].Mass, 5);
        }
        string pairPrompt = judge.Pairwise.Render(new Dictionary<string, string> { ["question"] = "12 + 30 =", ["answer_a"] = "42", ["answer_b"] = "41" });
        var pairLogits = tiny.Model.Forward(tiny.Tokenizer.Encode(pairPrompt + " \\boxed{", SpecialTokens.Add));
        var row = pairLogits.Row(pairLogits.Rows - 1);
        Assert.Equal(Sigmoid(row[a] - row[b]), pairs[0].Probability, 5);
    }

    [Fact]
    public void AGenerativeJudgeWritesItsWorkingFirstAndTheVerdictIsReadAfterIt()
    {
        var judge = new SelfJudge(tiny.Model, tiny.Tokenizer, null, TemplatePool.Terse, new SelfJudgeOptions { VerdictPrefix = "=", ReasoningTokens = 6 });
        var query = new JudgeQuery("12 + 30 =", "42");
        var verdict = judge.JudgeAnswers([query])[0];
        string prompt = judge.Pointwise.Render(new Dictionary<string, string> { ["question"] = query.Question, ["answer"] = query.Answer });
        // the working is the greedy continuation, cut where the judge writes the prefix (or all of it when it never does)
        var greedy = tiny.Model.Generate(tiny.Tokenizer.Encode(prompt, SpecialTokens.Add), new Generation.GenerationOptions { MaxNewTokens = 6, Strategy = Generation.DecodingStrategy.Greedy });
        string continuation = tiny.Tokenizer.Decode([.. greedy.Tokens], SkipSpecialTokens.Yes);
        int cut = continuation.IndexOf('=', StringComparison.Ordinal);
        Assert.Equal(cut >= 0 ? continuation[..cut] : continuation, verdict.Reasoning);
        var logits = tiny.Model.Forward(tiny.Tokenizer.Encode(prompt + verdict.Reasoning + "=", SpecialTokens.Add));
        var last = logits.Row(logits.Rows - 1);
        int yes = tiny.Tokenizer.Encode("Y", SpecialTokens.Omit)[0], no = tiny.Tokenizer.Encode("N", SpecialTokens.Omit)[0];
        Assert.Equal(Sigmoid(last[yes] - last[no]), verdict.Probability, 5);
        Assert.Null(new SelfJudge(tiny.Model, tiny.Tokenizer, null, TemplatePool.Terse).JudgeAnswers([query])[0].Reasoning);
    }

    [Fact]
    public void APromptLongerThanTheContextIsUnjudgedAndBadSettingsAreErrors()
    {
        var judge = new SelfJudge(tiny.Model, tiny.Tokenizer, null, TemplatePool.Terse);
        var verdicts = judge.JudgeAnswers([new JudgeQuery("1 + 1 =", "2"), new JudgeQuery("1 + 1 =", new string('9', 200))]);
        Assert.InRange(verdicts[0].Probability, 0, 1);
        Assert.True(double.IsNaN(verdicts[1].Probability));
        Assert.Equal(0, verdicts[1].Mass);
        Assert.Contains("pointwise template 99 does not exist",
            Assert.Throws<SparkException>(() => new SelfJudge(tiny.Model, tiny.Tokenizer, null, TemplatePool.Terse, new SelfJudgeOptions { PointwiseTemplate = 99 })).Message,
            StringComparison.Ordinal);
    }

    [Fact]
    public void ReflectLoopStopsOnTheFirstYesAndRevisesTheLastAttemptOtherwise()
    {
        // problem 0: the first answer is judged Yes; problem 1: Yes on the second revision; problem 2: never
        var seen = new List<(int Problem, string? Previous)>();
        var traces = TestTimeScaling.ReflectLoop(3, rounds: 2,
            answer: batch =>
            {
                seen.AddRange(batch.Select(x => (x.Problem, x.Previous?.Text)));
                return [.. batch.Select(x => new Attempt($"p{x.Problem}-a{(x.Previous is null ? 0 : int.Parse(x.Previous.Text[^1..], System.Globalization.CultureInfo.InvariantCulture) + 1)}", "1", false))];
            },
            judge: batch => [.. batch.Select(x => x.Attempt.Text is "p0-a0" or "p1-a2" ? 0.8 : 0.3)]);
        Assert.True(traces[0].Accepted);
        Assert.Equal(0, traces[0].Revisions);
        Assert.True(traces[1].Accepted);
        Assert.Equal(2, traces[1].Revisions);
        Assert.Equal("p1-a2", traces[1].Final.Text);
        Assert.False(traces[2].Accepted);
        Assert.Equal(2, traces[2].Revisions); // out of rounds: the last attempt is the answer
        Assert.Equal([0.3, 0.3, 0.3], traces[2].Steps.Select(s => s.ProbabilityYes));
        // a problem accepted in round 0 is never revised; revisions see the attempt before them
        Assert.DoesNotContain(seen, x => x.Problem == 0 && x.Previous is not null);
        Assert.Contains((1, "p1-a1"), seen);
        Assert.Equal(0, TestTimeScaling.ReflectLoop(2, 0, b => [.. b.Select(_ => new Attempt("x", null, false))], b => [.. b.Select(_ => 0.0)]).Sum(t => t.Revisions));
    }

    [Fact]
    public void BestOfPicksTheHighestProbabilityOfYes()
    {
        Assert.Equal(2, TestTimeScaling.SelectBest([0.1, 0.5, 0.9, 0.3]));
        Assert.Equal(1, TestTimeScaling.SelectBest([0.2, 0.7, 0.7])); // the first of equal ones

        // with the model: the chosen answer is the argmax of P(Yes) the judge gives the candidates on its own
        var problems = Enumerable.Range(0, 6).Select(i => new RlProblem($"q{i}", $"{i} + {i + 3} =", (2 * i + 3).ToString(System.Globalization.CultureInfo.InvariantCulture)) { Verifier = "numeric" }).ToArray();
        var judge = new SelfJudge(tiny.Model, tiny.Tokenizer, null, TemplatePool.Terse, new SelfJudgeOptions { VerdictPrefix = " \\boxed{" });
        var report = TestTimeScaling.BestOf(tiny.Model, tiny.Tokenizer, null, problems, EvalScorers.ByVerifierName(), judge, 4,
            new TestTimeOptions { MaxCompletionTokens = 6, Seed = 3 });
        Assert.Equal(6, report.Choices.Count);
        foreach (var (choice, problem) in report.Choices.Zip(problems))
        {
            Assert.Equal(4, choice.Candidates.Count);
            var expected = choice.Candidates.Select(c => c.FinalAnswer is null ? 0
                : judge.JudgeAnswers([new JudgeQuery(problem.Prompt, c.FinalAnswer)])[0].Probability).ToArray();
            Assert.Equal(expected, choice.ProbabilityYes.ToArray(), (x, y) => Math.Abs(x - y) < 1e-6); // batched with other prompts: float rounding differs
            Assert.Equal(Array.IndexOf(expected, expected.Max()), choice.Chosen);
        }
        Assert.InRange(report.BestOfAccuracy, 0, report.OracleAccuracy);
    }

    [Fact]
    public void ReflectWithTheModelStartsFromGreedyDecodingAndJudgesEveryAttempt()
    {
        var problems = Enumerable.Range(0, 5).Select(i => new RlProblem($"q{i}", $"{i} + 2 =", (i + 2).ToString(System.Globalization.CultureInfo.InvariantCulture)) { Verifier = "numeric" }).ToArray();
        var judge = new SelfJudge(tiny.Model, tiny.Tokenizer, null, TemplatePool.Terse);
        var options = new TestTimeOptions { MaxCompletionTokens = 5, Seed = 1 };
        var report = TestTimeScaling.Reflect(tiny.Model, tiny.Tokenizer, null, problems, EvalScorers.ByVerifierName(), judge, TemplatePool.Terse, 2, options);
        var greedy = Evaluator.Run(tiny.Model, tiny.Tokenizer, null, problems, EvalScorers.ByVerifierName(), new EvalOptions { K = 1, Temperature = 0, MaxCompletionTokens = 5 });
        Assert.Equal(greedy.Problems.Select(p => p.Samples[0].Text), report.Traces.Select(t => t.Steps[0].Attempt.Text));
        Assert.Equal(greedy.Accuracy, report.PlainAccuracy);
        foreach (var trace in report.Traces)
        {
            Assert.InRange(trace.Revisions, 0, 2);
            Assert.Equal(trace.Accepted, trace.Steps[^1].ProbabilityYes >= 0.5);
            Assert.All(trace.Steps.SkipLast(1), s => Assert.True(s.ProbabilityYes < 0.5)); // it only went on after a No
        }
    }
}

public class JudgeEvaluationTests(TinyJudgeModel tiny) : IClassFixture<TinyJudgeModel>
{
    private static EvalSample Sample(string text, string? answer, bool correct) =>
        new(text, 3, Generation.RolloutFinishReason.Eos, false, correct ? 1 : 0, answer, correct);

    [Fact]
    public void EveryAnswerWithAFinalAnswerIsJudgedAndEachMixedProblemGivesOnePairInBothOrders()
    {
        EvalProblemResult Problem(string id, string prompt, params EvalSample[] samples) => new(id, prompt, "", samples, [0.0], null, false);
        var policy = new EvalReport(
        [
            Problem("a", "3 + 4 =", Sample(" 7", "7", true), Sample(" 8", "8", false), Sample(" ??", null, false), Sample(" 7", "7", true)),
            Problem("b", "9 - 1 =", Sample(" 8", "8", true), Sample(" 8", "8", true)), // all right: no pair
            Problem("c", "2 + 2 =", Sample(" x", null, false), Sample(" 5", "5", false)), // all wrong: no pair
        ], K: 4, Temperature: 1, Accuracy: 0, PassAtK: [0.0], MajorityAtK: 0, MeanCompletionTokens: 3, TruncatedFraction: 0,
            new Generation.RolloutStats(0, 0, TimeSpan.Zero, 0, 0));
        var judge = new SelfJudge(tiny.Model, tiny.Tokenizer, null, TemplatePool.Terse);
        var report = JudgeEvaluation.Judge(policy, judge, new JudgeEvalOptions());

        Assert.Equal(6, report.Answers.Count); // the two samples without a final answer are not judged
        Assert.Equal([true, false, true, true, true, false], report.Answers.Select(a => a.Correct));
        Assert.Equal(["7", "8", "7", "8", "8", "5"], report.Answers.Select(a => a.Shown));
        Assert.Equal(2, report.Pairs.Count);
        Assert.All(report.Pairs, p => Assert.Equal((0, 0, 1), (p.Problem, p.CorrectSample, p.WrongSample)));
        Assert.Equal([true, false], report.Pairs.Select(p => p.CorrectIsA));
        var direct = judge.JudgePairs([new PairQuery("3 + 4 =", "7", "8"), new PairQuery("3 + 4 =", "8", "7")]);
        Assert.Equal(direct.Select(v => v.Probability), report.Pairs.Select(p => p.Verdict.Probability));
        Assert.Equal(report.Pairs.Count(p => p.Right) / 2.0, report.PairwiseAccuracy);
        var p = report.Answers.Select(a => a.Verdict.Probability).ToArray();
        var y = report.Answers.Select(a => a.Correct).ToArray();
        Assert.Equal(JudgeMetrics.Accuracy(p, y), report.PointwiseAccuracy);
        Assert.Equal(JudgeMetrics.ExpectedCalibrationError(p, y), report.CalibrationError);
        Assert.Equal(0, report.Unjudged);
        // full reasoning shows the whole completion instead
        var full = JudgeEvaluation.Judge(policy, judge, new JudgeEvalOptions { Input = JudgeInput.FullReasoning });
        Assert.Equal(" 7", full.Answers[0].Shown);
    }

    [Fact]
    public void HeldOutRolloutsAreSampledVerifiedAndJudged()
    {
        var problems = Enumerable.Range(0, 8).Select(i => new RlProblem($"q{i}", $"{i} + 1 =", (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)) { Verifier = "numeric" }).ToArray();
        var judge = new SelfJudge(tiny.Model, tiny.Tokenizer, null, TemplatePool.Terse);
        var report = JudgeEvaluation.Run(tiny.Model, tiny.Tokenizer, null, problems, EvalScorers.ByVerifierName(), judge,
            new JudgeEvalOptions { Sampling = new EvalOptions { K = 3, Temperature = 1, MaxCompletionTokens = 6, Seed = 4 } });
        Assert.Equal(8, report.Policy.Problems.Count);
        Assert.Equal(report.Policy.Problems.Sum(p => p.Samples.Count(s => s.Answer is not null)), report.Answers.Count + report.Unjudged);
        Assert.All(report.Answers, a => Assert.InRange(a.Verdict.Probability, 0, 1));
        var metrics = report.Metrics();
        Assert.Equal(report.PointwiseAccuracy, metrics["judge_pointwise_accuracy"]);
        Assert.Equal(report.Answers.Count, metrics["judge_answers"]);
    }
}
