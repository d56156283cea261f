using Spark.Native.Generation;
using Spark.Native.Tests.Fixtures;
using Spark.Native.Text;

namespace Spark.Native.Tests.Rollout;

public class RolloutEngineTests : IDisposable
{
    // A byte-level model (257 ids, <|end|> = 256 its EOS) so completions decode to text.
    private readonly TinyCheckpoint _ckpt = new(new TinySpec { Vocab = 257, Eos = [256], Hidden = 32, Intermediate = 48, Heads = 4, KvHeads = 2, Seed = 31 });
    private readonly SparkModel _model;
    private readonly Tokenizer _tokenizer;

    public RolloutEngineTests()
    {
        ByteTokenizer.Write(_ckpt.Directory);
        _model = SparkModel.Load(_ckpt.Directory);
        _tokenizer = Tokenizer.Load(Path.Combine(_ckpt.Directory, "tokenizer.json"));
    }

    public void Dispose()
    {
        _model.Dispose();
        _ckpt.Dispose();
    }

    private static readonly int[][] Prompts = [[72, 105, 32], [10], [65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75], [200, 13], [48, 49, 50, 51, 52]];

    private RolloutResult Run(RolloutOptions options, IReadOnlyList<RolloutRequest> requests, Tokenizer? tokenizer = null) =>
        new RolloutEngine(_model, options, tokenizer).Run(requests);

    /// <summary>log softmax(logits / T)[token] of a fresh full forward over prompt + completion, in float64.</summary>
    private double[] FullForwardLogProbs(IReadOnlyList<int> prompt, IReadOnlyList<int> completion, float temperature)
    {
        var sequence = prompt.Concat(completion).ToArray();
        var logits = _model.Forward(sequence);
        double invT = temperature > 0 ? 1.0 / temperature : 1.0;
        var result = new double[completion.Count];
        for (int t = 0; t < completion.Count; t++)
        {
            var row = logits.Row(prompt.Count - 1 + t);
            double max = row.ToArray().Max();
            double sum = 0;
            foreach (float x in row) sum += Math.Exp((x - max) * invT);
            result[t] = (row[completion[t]] - max) * invT - Math.Log(sum);
        }
        return result;
    }

    [Fact]
    public void GreedyContinuousBatchingMatchesOneAtATimeGeneration()
    {
        var requests = Prompts.Select(p => new RolloutRequest { Prompt = p, Samples = 2, Temperature = 0f, MaxCompletionTokens = 12, StopTokenIds = [] }).ToArray();
        // 10 samples through 3 slots; a 4-token forward budget also splits prompts into chunks that share forwards
        // with other slots' decode rows.
        foreach (var options in new[] { new RolloutOptions { Slots = 3 }, new RolloutOptions { Slots = 3, MaxTokensPerForward = 4 } })
        {
            var result = Run(options, requests);
            Assert.Equal(10, result.Samples.Count);
            foreach (var s in result.Samples)
            {
                // Exact equality holds on this model: no two candidates come within fp32 rounding of each other, though a
                // batched matmul may sum in another order than the one-row decode of Generate.
                var alone = _model.Generate(Prompts[s.RequestIndex], GenerationOptions.Greedy(12) with { StopTokenIds = [] });
                Assert.Equal(alone.Tokens, s.Tokens);
                Assert.Equal(RolloutFinishReason.Length, s.FinishReason);
                Assert.True(s.Truncated);
                var reference = FullForwardLogProbs(Prompts[s.RequestIndex], s.Tokens, 1f);
                for (int t = 0; t < s.Tokens.Count; t++) Assert.Equal(reference[t], s.LogProbs[t], 1e-4);
            }
        }
    }

    private static RolloutRequest[] SampledRequests() =>
        Prompts.Select((p, r) => new RolloutRequest
        {
            Prompt = p, Samples = 3, Temperature = 1.3f, TopK = 40, TopP = 0.95f, MaxCompletionTokens = 10 + 3 * r, StopTokenIds = [],
            Seed = 1000UL + (ulong)r,
        }).ToArray();

