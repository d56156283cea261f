using Spark.Native.Generation;
using Spark.Native.Rewards;
using Spark.Native.Rewards.Tasks;
using Spark.Native.Tests.Fixtures;
using Spark.Native.Text;

namespace Spark.Native.Tests.Rewards;

public class EvaluatorTests : IDisposable
{
    // A byte-level model (257 ids, <|end|> = 256 its EOS) so completions decode to text.
    private readonly TinyCheckpoint _ckpt = new(new TinySpec { Vocab = 257, Eos = [256], Hidden = 32, Intermediate = 48, Heads = 4, KvHeads = 2, Seed = 17 });
    private readonly SparkModel _model;
    private readonly Tokenizer _tokenizer;
    private readonly IReadOnlyList<RlProblem> _problems = new ArithmeticTask().Generate(5, 6);

    public EvaluatorTests()
    {
        ByteTokenizer.Write(_ckpt.Directory);
        _model = SparkModel.Load(_ckpt.Directory);
        _tokenizer = Tokenizer.Load(_ckpt.Directory);
    }

    public void Dispose()
    {
        _model.Dispose();
        _ckpt.Dispose();
    }

    /// <summary>A deterministic stand-in for a verifier: correct when the first token is even; the answer is the first token mod 3.</summary>
    private static VerifierResult Stub(RlProblem problem, RolloutSample sample) =>
        new(sample.Tokens[0] % 2 == 0 ? 1 : 0, (sample.Tokens[0] % 3).ToString(System.Globalization.CultureInfo.InvariantCulture), "stub");

    [Fact]
    public void EvaluatorAggregatesTheScoredSamples()
    {
        var options = new EvalOptions { K = 4, Temperature = 1f, MaxCompletionTokens = 5, Seed = 3, Slots = 5 };
        var seen = new List<(string Id, int Sample)>();
        var report = Evaluator.Run(_model, _tokenizer, null, _problems, (p, s) => { seen.Add((p.Id, s.SampleIndex)); return Stub(p, s); }, options);

        Assert.Equal(4, report.K);
        Assert.Equal(_problems.Count, report.Problems.Count);
        Assert.Equal(_problems.Count * 4, seen.Count);
        Assert.Equal(_problems.Select(p => p.Id), report.Problems.Select(p => p.Id));
        foreach (var p in report.Problems)
        {
            Assert.Equal(4, p.Samples.Count);
            Assert.All(p.Samples, s => Assert.InRange(s.Tokens, 1, 5));
            int c = p.Samples.Count(s => s.Correct);
            for (int j = 1; j <= 4; j++) Assert.Equal(EvalMetrics.PassAtK(4, c, j), p.PassAtK[j - 1]);
            var (winner, correct) = EvalMetrics.MajorityVote(p.Samples.Select(s => s.Answer).ToArray(), p.Samples.Select(s => s.Correct).ToArray());
            Assert.Equal(p.Samples[winner].Answer, p.MajorityAnswer);
            Assert.Equal(correct, p.MajorityCorrect);
        }
        Assert.Equal(report.Problems.Count(p => p.Samples[0].Correct) / (double)_problems.Count, report.Accuracy, 12);
        for (int j = 0; j < 4; j++) Assert.Equal(report.Problems.Average(p => p.PassAtK[j]), report.PassAtK[j], 12);
        Assert.Equal(report.Problems.Count(p => p.MajorityCorrect) / (double)_problems.Count, report.MajorityAtK, 12);
        Assert.Equal(report.Problems.SelectMany(p => p.Samples).Average(s => s.Tokens), report.MeanCompletionTokens, 12);
        Assert.Equal(report.Problems.SelectMany(p => p.Samples).Sum(s => s.Tokens), report.Stats.GeneratedTokens);
        Assert.True(report.PassAtK[3] >= report.PassAtK[0]);

        // same options, same report
        var again = Evaluator.Run(_model, _tokenizer, null, _problems, Stub, options);
        Assert.Equal(report.Problems.SelectMany(p => p.Samples).Select(s => s.Text), again.Problems.SelectMany(p => p.Samples).Select(s => s.Text));
        Assert.Equal(report.PassAtK, again.PassAtK);
    }

    [Fact]
    public void GreedyEvalForcesKToOneAndMatchesGreedyGeneration()
    {
        var options = new EvalOptions { K = 8, Temperature = 0f, MaxCompletionTokens = 6, Limit = 2 };
        Assert.Equal(1, options.EffectiveK);
        var report = Evaluator.Run(_model, _tokenizer, null, _problems, Stub, options);
        Assert.Equal(1, report.K);
        Assert.Equal(2, report.Problems.Count);
        var builder = new RlPromptBuilder(_tokenizer, null);
        for (int p = 0; p < 2; p++)
        {
            var expected = _model.Generate(builder.Build(_problems[p]).Ids, GenerationOptions.Greedy(6));
            Assert.Equal(_tokenizer.Decode(expected.Tokens.Where(t => t != 256).ToArray(), SkipSpecialTokens.Yes), report.Problems[p].Samples[0].Text);
            Assert.Equal(report.Problems[p].Samples[0].Correct ? 1.0 : 0.0, report.Problems[p].PassAtK[0]);
        }
        Assert.Equal(report.Accuracy, report.PassAtK[0], 12);
    }

    [Fact]
    public void EvalOptionsAreValidated()
    {
        Assert.Throws<SparkException>(() => Evaluator.Run(_model, _tokenizer, null, _problems, Stub, new EvalOptions { K = 0 }));
        Assert.Throws<SparkException>(() => Evaluator.Run(_model, _tokenizer, null, _problems, Stub, new EvalOptions { TopP = 0 }));
        var empty = Evaluator.Run(_model, _tokenizer, null, [], Stub, new EvalOptions { K = 2 });
        Assert.Empty(empty.Problems);
        Assert.Equal(0, empty.Accuracy);
    }
}
