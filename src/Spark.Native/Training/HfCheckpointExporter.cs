using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spark.Native.IO;
using Spark.Native.Models;

namespace Spark.Native.Training;

/// <summary>Options for exporting a Hugging Face checkpoint folder.</summary>
public sealed record ExportOptions
{
    /// <summary>
    /// The model folder the weights came from: its <c>config.json</c>, <c>generation_config.json</c> and tokenizer
    /// files are copied. Null: <c>config.json</c> and a minimal <c>generation_config.json</c> are generated, and no
    /// tokenizer is written.
    /// </summary>
    public string? SourceDirectory { get; init; }

    /// <summary>Stored weight type: <see cref="DType.F32"/> (exact) or <see cref="DType.BF16"/> (round to nearest even).</summary>
    public DType DType { get; init; } = DType.F32;

    /// <summary>
    /// Largest shard in bytes of tensor data (default 5,000,000,000, transformers' <c>max_shard_size="5GB"</c>).
    /// Weights above it are split into <c>model-0000i-of-0000N.safetensors</c> plus <c>model.safetensors.index.json</c>;
    /// a tensor larger than the limit gets a shard of its own, as <c>huggingface_hub</c> does.
    /// </summary>
    public long MaxShardBytes { get; init; } = 5_000_000_000;

    /// <summary>Writes further files (e.g. the training state) into the new folder before it is swapped into place.</summary>
    public Action<string>? WriteExtraFiles { get; init; }

    /// <summary>Test hook: called with each weight file's path once it is written.</summary>
    internal Action<string>? OnWeightFileWritten { get; init; }
}

/// <summary>
/// Writes a folder that transformers' <c>from_pretrained</c> (and <see cref="SparkModel.Load"/>) reads:
/// <c>config.json</c>, <c>generation_config.json</c>, <c>model.safetensors</c> or shards with an index, and the
/// tokenizer files of the source folder. Tied embeddings are written once (no <c>lm_head.weight</c>), as
/// transformers saves them.
/// </summary>
internal static class HfCheckpointExporter
{
    /// <summary>Tokenizer files copied from the source folder when present.</summary>
    public static readonly string[] TokenizerFiles =
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja", "chat_template.json", "tokenizer.model"];

