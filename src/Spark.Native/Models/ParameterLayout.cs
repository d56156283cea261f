namespace Spark.Native.Models;

/// <summary>One named parameter in the arena: its Hugging Face name, shape and element offset.</summary>
internal sealed record ParameterEntry(string Name, int[] Shape, long Offset)
{
    public long Length => Tensors.Tensor.ShapeLength(Shape);
}

/// <summary>
/// The layout table: every parameter of a model, keyed by its Hugging Face weight name, packed back to back into
/// one buffer. Tied embeddings have one entry (<c>model.embed_tokens.weight</c>) that also serves as the LM head.
/// </summary>
internal sealed class ParameterLayout
{
    public const string Embedding = "model.embed_tokens.weight";
    public const string FinalNorm = "model.norm.weight";
    public const string LmHead = "lm_head.weight";

    private readonly Dictionary<string, ParameterEntry> _byName = new(StringComparer.Ordinal);

    public ParameterLayout(ModelConfig c)
    {
        Config = c;
        int h = c.HiddenSize, q = c.HeadCount * c.HeadDim, kv = c.KeyValueHeadCount * c.HeadDim, i = c.IntermediateSize;
        Add(Embedding, c.VocabSize, h);
        for (int l = 0; l < c.LayerCount; l++)
        {
            Add(LayerName(l, "input_layernorm.weight"), h);
            AddLinear(LayerName(l, "self_attn.q_proj"), q, h, c.QkvBias);
            AddLinear(LayerName(l, "self_attn.k_proj"), kv, h, c.QkvBias);
            AddLinear(LayerName(l, "self_attn.v_proj"), kv, h, c.QkvBias);
            AddLinear(LayerName(l, "self_attn.o_proj"), h, q, c.OutputProjectionBias);
            Add(LayerName(l, "post_attention_layernorm.weight"), h);
            AddLinear(LayerName(l, "mlp.gate_proj"), i, h, c.MlpBias);
            AddLinear(LayerName(l, "mlp.up_proj"), i, h, c.MlpBias);
            AddLinear(LayerName(l, "mlp.down_proj"), h, i, c.MlpBias);
        }
        Add(FinalNorm, h);
        if (!c.TieWordEmbeddings) Add(LmHead, c.VocabSize, h);
    }

    public ModelConfig Config { get; }

    /// <summary>Entries in layout order.</summary>
    public List<ParameterEntry> Entries { get; } = [];

    /// <summary>Total elements of the arena.</summary>
    public long TotalLength { get; private set; }

    /// <summary>The name the LM head is stored under (the embedding when tied).</summary>
    public string LmHeadName => Config.TieWordEmbeddings ? Embedding : LmHead;

    public bool TryGet(string name, out ParameterEntry entry) => _byName.TryGetValue(name, out entry!);

    public ParameterEntry this[string name] =>
        _byName.TryGetValue(name, out var e) ? e : throw new KeyNotFoundException($"no parameter named '{name}' in the layout");

    public static string LayerName(int layer, string suffix) => $"model.layers.{layer}.{suffix}";

    private void AddLinear(string prefix, int outFeatures, int inFeatures, bool bias)
    {
        Add(prefix + ".weight", outFeatures, inFeatures);
        if (bias) Add(prefix + ".bias", outFeatures);
    }

    private void Add(string name, params int[] shape)
    {
        var entry = new ParameterEntry(name, shape, TotalLength);
        Entries.Add(entry);
        _byName.Add(name, entry);
        TotalLength += entry.Length;
    }
}
