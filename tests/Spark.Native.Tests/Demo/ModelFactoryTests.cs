using Spark.Native.Demo;
using Spark.Native.IO;
using Spark.Native.Tests.IO;
using Spark.Native.Text;

namespace Spark.Native.Tests.Demo;

public class ModelFactoryTests
{
    [Fact]
    public void AFolderBuiltFromScratchLoadsTokenizesAndRuns()
    {
        using var dir = new TempDir();
        int vocab = ModelFactory.WriteByteTokenizer(dir.Path, ["<|end|>", "<|pad|>"]);
        Assert.Equal(258, vocab);
        ModelFactory.WriteRandomModel(dir.Path, new ScratchModelShape(Layers: 2, Hidden: 32, Intermediate: 64, Heads: 4, KeyValueHeads: 2), vocab, eosId: 256, seed: 7);

        var tokenizer = Tokenizer.Load(dir.Path);
        int[] ids = tokenizer.Encode("12+34=46<|end|>", SpecialTokens.Omit);
        Assert.Equal([.. "12+34=46"u8.ToArray().Select(b => (int)b), 256], ids);
        Assert.Equal("12+34=46", tokenizer.Decode(ids, SkipSpecialTokens.Yes));

        using var model = SparkModel.Load(dir.Path);
        Assert.Equal(258, model.Config.VocabSize);
        var logits = model.Forward(ids);
        Assert.All(logits.Values, v => Assert.True(float.IsFinite(v)));
        // transformers-style initialisation: std 0.02 matrices, unit norms
        using var weights = SafeTensorsFile.Open(Path.Combine(dir.Path, "model.safetensors"));
        var up = weights.ReadF32("model.layers.0.mlp.up_proj.weight");
        double std = Math.Sqrt(up.Average(x => (double)x * x));
        Assert.InRange(std, 0.018, 0.022);
        Assert.All(weights.ReadF32("model.norm.weight"), v => Assert.Equal(1f, v));
    }

    [Fact]
    public void TheSameSeedGivesTheSameWeights()
    {
        using var a = new TempDir();
        using var b = new TempDir();
        using var c = new TempDir();
        var shape = new ScratchModelShape(Layers: 1, Hidden: 16, Intermediate: 32, Heads: 2, KeyValueHeads: 1);
        ModelFactory.WriteRandomModel(a.Path, shape, 260, 256, seed: 3);
        ModelFactory.WriteRandomModel(b.Path, shape, 260, 256, seed: 3);
        ModelFactory.WriteRandomModel(c.Path, shape, 260, 256, seed: 4);
        byte[] Bytes(TempDir d) => File.ReadAllBytes(Path.Combine(d.Path, "model.safetensors"));
        Assert.Equal(Bytes(a), Bytes(b));
        Assert.NotEqual(Bytes(a), Bytes(c));
        Assert.Throws<SparkException>(() => ModelFactory.WriteRandomModel(a.Path, shape with { Heads = 3 }, 260, 256, seed: 3));
        Assert.Throws<SparkException>(() => ModelFactory.WriteByteTokenizer(a.Path, []));
    }
}