    /// <summary>
    /// Exports the parameters of <paramref name="layout"/>, read one at a time by <paramref name="readParameter"/>
    /// (F32, the entry's element count), into <paramref name="outDirectory"/>. Atomic at the folder level: everything
    /// is written into <c>&lt;out&gt;.tmp-&lt;random&gt;</c>, then the old folder is renamed aside, the new one renamed
    /// into place and the old one deleted. On any failure the temporary folder is removed and the previous folder
    /// stays as it was. A crash between the two renames leaves the previous checkpoint as <c>&lt;out&gt;.old-*</c>.
    /// An existing non-empty <paramref name="outDirectory"/> without <c>config.json</c> is refused rather than replaced.
    /// </summary>
    public static void Export(string outDirectory, ParameterLayout layout, Func<string, float[]> readParameter, ExportOptions? options = null)
    {
        options ??= new ExportOptions();
        if (options.DType is not (DType.F32 or DType.BF16))
            throw new SparkException($"export: dtype {DTypes.Name(options.DType)} is not supported; use F32 or BF16");
        if (options.MaxShardBytes <= 0) throw new SparkException($"export: max shard size {options.MaxShardBytes} must be > 0 bytes");
        string target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outDirectory));
        if (File.Exists(target)) throw new SparkException($"{target}: is a file; expected a checkpoint folder");
        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any() && !File.Exists(Path.Combine(target, "config.json")))
            throw new SparkException($"{target}: exists and holds no config.json; refusing to replace a folder that is not a checkpoint");
        string? source = options.SourceDirectory is null ? null : Path.GetFullPath(options.SourceDirectory);
        if (source is not null && !Directory.Exists(source)) throw new SparkException($"{source}: no such source model folder");

        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        string temp = $"{target}.tmp-{Path.GetRandomFileName()}";
        Directory.CreateDirectory(temp);
        try
        {
            WriteWeights(temp, layout, readParameter, options);
            WriteConfig(temp, layout, source, options.DType);
            WriteGenerationConfig(temp, layout.Config, source);
            if (source is not null)
                foreach (string name in TokenizerFiles)
                    if (File.Exists(Path.Combine(source, name))) WriteFlushed(Path.Combine(temp, name), File.ReadAllBytes(Path.Combine(source, name)));
            options.WriteExtraFiles?.Invoke(temp);
            SwapIntoPlace(temp, target);
        }
        catch
        {
            try { if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>
    /// Groups tensors of <paramref name="bytes"/> into shards of at most <paramref name="maxShardBytes"/>, in order,
    /// as <c>huggingface_hub.split_torch_state_dict_into_shards</c> does: a tensor larger than the limit becomes a
    /// shard of its own; otherwise a tensor that would overflow the current shard starts a new one.
    /// </summary>
    internal static List<List<int>> PlanShards(IReadOnlyList<long> bytes, long maxShardBytes)
    {
        var shards = new List<List<int>>();
        var current = new List<int>();
        long currentBytes = 0;
        for (int i = 0; i < bytes.Count; i++)
        {
            if (bytes[i] > maxShardBytes)
            {
                shards.Add([i]);
                continue;
            }
            if (currentBytes + bytes[i] > maxShardBytes)
            {
                shards.Add(current);
                current = [];
                currentBytes = 0;
            }
            current.Add(i);
            currentBytes += bytes[i];
        }
        if (current.Count > 0) shards.Add(current);
        return shards;
    }

    private static void WriteWeights(string dir, ParameterLayout layout, Func<string, float[]> readParameter, ExportOptions options)
    {
        var entries = layout.Entries;
        var bytes = entries.Select(e => e.Length * DTypes.SizeOf(options.DType)).ToList();
        var shards = PlanShards(bytes, options.MaxShardBytes);
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int s = 0; s < shards.Count; s++)
        {
            string file = shards.Count == 1 ? SafeTensorsCheckpoint.SingleFileName : $"model-{s + 1:D5}-of-{shards.Count:D5}.safetensors";
            var members = shards[s].Select(i => entries[i]).ToList();
            var headers = members.Select(e => new SafeTensorHeaderEntry(e.Name, options.DType, e.Shape.Select(d => (long)d).ToArray())).ToList();
            string path = Path.Combine(dir, file);
            SafeTensorsWriter.WriteStreaming(path, headers, i =>
            {
                var e = members[i];
                float[] values = readParameter(e.Name);
                if (values.LongLength != e.Length)
                    throw new SparkException($"export: parameter '{e.Name}' has {values.LongLength} values, the layout expects {e.Length} ({Tensors.Tensor.ShapeString(e.Shape)})");
                return SafeTensorWriteEntry.FromF32(e.Name, headers[i].Shape, values, options.DType).Data;
            }, metadata);
            foreach (var e in members) weightMap[e.Name] = file;
            options.OnWeightFileWritten?.Invoke(path);
        }
        if (shards.Count == 1) return;
        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = bytes.Sum() },
            ["weight_map"] = new JsonObject(weightMap.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        };
        WriteJson(Path.Combine(dir, SafeTensorsCheckpoint.IndexFileName), index);
    }

    private static void WriteConfig(string dir, ParameterLayout layout, string? source, DType dtype)
    {
        string torchDtype = dtype == DType.BF16 ? "bfloat16" : "float32";
        string? sourcePath = source is null ? null : Path.Combine(source, "config.json");
        JsonObject config;
        if (sourcePath is not null && File.Exists(sourcePath))
        {
            // the copy must describe the same parameters, or the folder would not load
            var sourceLayout = new ParameterLayout(ModelConfig.Load(sourcePath));
            if (!SameShapes(sourceLayout, layout))
                throw new SparkException($"{sourcePath}: describes a model with other parameters than the one being exported");
            config = JsonNode.Parse(File.ReadAllText(sourcePath))!.AsObject();
            if (config.ContainsKey("dtype")) config["dtype"] = torchDtype;
            config["torch_dtype"] = torchDtype;
        }
        else config = GenerateConfig(layout.Config, torchDtype);
        WriteJson(Path.Combine(dir, "config.json"), config);
    }

    /// <summary>A transformers <c>config.json</c> for <paramref name="c"/> (LlamaConfig / Qwen2Config field names).</summary>
    internal static JsonObject GenerateConfig(ModelConfig c, string torchDtype)
    {
        bool qwen = c.Architecture == ModelArchitecture.Qwen2;
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray(qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM"),
            ["model_type"] = qwen ? "qwen2" : "llama",
            ["vocab_size"] = c.VocabSize,
            ["hidden_size"] = c.HiddenSize,
            ["intermediate_size"] = c.IntermediateSize,
            ["num_hidden_layers"] = c.LayerCount,
            ["num_attention_heads"] = c.HeadCount,
            ["num_key_value_heads"] = c.KeyValueHeadCount,
            ["head_dim"] = c.HeadDim,
            ["hidden_act"] = "silu",
            ["max_position_embeddings"] = c.MaxPositions,
            ["rms_norm_eps"] = c.RmsNormEps,
            ["rope_theta"] = c.RopeTheta,
            ["tie_word_embeddings"] = c.TieWordEmbeddings,
            ["torch_dtype"] = torchDtype,
        };
        if (!qwen)
        {
            config["attention_bias"] = c.QkvBias;
            config["mlp_bias"] = c.MlpBias;
        }
        else config["use_sliding_window"] = false;
        if (c.RopeScaling is { } r)
            config["rope_scaling"] = new JsonObject
            {
                ["rope_type"] = "llama3", ["factor"] = r.Factor, ["low_freq_factor"] = r.LowFrequencyFactor,
                ["high_freq_factor"] = r.HighFrequencyFactor, ["original_max_position_embeddings"] = r.OriginalMaxPositions,
            };
        if (c.BosTokenId is int bos) config["bos_token_id"] = bos;
        if (TokenIds(c.EosTokenIds) is { } eos) config["eos_token_id"] = eos;
        return config;
    }

    private static void WriteGenerationConfig(string dir, ModelConfig c, string? source)
    {
        string path = Path.Combine(dir, "generation_config.json");
        string? sourcePath = source is null ? null : Path.Combine(source, "generation_config.json");
        if (sourcePath is not null && File.Exists(sourcePath))
        {
            WriteFlushed(path, File.ReadAllBytes(sourcePath));
            return;
        }
        var generation = new JsonObject { ["_from_model_config"] = true };
        if (c.BosTokenId is int bos) generation["bos_token_id"] = bos;
        if (TokenIds(c.EosTokenIds) is { } eos) generation["eos_token_id"] = eos;
        WriteJson(path, generation);
    }

    private static JsonNode? TokenIds(IReadOnlyList<int> ids) => ids.Count switch
    {
        0 => null,
        1 => ids[0],
        _ => new JsonArray(ids.Select(id => (JsonNode?)id).ToArray()),
    };

    private static bool SameShapes(ParameterLayout a, ParameterLayout b) =>
        a.Entries.Count == b.Entries.Count
        && a.Entries.Zip(b.Entries).All(p => p.First.Name == p.Second.Name && p.First.Shape.SequenceEqual(p.Second.Shape));

    private static void SwapIntoPlace(string temp, string target)
    {
        string? old = null;
        if (Directory.Exists(target))
        {
            old = $"{target}.old-{Path.GetRandomFileName()}";
            Directory.Move(target, old);
        }
        try { Directory.Move(temp, target); Interop.FileSystem.SyncParentDirectory(target); }
        catch
        {
            if (old is not null) Directory.Move(old, target);
            throw;
        }
        if (old is null) return;
        try { Directory.Delete(old, recursive: true); }
        catch (IOException) { } // the new checkpoint is in place; a leftover .old-* folder is only disk space
        catch (UnauthorizedAccessException) { }
    }

    private static void WriteJson(string path, JsonNode node)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            node.WriteTo(w);
        WriteFlushed(path, buffer.ToArray());
    }

    private static void WriteFlushed(string path, byte[] bytes)
    {
        using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        stream.Write(bytes);
        stream.Flush(flushToDisk: true);
    }
}