    [Fact]
    public void SampledRolloutsAreReproducibleWhateverTheSlotCountAndAdmissionOrder()
    {
        // Each sample's stream is keyed by (request seed, sample index), never by slot or step. The logits themselves
        // can differ in the last fp32 bits between batch compositions (one-row matmuls are matrix–vector products), which
        // could flip a draw landing exactly on a boundary; at temperature 1.3 over this model no draw does, so tokens
        // agree exactly across slot counts. Log-probs are compared to 1e-5 for the same reason.
        var requests = SampledRequests();
        var baseline = Run(new RolloutOptions { Slots = 3 }, requests);
        var again = Run(new RolloutOptions { Slots = 3 }, requests);
        var reversed = Run(new RolloutOptions { Slots = 3 }, requests.Reverse().ToArray());
        var one = Run(new RolloutOptions { Slots = 1 }, requests);
        var eight = Run(new RolloutOptions { Slots = 8, MaxTokensPerForward = 5 }, requests);

        foreach (var s in baseline.Samples)
        {
            Assert.Equal(s.Tokens, again.Samples.Single(x => x.RequestIndex == s.RequestIndex && x.SampleIndex == s.SampleIndex).Tokens);
            Assert.Equal(s.LogProbs, again.Samples.Single(x => x.RequestIndex == s.RequestIndex && x.SampleIndex == s.SampleIndex).LogProbs);
            foreach (var (other, index) in new[] { (reversed, Prompts.Length - 1 - s.RequestIndex), (one, s.RequestIndex), (eight, s.RequestIndex) })
            {
                var match = other.Samples.Single(x => x.RequestIndex == index && x.SampleIndex == s.SampleIndex);
                Assert.Equal(s.Tokens, match.Tokens);
                for (int t = 0; t < s.Tokens.Count; t++) Assert.Equal(s.LogProbs[t], match.LogProbs[t], 1e-5);
            }
        }
        // the samples of a group differ from each other, and another seed changes them
        Assert.Contains(baseline.Samples.Where(s => s.RequestIndex == 2), s => !s.Tokens.SequenceEqual(baseline.Samples[6].Tokens));
        var reseeded = Run(new RolloutOptions { Slots = 3 }, requests.Select(r => r with { Seed = r.Seed + 77 }).ToArray());
        Assert.NotEqual(baseline.Samples.SelectMany(s => s.Tokens), reseeded.Samples.SelectMany(s => s.Tokens));
    }

    [Theory]
    [InlineData(1.0f)]
    [InlineData(0.7f)]
    [InlineData(0f)]
    public void RecordedLogProbsEqualAFullForwardLogSoftmaxAtTheSamplingTemperature(float temperature)
    {
        var requests = Prompts.Select((p, r) => new RolloutRequest { Prompt = p, Samples = 2, Temperature = temperature, MaxCompletionTokens = 15, Seed = (ulong)r }).ToArray();
        var result = Run(new RolloutOptions { Slots = 4, MaxTokensPerForward = 6 }, requests);
        foreach (var s in result.Samples)
        {
            Assert.Equal(s.Tokens.Count, s.LogProbs.Length);
            var reference = FullForwardLogProbs(Prompts[s.RequestIndex], s.Tokens, temperature);
            for (int t = 0; t < s.Tokens.Count; t++) Assert.Equal(reference[t], s.LogProbs[t], 1e-4);
        }
    }

    [Fact]
    public void StopStringTrimsTheTextAndEndsTheCompletion()
    {
        // Zero embeddings (tied with the LM head) for bytes 128 … 255 give those ids logit 0, below the best ASCII
        // byte's, so sampled text is readable ASCII and a stop string can be picked from it.
        using var ckpt = new TinyCheckpoint(_ckpt.Spec with
        {
            EditTensors = t => Array.Clear(t["model.embed_tokens.weight"].Data, 128 * 32, 128 * 32),
        });
        ByteTokenizer.Write(ckpt.Directory);
        using var model = SparkModel.Load(ckpt.Directory);
        var engine = new RolloutEngine(model, new RolloutOptions { Slots = 2 }, _tokenizer);
        var request = new RolloutRequest { Prompt = Prompts[0], Temperature = 0.8f, TopK = 20, MaxCompletionTokens = 30, StopTokenIds = [], Seed = 3 };
        var full = engine.Run([request]).Samples[0];
        string text = full.Text!;
        Assert.Equal(_tokenizer.Decode(full.Tokens.ToArray()), text);
        Assert.Equal(30, text.Length);
        Assert.All(text, c => Assert.InRange(c, '\0', '\x7f'));
        string stop = text.Substring(12, 2);
        int cut = text.IndexOf(stop, StringComparison.Ordinal);

        var stopped = engine.Run([request with { StopStrings = ["never-there", stop] }]).Samples[0];
        Assert.Equal(RolloutFinishReason.StopString, stopped.FinishReason);
        Assert.False(stopped.Truncated);
        Assert.Equal(stop, stopped.StopString);
        Assert.Equal(text[..cut], stopped.Text);
        // tokens run up to and including the one that completed the stop string (one byte per token here)
        Assert.Equal(full.Tokens.Take(cut + 2), stopped.Tokens);
        Assert.Equal(full.LogProbs.Take(cut + 2), stopped.LogProbs);
    }

