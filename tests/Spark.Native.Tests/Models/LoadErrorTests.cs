using Spark.Native.Models;
using Spark.Native.Tests.Fixtures;

namespace Spark.Native.Tests.Models;

public class LoadErrorTests
{
    private static SparkException LoadFails(TinySpec spec)
    {
        using var ckpt = new TinyCheckpoint(spec);
        return Assert.Throws<SparkException>(() => SparkModel.Load(ckpt.Directory));
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        var e = LoadFails(new TinySpec { EditTensors = t => t.Remove("model.layers.1.mlp.up_proj.weight") });
        Assert.Contains("missing tensor 'model.layers.1.mlp.up_proj.weight'", e.Message);
        Assert.Contains("[40, 24]", e.Message);
    }

    [Fact]
    public void UnexpectedTensorIsAnError()
    {
        var e = LoadFails(new TinySpec { EditTensors = t => t["model.layers.0.self_attn.rotary_emb.cos_cached"] = ([2], [1f, 2f]) });
        Assert.Contains("unexpected tensor 'model.layers.0.self_attn.rotary_emb.cos_cached'", e.Message);
    }

    [Fact]
    public void KnownHarmlessTensorsAreSkippedWithANotice()
    {
        using var ckpt = new TinyCheckpoint(new TinySpec
        {
            EditTensors = t =>
            {
                t["model.layers.0.self_attn.rotary_emb.inv_freq"] = ([2], [1f, 0.5f]);
                t["lm_head.weight"] = t["model.embed_tokens.weight"];
            },
        });
        using var model = SparkModel.Load(ckpt.Directory);
        Assert.Contains(model.LoadNotices, n => n.Contains("rotary_emb.inv_freq"));
        Assert.Contains(model.LoadNotices, n => n.Contains("lm_head.weight") && n.Contains("tie_word_embeddings"));
    }

    [Fact]
    public void WrongShapeNamesTensorExpectedAndActual()
    {
        var e = LoadFails(new TinySpec
        {
            EditTensors = t => t["model.layers.0.self_attn.k_proj.weight"] = ([9, 24], new float[9 * 24]),
        });
        // 2 kv heads × head dim 24/6 = 8 rows
        Assert.Contains("tensor 'model.layers.0.self_attn.k_proj.weight' has shape [9, 24], expected [8, 24]", e.Message);
    }

    [Fact]
    public void ConfigMissingARequiredFieldIsNamed()
    {
        var e = LoadFails(new TinySpec { EditConfig = c => c.Remove("intermediate_size") });
        Assert.Contains("config.json", e.Message);
        Assert.Contains("'intermediate_size'", e.Message);
    }

    [Fact]
    public void MissingFolderOrFilesAreClearErrors()
    {
        var e = Assert.Throws<SparkException>(() => SparkModel.Load("/nonexistent/model"));
        Assert.Contains("/nonexistent/model", e.Message);
        using var ckpt = new TinyCheckpoint(new TinySpec());
        File.Delete(Path.Combine(ckpt.Directory, "model.safetensors"));
        var io = Assert.ThrowsAny<Exception>(() => SparkModel.Load(ckpt.Directory));
        Assert.Contains("model.safetensors", io.Message);
    }
}
