using System.Text.Json;
using System.Text.Json.Nodes;
using Spark.Native.IO;
using Spark.Native.Models;

namespace Spark.Native.Tests.Fixtures;

/// <summary>What kind of tiny model to build.</summary>
internal sealed record TinySpec
{
    public ModelArchitecture Architecture { get; init; } = ModelArchitecture.Qwen2;
    public int Vocab { get; init; } = 67;
    public int Hidden { get; init; } = 24;
    public int Intermediate { get; init; } = 40;
    public int Layers { get; init; } = 2;
    public int Heads { get; init; } = 6;
    public int KvHeads { get; init; } = 2;
    public int? HeadDim { get; init; }
    public bool Tied { get; init; } = true;
    public bool AttentionBias { get; init; }
    public bool MlpBias { get; init; }
    public bool Llama3Rope { get; init; }
    public DType StoreAs { get; init; } = DType.F32;
    public int Shards { get; init; } = 1;
    public int Seed { get; init; } = 1;
    public int[] Eos { get; init; } = [2];
    /// <summary>Edits applied to config.json before writing.</summary>
    public Action<JsonObject>? EditConfig { get; init; }
    /// <summary>Edits applied to the tensor list before writing (add, drop, reshape).</summary>
    public Action<Dictionary<string, (long[] Shape, float[] Data)>>? EditTensors { get; init; }
}

/// <summary>A random Hugging Face-format checkpoint folder in the temp folder, deleted on dispose.</summary>
internal sealed class TinyCheckpoint : IDisposable
{
    public TinyCheckpoint(TinySpec spec)
    {
        Spec = spec;
        Directory = System.IO.Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "spark-tiny-" + Guid.NewGuid().ToString("N"))).FullName;
        var config = BuildConfig(spec);
        Config = ModelConfig.Parse(config.ToJsonString());
        spec.EditConfig?.Invoke(config);
        File.WriteAllText(Path.Combine(Directory, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var tensors = BuildTensors(new ParameterLayout(Config), spec.Seed);
        spec.EditTensors?.Invoke(tensors);
        Tensors = tensors;
        WriteWeights(tensors, spec);
    }

    public TinySpec Spec { get; }
    public string Directory { get; }
    /// <summary>The configuration before <see cref="TinySpec.EditConfig"/>.</summary>
    public ModelConfig Config { get; }

    /// <summary>The weights as written (after rounding to the stored dtype).</summary>
    public Dictionary<string, (long[] Shape, float[] Data)> Tensors { get; }

    public static JsonObject BuildConfig(TinySpec s)
    {
        var c = new JsonObject
        {
            ["architectures"] = new JsonArray(s.Architecture == ModelArchitecture.Qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"),
            ["model_type"] = s.Architecture == ModelArchitecture.Qwen2 ? "qwen2" : "llama",
            ["vocab_size"] = s.Vocab,
            ["hidden_size"] = s.Hidden,
            ["intermediate_size"] = s.Intermediate,
            ["num_hidden_layers"] = s.Layers,
            ["num_attention_heads"] = s.Heads,
            ["num_key_value_heads"] = s.KvHeads,
            ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = s.Architecture == ModelArchitecture.Qwen2 ? 1000000.0 : 500000.0,
            ["max_position_embeddings"] = 128,
            ["tie_word_embeddings"] = s.Tied,
            ["hidden_act"] = "silu",
            ["bos_token_id"] = 1,
            ["eos_token_id"] = s.Eos.Length == 1 ? s.Eos[0] : new JsonArray(s.Eos.Select(e => (JsonNode)e).ToArray()),
            ["torch_dtype"] = "float32",
        };
        if (s.HeadDim is int hd) c["head_dim"] = hd;
        if (s.Architecture == ModelArchitecture.Llama)
        {
            c["attention_bias"] = s.AttentionBias;
            c["mlp_bias"] = s.MlpBias;
        }
        if (s.Llama3Rope)
            c["rope_scaling"] = new JsonObject
            {
                ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0,
                ["original_max_position_embeddings"] = 16,
            };
        return c;
    }

    private static Dictionary<string, (long[] Shape, float[] Data)> BuildTensors(ParameterLayout layout, int seed)
    {
        var rng = new Random(seed);
        var tensors = new Dictionary<string, (long[], float[])>(StringComparer.Ordinal);
        foreach (var e in layout.Entries)
        {
            var data = new float[e.Length];
            bool isNorm = e.Name.EndsWith("norm.weight", StringComparison.Ordinal);
            float scale = e.Shape.Length == 2 ? 1f / MathF.Sqrt(e.Shape[1]) : 0.2f;
            for (int i = 0; i < data.Length; i++)
            {
                float r = (float)(rng.NextDouble() * 2 - 1);
                data[i] = isNorm ? 1f + 0.3f * r : (e.Name.Contains("embed") ? r : r * scale * 1.7f);
            }
            tensors[e.Name] = (e.Shape.Select(d => (long)d).ToArray(), data);
        }
        return tensors;
    }

    private void WriteWeights(Dictionary<string, (long[] Shape, float[] Data)> tensors, TinySpec spec)
    {
        var entries = new List<SafeTensorWriteEntry>();
        foreach (var (name, (shape, data)) in tensors)
        {
            var entry = SafeTensorWriteEntry.FromF32(name, shape, data, spec.StoreAs);
            // keep what the file holds, so references see the stored (rounded) values
            if (spec.StoreAs != DType.F32) NumericConversions.ToF32(spec.StoreAs, entry.Data.Span, data);
            entries.Add(entry);
        }
        if (spec.Shards <= 1)
        {
            SafeTensorsWriter.Write(Path.Combine(Directory, "model.safetensors"), entries);
            return;
        }
        var weightMap = new JsonObject();
        int per = (entries.Count + spec.Shards - 1) / spec.Shards;
        for (int s = 0; s < spec.Shards; s++)
        {
            string file = $"model-{s + 1:D5}-of-{spec.Shards:D5}.safetensors";
            var part = entries.Skip(s * per).Take(per).ToList();
            SafeTensorsWriter.Write(Path.Combine(Directory, file), part);
            foreach (var e in part) weightMap[e.Name] = file;
        }
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = 0 }, ["weight_map"] = weightMap };
        File.WriteAllText(Path.Combine(Directory, "model.safetensors.index.json"), index.ToJsonString());
    }

    public void Dispose()
    {
        try { System.IO.Directory.Delete(Directory, recursive: true); }
        catch (IOException) { }
    }
}