    [Fact]
    public void EosStopsAndLengthTruncates()
    {
        var greedy = new RolloutRequest { Prompt = Prompts[2], Temperature = 0f, MaxCompletionTokens = 10, StopTokenIds = [] };
        var capped = Run(new RolloutOptions(), [greedy with { MaxCompletionTokens = 5 }], _tokenizer).Samples[0];
        Assert.Equal(5, capped.Tokens.Count);
        Assert.Equal(RolloutFinishReason.Length, capped.FinishReason);
        Assert.True(capped.Truncated);
        Assert.Null(capped.StopString);

        int first = capped.Tokens[0];
        var eos = Run(new RolloutOptions(), [greedy with { StopTokenIds = [first] }], _tokenizer).Samples[0];
        Assert.Equal([first], eos.Tokens);
        Assert.Equal(RolloutFinishReason.Eos, eos.FinishReason);
        Assert.False(eos.Truncated);
        Assert.Equal("", eos.Text); // the stop token is not text

        // the KV capacity caps a completion too: 11 prompt tokens in 14 positions leave 3
        var byCapacity = Run(new RolloutOptions { Capacity = 14 }, [greedy]).Samples[0];
        Assert.Equal(3, byCapacity.Tokens.Count);
        Assert.True(byCapacity.Truncated);

        // by default the model's EOS ids (256 here) stop sampling and end the completion
        var hot = Run(new RolloutOptions { Slots = 8 }, [new RolloutRequest { Prompt = Prompts[1], Samples = 24, Temperature = 4f, MaxCompletionTokens = 60, Seed = 5 }]);
        foreach (var s in hot.Samples)
        {
            Assert.Equal(s.FinishReason == RolloutFinishReason.Eos ? [s.Tokens.Count - 1] : [],
                s.Tokens.Select((t, i) => (t, i)).Where(x => x.t == 256).Select(x => x.i));
            Assert.Equal(s.FinishReason == RolloutFinishReason.Length, s.Truncated);
        }
        Assert.Contains(hot.Samples, s => s.FinishReason == RolloutFinishReason.Eos);
    }

    [Fact]
    public void FinishedSequencesFreeTheirSlotsForWaitingOnes()
    {
        var requests = SampledRequests();
        var progress = new List<RolloutProgress>();
        var result = new RolloutEngine(_model, new RolloutOptions { Slots = 4 }).Run(requests, progress.Add);
        int total = requests.Sum(r => r.Samples);
        Assert.Equal(total, result.Samples.Count);
        Assert.Equal(requests.SelectMany((r, i) => Enumerable.Range(0, r.Samples).Select(j => (i, j))),
            result.Samples.Select(s => (s.RequestIndex, s.SampleIndex)));
        foreach (var s in result.Samples) Assert.Equal(requests[s.RequestIndex].MaxCompletionTokens, s.Tokens.Count);

        var stats = result.Stats;
        Assert.Equal(4, stats.PeakConcurrentSlots);
        Assert.Equal(result.Samples.Sum(s => (long)s.Tokens.Count), stats.GeneratedTokens);
        Assert.Equal(requests.Sum(r => (long)r.Prompt.Count * r.Samples), stats.PromptTokens);
        Assert.Equal(stats.Forwards, progress.Count);
        // continuous batching: far fewer forwards than one decode per token, as slots are refilled without waiting
        Assert.True(stats.Forwards < stats.GeneratedTokens / 3, $"{stats.Forwards} forwards for {stats.GeneratedTokens} tokens");
        Assert.True(stats.TokensPerSecond > 0);
        Assert.All(progress, p => Assert.InRange(p.ActiveSlots, 0, 4));
        Assert.Equal(total, progress[^1].FinishedSamples);
        Assert.Equal(0, progress[^1].ActiveSlots);
    }

    [Fact]
    public void BadRequestsAreRefusedWithClearMessages()
    {
        var engine = new RolloutEngine(_model, new RolloutOptions { Slots = 2 });
        var ok = new RolloutRequest { Prompt = [1, 2, 3], MaxCompletionTokens = 4 };
        Assert.Contains("prompt is empty", Assert.Throws<SparkException>(() => engine.Run([ok, ok with { Prompt = [] }])).Message);
        Assert.Contains("samples is 0", Assert.Throws<SparkException>(() => engine.Run([ok with { Samples = 0 }])).Message);
        var tooLong = Assert.Throws<SparkException>(() => new RolloutEngine(_model, new RolloutOptions { Capacity = 5 }).Run([ok with { Prompt = [1, 2, 3, 4, 5] }]));
        Assert.Contains("no room for a completion", tooLong.Message);
        Assert.Contains("capacity of 5", tooLong.Message);
        var pastModel = Assert.Throws<SparkException>(() => engine.Run([ok with { Prompt = Enumerable.Repeat(7, 128).ToArray() }]));
        Assert.Contains("max_position_embeddings 128", pastModel.Message);
        Assert.Contains("257", Assert.Throws<SparkException>(() => engine.Run([ok with { Prompt = [1, 300] }])).Message);
        Assert.Contains("temperature", Assert.Throws<SparkException>(() => engine.Run([ok with { Temperature = -1f }])).Message);
        Assert.Contains("top_p", Assert.Throws<SparkException>(() => engine.Run([ok with { TopP = 0f }])).Message);
        Assert.Contains("need a tokenizer", Assert.Throws<SparkException>(() => engine.Run([ok with { StopStrings = ["x"] }])).Message);
        Assert.Contains("slots", Assert.Throws<SparkException>(() => new RolloutEngine(_model, new RolloutOptions { Slots = 0 })).Message);
        Assert.Empty(engine.Run([]).Samples);
    }
}
