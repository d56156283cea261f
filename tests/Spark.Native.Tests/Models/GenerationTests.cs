using Spark.Native.Generation;
using Spark.Native.Models;
using Spark.Native.Tests.Fixtures;

namespace Spark.Native.Tests.Models;

public class GenerationTests : IDisposable
{
    private readonly TinyCheckpoint _ckpt = new(new TinySpec { Architecture = ModelArchitecture.Qwen2, Seed = 21, Eos = [2, 3] });
    private readonly SparkModel _model;

    public GenerationTests() => _model = SparkModel.Load(_ckpt.Directory);

    public void Dispose()
    {
        _model.Dispose();
        _ckpt.Dispose();
    }

    private static readonly int[][] Prompts = [[5, 6, 7], [11], [20, 21, 22, 23, 24, 25, 26], [40, 41]];

    [Fact]
    public void GreedyTokensAreTheArgmaxOfTheFullForward()
    {
        var options = GenerationOptions.Greedy(8) with { StopTokenIds = [] };
        var result = _model.Generate(Prompts[0], options);
        Assert.Equal(8, result.Tokens.Count);
        var sequence = Prompts[0].ToList();
        foreach (int token in result.Tokens)
        {
            var logits = _model.Forward(sequence.ToArray());
            Assert.Equal(SamplingRule.Argmax(logits.Row(sequence.Count - 1)), token);
            sequence.Add(token);
        }
    }

    [Fact]
    public void BatchedGenerationOfPromptsOfDifferentLengthsMatchesOneByOne()
    {
        foreach (var options in new[]
        {
            GenerationOptions.Greedy(6) with { StopTokenIds = [] },
            new GenerationOptions { MaxNewTokens = 6, Temperature = 0.9f, TopK = 20, TopP = 0.95f, Seed = 99, StopTokenIds = [] },
        })
        {
            var batched = _model.Generate(Prompts, options);
            // Prompt b of a batch uses stream b: run each alone at index b by padding the batch with the others.
            // Tokens agree exactly here because no two candidates of this model come within fp32 rounding of each
            // other; in general a batched matmul may sum in another order than a single row.
            for (int b = 0; b < Prompts.Length; b++)
            {
                var alone = options.Strategy == DecodingStrategy.Greedy
                    ? _model.Generate(Prompts[b], options)
                    : _model.Generate(Prompts.Select((p, i) => i == b ? p : (IReadOnlyList<int>)[p[0]]).ToArray(), options)[b];
                Assert.Equal(alone.Tokens, batched[b].Tokens);
            }
        }
    }

    [Fact]
    public void SameSeedSameTokensAndOtherSeedOtherTokens()
    {
        var options = new GenerationOptions { MaxNewTokens = 24, Temperature = 1.5f, Seed = 7, StopTokenIds = [] };
        var a = _model.Generate(Prompts, options);
        var b = _model.Generate(Prompts, options);
        var c = _model.Generate(Prompts, options with { Seed = 8 });
        for (int i = 0; i < Prompts.Length; i++) Assert.Equal(a[i].Tokens, b[i].Tokens);
        Assert.NotEqual(a.SelectMany(r => r.Tokens), c.SelectMany(r => r.Tokens));
    }

    [Fact]
    public void StopsOnEosAndReportsWhy()
    {
        var first = _model.Generate(Prompts[2], GenerationOptions.Greedy(1) with { StopTokenIds = [] }).Tokens[0];
        var stopped = _model.Generate(Prompts[2], GenerationOptions.Greedy(10) with { StopTokenIds = [first] });
        Assert.Equal([first], stopped.Tokens);
        Assert.Equal(FinishReason.Stop, stopped.FinishReason);

        var capped = _model.Generate(Prompts[2], GenerationOptions.Greedy(5) with { StopTokenIds = [] });
        Assert.Equal(5, capped.Tokens.Count);
        Assert.Equal(FinishReason.Length, capped.FinishReason);
    }

    [Fact]
    public void ModelEosIdsStopGenerationByDefault()
    {
        Assert.Equal([2, 3], _model.Config.EosTokenIds);
        var results = _model.Generate(Prompts, new GenerationOptions { MaxNewTokens = 40, Temperature = 3f, Seed = 1 });
        foreach (var r in results)
        {
            var eosAt = r.Tokens.Select((t, i) => (t, i)).Where(x => x.t is 2 or 3).Select(x => x.i).ToList();
            if (r.FinishReason == FinishReason.Stop) Assert.Equal([r.Tokens.Count - 1], eosAt);
            else Assert.Empty(eosAt);
        }
    }

    [Fact]
    public void IdsOutsideTheVocabularyAreRefused()
    {
        var e = Assert.Throws<SparkException>(() => _model.Forward([1, 67]));
        Assert.Contains("67", e.Message);
        Assert.Contains("[0, 67)", e.Message);
        Assert.Throws<SparkException>(() => _model.Generate([-1], GenerationOptions.Greedy(1)));
        Assert.Throws<SparkException>(() => _model.Generate([1], new GenerationOptions { TopP = 0f }));
        var tooLong = Assert.Throws<SparkException>(() => _model.Generate([1, 2], GenerationOptions.Greedy(127)));
        Assert.Contains("max_position_embeddings (128)", tooLong.Message);
    }
}
