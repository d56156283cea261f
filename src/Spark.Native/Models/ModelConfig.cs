using System.Text.Json;

namespace Spark.Native.Models;

/// <summary>The transformer families the engine runs.</summary>
public enum ModelArchitecture
{
    /// <summary><c>LlamaForCausalLM</c> (Llama 2/3.x, TinyLlama, Mistral-style without sliding window).</summary>
    Llama,
    /// <summary><c>Qwen2ForCausalLM</c> (Qwen2, Qwen2.5): q/k/v projections carry biases.</summary>
    Qwen2,
}

/// <summary>Llama-3 frequency-dependent RoPE scaling (<c>rope_scaling.rope_type = "llama3"</c>).</summary>
/// <param name="Factor">Scale applied to low frequencies.</param>
/// <param name="LowFrequencyFactor">Wavelength threshold divisor for the low band.</param>
/// <param name="HighFrequencyFactor">Wavelength threshold divisor for the high band.</param>
/// <param name="OriginalMaxPositions">The context length the model was pre-trained with.</param>
public sealed record Llama3RopeScaling(double Factor, double LowFrequencyFactor, double HighFrequencyFactor, int OriginalMaxPositions);

/// <summary>
/// A Hugging Face <c>config.json</c> of a supported causal LM, validated. Unsupported features are refused with
/// a <see cref="SparkException"/> naming the field.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>Model family.</summary>
    public required ModelArchitecture Architecture { get; init; }
    /// <summary><c>vocab_size</c> (V).</summary>
    public required int VocabSize { get; init; }
    /// <summary><c>hidden_size</c> (H).</summary>
    public required int HiddenSize { get; init; }
    /// <summary><c>intermediate_size</c> (I).</summary>
    public required int IntermediateSize { get; init; }
    /// <summary><c>num_hidden_layers</c> (L).</summary>
    public required int LayerCount { get; init; }
    /// <summary><c>num_attention_heads</c> (NH).</summary>
    public required int HeadCount { get; init; }
    /// <summary><c>num_key_value_heads</c> (NKV), defaulting to NH.</summary>
    public required int KeyValueHeadCount { get; init; }
    /// <summary><c>head_dim</c>, defaulting to H / NH.</summary>
    public required int HeadDim { get; init; }
    /// <summary><c>rms_norm_eps</c>.</summary>
    public required double RmsNormEps { get; init; }
    /// <summary><c>rope_theta</c> (or <c>rope_parameters.rope_theta</c>).</summary>
    public required double RopeTheta { get; init; }
    /// <summary>Llama-3 RoPE scaling, or null for plain RoPE.</summary>
    public Llama3RopeScaling? RopeScaling { get; init; }
    /// <summary><c>max_position_embeddings</c>.</summary>
    public required int MaxPositions { get; init; }
    /// <summary><c>tie_word_embeddings</c>: the LM head reuses the embedding matrix.</summary>
    public required bool TieWordEmbeddings { get; init; }
    /// <summary>Whether q/k/v projections have biases (always for Qwen2; <c>attention_bias</c> for Llama).</summary>
    public required bool QkvBias { get; init; }
    /// <summary>Whether the output projection has a bias (<c>attention_bias</c> for Llama; never for Qwen2).</summary>
    public required bool OutputProjectionBias { get; init; }
    /// <summary><c>mlp_bias</c> (Llama).</summary>
    public required bool MlpBias { get; init; }
    /// <summary><c>bos_token_id</c>, if given.</summary>
    public int? BosTokenId { get; init; }
    /// <summary><c>eos_token_id</c> (an int or a list), merged with <c>generation_config.json</c> when loaded from a folder.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    /// <summary><c>torch_dtype</c>/<c>dtype</c> as written, informational.</summary>
    public string? TorchDtype { get; init; }

    /// <summary>Key/value heads per query head group size (NH / NKV).</summary>
    public int GroupSize => HeadCount / KeyValueHeadCount;

    /// <summary>Parses a <c>config.json</c> file.</summary>
    public static ModelConfig Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new SparkException($"{path}: cannot read: {e.Message}", e); }
        return Parse(text, path);
    }

    /// <summary>Parses <c>config.json</c> text; <paramref name="source"/> names it in errors.</summary>
    public static ModelConfig Parse(string json, string source = "config.json")
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new SparkException($"{source}: invalid JSON at line {e.LineNumber + 1}: {FirstLine(e.Message)}", e); }
        using (doc)
        {
            var reader = new ConfigReader(doc.RootElement, source);
            return reader.Read();
        }
    }

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();

    private sealed class ConfigReader(JsonElement root, string source)
    {
        public ModelConfig Read()
        {
            if (root.ValueKind != JsonValueKind.Object) throw Error("the top level", "must be a JSON object");
            var architecture = ReadArchitecture();

            if (root.TryGetProperty("quantization_config", out var quant) && quant.ValueKind == JsonValueKind.Object)
            {
                string method = quant.TryGetProperty("quant_method", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString()! : "unknown";
                throw Error("quantization_config", $"describes a quantized checkpoint (quant_method \"{method}\"); only unquantized F32/BF16/F16 weights are supported");
            }
            if (OptionalBool("use_sliding_window") == true)
                throw Error("use_sliding_window", "is true; sliding-window attention is not supported yet");
            if (root.TryGetProperty("layer_types", out var layerTypes) && layerTypes.ValueKind == JsonValueKind.Array
                && layerTypes.EnumerateArray().Any(t => t.ValueKind == JsonValueKind.String && t.GetString() != "full_attention"))
                throw Error("layer_types", "contains layers other than \"full_attention\"; sliding-window attention is not supported yet");
            if (OptionalDouble("partial_rotary_factor") is { } partial && partial != 1.0)
                throw Error("partial_rotary_factor", $"is {partial}; only full rotary embeddings (1.0) are supported");
            string act = OptionalString("hidden_act") ?? "silu";
            if (act != "silu") throw Error("hidden_act", $"is \"{act}\"; only \"silu\" is supported");

            int hidden = RequiredInt("hidden_size");
            int heads = RequiredInt("num_attention_heads");
            int kvHeads = OptionalInt("num_key_value_heads") ?? heads;
            int? headDimField = OptionalInt("head_dim");
            if (headDimField is null && hidden % heads != 0)
                throw Error("hidden_size", $"{hidden} is not divisible by num_attention_heads {heads} and head_dim is absent");
            int headDim = headDimField ?? hidden / heads;
            if (kvHeads <= 0 || heads % kvHeads != 0)
                throw Error("num_key_value_heads", $"{kvHeads} must divide num_attention_heads {heads}");
            if (headDim % 2 != 0) throw Error("head_dim", $"{headDim} must be even for rotary embeddings");

            bool attentionBias = OptionalBool("attention_bias") ?? false;
            var (theta, scaling) = ReadRope();

            return new ModelConfig
            {
                Architecture = architecture,
                VocabSize = RequiredInt("vocab_size"),
                HiddenSize = hidden,
                IntermediateSize = RequiredInt("intermediate_size"),
                LayerCount = RequiredInt("num_hidden_layers"),
                HeadCount = heads,
                KeyValueHeadCount = kvHeads,
                HeadDim = headDim,
                RmsNormEps = PositiveDouble("rms_norm_eps") ?? 1e-6,
                RopeTheta = theta,
                RopeScaling = scaling,
                MaxPositions = OptionalInt("max_position_embeddings") ?? (architecture == ModelArchitecture.Qwen2 ? 32768 : 2048),
                TieWordEmbeddings = OptionalBool("tie_word_embeddings") ?? false,
                QkvBias = architecture == ModelArchitecture.Qwen2 || attentionBias,
                OutputProjectionBias = architecture == ModelArchitecture.Llama && attentionBias,
                MlpBias = architecture == ModelArchitecture.Llama && (OptionalBool("mlp_bias") ?? false),
                BosTokenId = OptionalInt("bos_token_id", allowZero: true),
                EosTokenIds = ReadTokenIds(root, "eos_token_id", source),
                TorchDtype = OptionalString("torch_dtype") ?? OptionalString("dtype"),
            };
        }

        private ModelArchitecture ReadArchitecture()
        {
            string? arch = null;
            if (root.TryGetProperty("architectures", out var archs) && archs.ValueKind == JsonValueKind.Array && archs.GetArrayLength() > 0)
                arch = archs[0].ValueKind == JsonValueKind.String ? archs[0].GetString() : null;
            string? modelType = OptionalString("model_type");
            if (arch is null && modelType is null) throw Error("architectures", "is required (or model_type)");
            return (arch, modelType) switch
            {
                ("LlamaForCausalLM", _) or (null, "llama") => ModelArchitecture.Llama,
                ("Qwen2ForCausalLM", _) or (null, "qwen2") => ModelArchitecture.Qwen2,
                (not null, _) => throw Error("architectures", $"\"{arch}\" is not supported; expected LlamaForCausalLM or Qwen2ForCausalLM"),
                _ => throw Error("model_type", $"\"{modelType}\" is not supported; expected llama or qwen2"),
            };
        }

        private (double Theta, Llama3RopeScaling? Scaling) ReadRope()
        {
            double? theta = PositiveDouble("rope_theta");
            JsonElement? scaling = null;
            if (root.TryGetProperty("rope_parameters", out var parameters) && parameters.ValueKind == JsonValueKind.Object)
            {
                if (parameters.TryGetProperty("rope_theta", out var t) && t.ValueKind == JsonValueKind.Number) theta ??= t.GetDouble();
                scaling = parameters;
            }
            if (root.TryGetProperty("rope_scaling", out var s) && s.ValueKind == JsonValueKind.Object) scaling = s;
            string field = root.TryGetProperty("rope_scaling", out var rs) && rs.ValueKind == JsonValueKind.Object ? "rope_scaling" : "rope_parameters";
            if (scaling is not { } sc) return (theta ?? 10000.0, null);

            string? type = null;
            if (sc.TryGetProperty("rope_type", out var rt) && rt.ValueKind == JsonValueKind.String) type = rt.GetString();
            else if (sc.TryGetProperty("type", out var tt) && tt.ValueKind == JsonValueKind.String) type = tt.GetString();
            if (type is null or "default") return (theta ?? 10000.0, null);
            if (type != "llama3")
                throw Error($"{field}.rope_type", $"\"{type}\" is not supported; expected \"default\" or \"llama3\"");
            double Num(string name)
            {
                if (!sc.TryGetProperty(name, out var v) || v.ValueKind != JsonValueKind.Number || !(v.GetDouble() > 0))
                    throw Error($"{field}.{name}", "is required for llama3 RoPE scaling (a positive number)");
                return v.GetDouble();
            }
            double original = Num("original_max_position_embeddings");
            if (original != Math.Floor(original) || original > int.MaxValue)
                throw Error($"{field}.original_max_position_embeddings", $"is {original}; expected a positive integer");
            var llama3 = new Llama3RopeScaling(Num("factor"), Num("low_freq_factor"), Num("high_freq_factor"), (int)original);
            if (llama3.HighFrequencyFactor <= llama3.LowFrequencyFactor)
                throw Error($"{field}.high_freq_factor", "must exceed low_freq_factor");
            return (theta ?? 10000.0, llama3);
        }

        private int RequiredInt(string name) => OptionalInt(name) ?? throw Error(name, "is required (a positive integer)");

        private int? OptionalInt(string name, bool allowZero = false)
        {
            if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i) || i < 0 || (i == 0 && !allowZero))
                throw Error(name, $"is {v.GetRawText()}; expected a positive integer");
            return i;
        }

        private double? OptionalDouble(string name)
        {
            if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            if (v.ValueKind != JsonValueKind.Number) throw Error(name, $"is {v.GetRawText()}; expected a number");
            return v.GetDouble();
        }

        private double? PositiveDouble(string name)
        {
            double? v = OptionalDouble(name);
            if (v is { } d && !(d > 0)) throw Error(name, $"is {d}; expected a positive number");
            return v;
        }

        private bool? OptionalBool(string name)
        {
            if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            return v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Error(name, $"is {v.GetRawText()}; expected true or false"),
            };
        }

        private string? OptionalString(string name)
        {
            if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            return v.ValueKind == JsonValueKind.String ? v.GetString() : throw Error(name, $"is {v.GetRawText()}; expected a string");
        }

        private SparkException Error(string field, string problem) => new($"{source}: field '{field}' {problem}");
    }

    /// <summary>Reads a token-id field that may be an int, a list of ints, or absent/null.</summary>
    internal static IReadOnlyList<int> ReadTokenIds(JsonElement root, string name, string source)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return [];
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int single) && single >= 0) return [single];
        if (v.ValueKind == JsonValueKind.Array)
        {
            var ids = new List<int>();
            foreach (var e in v.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int id) || id < 0)
                    throw new SparkException($"{source}: field '{name}' holds {e.GetRawText()}; expected non-negative integers");
                ids.Add(id);
            }
            return ids;
        }
        throw new SparkException($"{source}: field '{name}' is {v.GetRawText()}; expected an integer or a list of integers");
    }
}
