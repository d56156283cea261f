using Spark.Native.Generation;
using Spark.Native.Models;
using Spark.Native.Tests.Fixtures;

namespace Spark.Native.Tests.Models;

public class ModelForwardTests
{
    public static TheoryData<string> Specs => new(SpecsByName.Keys);

    private static readonly Dictionary<string, TinySpec> SpecsByName = new()
    {
        ["qwen2-tied-bf16"] = new TinySpec { Architecture = ModelArchitecture.Qwen2, StoreAs = DType.BF16 },
        ["qwen2-untied-f16-sharded"] = new TinySpec { Architecture = ModelArchitecture.Qwen2, Tied = false, StoreAs = DType.F16, Shards = 3, Seed = 5 },
        ["llama-untied-biases-llama3-rope"] = new TinySpec
        {
            Architecture = ModelArchitecture.Llama, Tied = false, AttentionBias = true, MlpBias = true, Llama3Rope = true,
            Heads = 4, KvHeads = 1, Hidden = 32, Seed = 2,
        },
        ["llama-explicit-head-dim-mha"] = new TinySpec
        {
            Architecture = ModelArchitecture.Llama, Heads = 3, KvHeads = 3, HeadDim = 10, Hidden = 20, Layers = 3, Seed = 3,
        },
    };

    [Theory]
    [MemberData(nameof(Specs))]
    public void ForwardMatchesFloat64Reference(string spec)
    {
        using var ckpt = new TinyCheckpoint(SpecsByName[spec]);
        using var model = SparkModel.Load(ckpt.Directory);
        int[] ids = [1, 5, 9, 0, 66, 3, 17, 42, 8, 30, 2];
        var logits = model.Forward(ids);
        var expected = new ReferenceModel(ckpt.Config, ckpt.Tensors).Forward(ids);
        Assert.Equal(ids.Length, logits.Rows);
        for (int t = 0; t < ids.Length; t++)
        {
            double err = Numerics.RelativeError(logits.Row(t), expected[t]);
            // fp32 accumulation over ≤ 40-long dot products of O(1) values: expect ~1e-6; 1e-4 is the golden bar
            Assert.True(err < 1e-4, $"{spec}: position {t} relative error {err:E2}");
        }
    }

    [Fact]
    public void IncrementalDecodeWithKvCacheMatchesFullForward()
    {
        using var ckpt = new TinyCheckpoint(new TinySpec { Architecture = ModelArchitecture.Llama, Layers = 3, Seed = 11 });
        using var model = SparkModel.Load(ckpt.Directory);
        int[] ids = [4, 8, 15, 16, 23, 42, 7, 1, 60, 33];
        var full = model.Forward(ids);

        var tf = model.Transformer;
        using var cache = new KvCache(tf.Backend, tf.Config, slots: 2, capacity: ids.Length);
        // prefill the first 4 tokens into slot 1, then decode one token at a time
        const int prefill = 4;
        using (var first = tf.Forward(ids.AsSpan(0, prefill), [new Segment(1, 0, prefill)], cache, LogitRows.All))
            AssertRowsMatch(full, first, 0);
        for (int p = prefill; p < ids.Length; p++)
        {
            using var step = tf.Forward(ids.AsSpan(p, 1), [new Segment(1, p, 1)], cache, LogitRows.All);
            AssertRowsMatch(full, step, p);
        }

        void AssertRowsMatch(Logits expected, Native.Tensors.Tensor actual, int firstRow)
        {
            var values = new float[actual.Length];
            tf.Backend.Download(values, actual);
            for (int r = 0; r < actual.Shape[0]; r++)
            {
                double err = Numerics.RelativeError(values.AsSpan(r * expected.VocabSize, expected.VocabSize), expected.Row(firstRow + r));
                Assert.True(err < 1e-5, $"position {firstRow + r}: relative error {err:E2}");
            }
        }
    }

    [Fact]
    public void LlamaRopeFrequenciesFollowTheLlama3Bands()
    {
        var scaling = new Llama3RopeScaling(Factor: 32, LowFrequencyFactor: 1, HighFrequencyFactor: 4, OriginalMaxPositions: 8192);
        var inv = RopeFrequencies.Compute(64, 500000, scaling);
        var plain = RopeFrequencies.Compute(64, 500000, null);
        // high frequencies (wavelength < 8192/4) are unchanged, low ones (wavelength > 8192) divided by the factor
        Assert.Equal(plain[0], inv[0]);
        Assert.Equal(plain[^1] / 32, inv[^1], 6);
        int medium = Enumerable.Range(0, 32).First(j => 2 * Math.PI / plain[j] >= 2048 && 2 * Math.PI / plain[j] <= 8192);
        Assert.InRange(inv[medium], plain[medium] / 32, plain[medium]);
    }
}
