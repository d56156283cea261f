using System.Text.Json;
using System.Text.Json.Nodes;
using Spark.Native.IO;
using Spark.Native.Models;

namespace Spark.Native.Demo;

/// <summary>The shape of a model built from scratch (a Qwen2-style decoder with tied embeddings).</summary>
/// <param name="Layers">Decoder layers.</param>
/// <param name="Hidden">Hidden size.</param>
/// <param name="Intermediate">MLP intermediate size.</param>
/// <param name="Heads">Query heads.</param>
/// <param name="KeyValueHeads">Key/value heads (GQA).</param>
/// <param name="MaxPositions">max_position_embeddings.</param>
public sealed record ScratchModelShape(int Layers = 2, int Hidden = 64, int Intermediate = 176, int Heads = 4, int KeyValueHeads = 2,
    int MaxPositions = 256);

/// <summary>
/// Builds a Hugging Face model folder from nothing (no download): a byte-level BPE tokenizer without merges (256 byte
/// tokens, then the special tokens) and a Qwen2-style model with freshly initialised weights (normal, std 0.02 as
/// transformers initialises, ones for RMSNorm weights, zero biases). What the demo and the tests start from.
/// </summary>
public static class ModelFactory
{
    /// <summary>
    /// Writes tokenizer.json and tokenizer_config.json for a byte-level vocabulary of 256 + <paramref name="specialTokens"/>
    /// ids (specials at 256, 257, …); the first special is the EOS token. <paramref name="chatTemplate"/> (Jinja) is
    /// stored in tokenizer_config.json when given. Returns the vocabulary size.
    /// </summary>
    public static int WriteByteTokenizer(string directory, IReadOnlyList<string> specialTokens, string? chatTemplate = null)
    {
        if (specialTokens.Count == 0) throw new SparkException("a tokenizer needs at least one special token (the end of sequence)");
        Directory.CreateDirectory(directory);
        var vocab = new JsonObject();
        for (int b = 0; b < 256; b++) vocab[Text.ByteLevelMap.ByteToChar[b].ToString()] = b;
        var added = new JsonArray();
        for (int i = 0; i < specialTokens.Count; i++)
            added.Add(new JsonObject
            {
                ["id"] = 256 + i, ["content"] = specialTokens[i], ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = true,
            });
        JsonObject ByteLevel() => new() { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true };
        var json = new JsonObject
        {
            ["version"] = "1.0", ["added_tokens"] = added, ["normalizer"] = null, ["pre_tokenizer"] = ByteLevel(), ["post_processor"] = null,
            ["decoder"] = ByteLevel(), ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray() },
        };
        File.WriteAllText(Path.Combine(directory, "tokenizer.json"), json.ToJsonString());
        var config = new JsonObject { ["eos_token"] = specialTokens[0] };
        if (chatTemplate is not null) config["chat_template"] = chatTemplate;
        File.WriteAllText(Path.Combine(directory, "tokenizer_config.json"), config.ToJsonString());
        return 256 + specialTokens.Count;
    }

    /// <summary>
    /// Writes config.json, generation_config.json and model.safetensors (F32) of a freshly initialised Qwen2-style
    /// model with <paramref name="vocabSize"/> tokens and EOS id <paramref name="eosId"/>; the same seed gives the same weights.
    /// </summary>
    public static void WriteRandomModel(string directory, ScratchModelShape shape, int vocabSize, int eosId, ulong seed)
    {
        Directory.CreateDirectory(directory);
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("Qwen2ForCausalLM"), ["model_type"] = "qwen2", ["vocab_size"] = vocabSize,
            ["hidden_size"] = shape.Hidden, ["intermediate_size"] = shape.Intermediate, ["num_hidden_layers"] = shape.Layers,
            ["num_attention_heads"] = shape.Heads, ["num_key_value_heads"] = shape.KeyValueHeads, ["rms_norm_eps"] = 1e-6,
            ["rope_theta"] = 10000.0, ["max_position_embeddings"] = shape.MaxPositions, ["tie_word_embeddings"] = true,
            ["hidden_act"] = "silu", ["eos_token_id"] = eosId, ["bos_token_id"] = eosId, ["torch_dtype"] = "float32",
            ["initializer_range"] = 0.02,
        };
        var parsed = ModelConfig.Parse(config.ToJsonString()); // validates the shape (head dim, GQA) with the usual messages
        File.WriteAllText(Path.Combine(directory, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        File.WriteAllText(Path.Combine(directory, "generation_config.json"), new JsonObject { ["eos_token_id"] = eosId, ["do_sample"] = false }.ToJsonString());
        var entries = new List<SafeTensorWriteEntry>();
        foreach (var e in new ParameterLayout(parsed).Entries)
        {
            var data = new float[e.Length];
            if (e.Name.EndsWith("norm.weight", StringComparison.Ordinal)) Array.Fill(data, 1f);
            else if (!e.Name.EndsWith(".bias", StringComparison.Ordinal))
            {
                ulong stream = Generation.CounterRng.Next(seed, Fnv(e.Name));
                for (int i = 0; i < data.Length; i += 2)
                {
                    // Box–Muller: two normals from two uniforms of the counter RNG, scaled to std 0.02
                    double u1 = Math.Max(Generation.CounterRng.Uniform(stream, (ulong)i), 1e-300), u2 = Generation.CounterRng.Uniform(stream, (ulong)i + 1);
                    double r = 0.02 * Math.Sqrt(-2 * Math.Log(u1));
                    data[i] = (float)(r * Math.Cos(2 * Math.PI * u2));
                    if (i + 1 < data.Length) data[i + 1] = (float)(r * Math.Sin(2 * Math.PI * u2));
                }
            }
            entries.Add(SafeTensorWriteEntry.FromF32(e.Name, e.Shape.Select(d => (long)d).ToArray(), data));
        }
        SafeTensorsWriter.Write(Path.Combine(directory, "model.safetensors"), entries);
    }

    private static ulong Fnv(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in s) h = (h ^ c) * 1099511628211UL;
        return h;
    }
}
