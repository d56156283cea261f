using System.Text.Json;
using Spark.Native.Backends;
using Spark.Native.Backends.Cpu;
using Spark.Native.Generation;
using Spark.Native.IO;
using Spark.Native.Models;

namespace Spark.Native;

/// <summary>Where a model runs.</summary>
public enum Device
{
    /// <summary>The CPU reference backend (F32).</summary>
    Cpu,
    /// <summary>An NVIDIA GPU: bf16 weights and activations (forward and generation; first version, see the README).</summary>
    Cuda,
}

/// <summary>Options for <see cref="SparkModel.Load"/>.</summary>
public sealed record ModelLoadOptions
{
    /// <summary>The backend to run on.</summary>
    public Device Device { get; init; } = Device.Cpu;
}

/// <summary>What <see cref="SparkModel.Inspect"/> reports about a model folder.</summary>
/// <param name="Config">The validated configuration.</param>
/// <param name="ParameterCount">Parameters (tied embeddings counted once).</param>
/// <param name="TensorCount">Parameter tensors the engine loads.</param>
/// <param name="ParametersByStoredDType">Parameter count per dtype as stored in the checkpoint.</param>
/// <param name="StoredBytes">Bytes of those tensors in the checkpoint.</param>
/// <param name="CpuWeightBytes">Memory for the weights on the CPU backend (F32).</param>
/// <param name="KvCacheBytesPerToken">KV-cache memory per token of context on the CPU backend (F32).</param>
/// <param name="Notices">Tensors that would be skipped when loading.</param>
public sealed record ModelInspection(ModelConfig Config, long ParameterCount, int TensorCount,
    IReadOnlyDictionary<string, long> ParametersByStoredDType, long StoredBytes, long CpuWeightBytes, long KvCacheBytesPerToken,
    IReadOnlyList<string> Notices);

/// <summary>A loss and the gradient of every weight, keyed by Hugging Face weight name (shapes as the weights).</summary>
/// <param name="Loss">Mean next-token cross-entropy.</param>
/// <param name="Gradients">∂loss/∂weight per weight name, row-major.</param>
public sealed record GradientResult(float Loss, IReadOnlyDictionary<string, float[]> Gradients);

/// <summary>Logits of a forward pass: <see cref="Rows"/> × <see cref="VocabSize"/> floats, row-major.</summary>
public sealed class Logits
{
    internal Logits(float[] values, int rows, int vocabSize)
    {
        Values = values;
        Rows = rows;
        VocabSize = vocabSize;
    }

    /// <summary>Number of positions (T).</summary>
    public int Rows { get; }
    /// <summary>Vocabulary size (V).</summary>
    public int VocabSize { get; }
    /// <summary>All logits, [T, V] row-major.</summary>
    public float[] Values { get; }
    /// <summary>The logits of position <paramref name="t"/>: [V].</summary>
    public ReadOnlySpan<float> Row(int t) => Values.AsSpan(checked(t * VocabSize), VocabSize);
}

/// <summary>
/// A Hugging Face causal LM (Llama or Qwen2 family) loaded from a folder with <c>config.json</c> and
/// <c>model.safetensors</c> (or a sharded <c>model.safetensors.index.json</c>). Dispose it to free its memory.
/// One call at a time: a model is not safe to use from several threads at once, nor to dispose while in use.
/// </summary>
/// <example>
/// <code>
/// using var model = SparkModel.Load("Qwen2.5-0.5B-Instruct");
/// Logits logits = model.Forward([9707, 1879]);
/// var result = model.Generate([9707, 1879], new GenerationOptions { MaxNewTokens = 16, Seed = 7 });
/// </code>
/// </example>
public sealed class SparkModel : IDisposable
{
    private readonly IBackend _backend;
    private readonly ParameterArena _parameters;
    private readonly Transformer _transformer;
    private bool _disposed;

    private SparkModel(IBackend backend, ParameterArena parameters, IReadOnlyList<string> notices)
    {
        _backend = backend;
        _parameters = parameters;
        _transformer = new Transformer(backend, parameters);
        LoadNotices = notices;
    }

    /// <summary>A model over parameters already on <paramref name="backend"/> (benchmarks with random weights); takes ownership of both.</summary>
    internal static SparkModel FromParameters(IBackend backend, ParameterArena parameters) => new(backend, parameters, []);

    /// <summary>The validated model configuration.</summary>
    public ModelConfig Config => _parameters.Layout.Config;

    /// <summary>Number of parameters (tied embeddings counted once).</summary>
    public long ParameterCount => _parameters.Layout.TotalLength;

    /// <summary>Things skipped while loading (e.g. <c>rotary_emb.inv_freq</c> buffers), one line each.</summary>
    public IReadOnlyList<string> LoadNotices { get; }

    /// <summary>The backend's name ("cpu").</summary>
    public string DeviceName => _backend.Name;

    /// <summary>Loads a model folder onto a device. Errors are <see cref="SparkException"/>s naming the file and field or tensor.</summary>
    public static SparkModel Load(string directory, ModelLoadOptions? options = null)
    {
        options ??= new ModelLoadOptions();
        var config = LoadConfig(directory);
        IBackend backend = options.Device switch
        {
            Device.Cpu => new CpuBackend(),
            Device.Cuda => Backends.Cuda.CudaBackend.TryCreate(out var cuda, out string reason) ? cuda
                : throw new SparkException($"device cuda is not available: {reason}"),
            _ => throw new SparkException($"device {options.Device} is not supported"),
        };
        using var checkpoint = SafeTensorsCheckpoint.Open(directory);
        var layout = new ParameterLayout(config);
        var notices = CheckpointLoader.Validate(layout, checkpoint);
        var arena = new ParameterArena(backend, layout, backend.ActivationDType);
        try
        {
            CheckpointLoader.Load(arena, checkpoint);
            return new SparkModel(backend, arena, notices);
        }
        catch
        {
            arena.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Describes a model folder without loading its weights: configuration, parameter count, stored dtypes and the
    /// memory the CPU backend needs. The checkpoint is validated against the configuration.
    /// </summary>
    public static ModelInspection Inspect(string directory)
    {
        var config = LoadConfig(directory);
        using var checkpoint = SafeTensorsCheckpoint.Open(directory);
        var layout = new ParameterLayout(config);
        var notices = CheckpointLoader.Validate(layout, checkpoint);
        var byDType = new SortedDictionary<string, long>(StringComparer.Ordinal);
        long storedBytes = 0;
        foreach (var entry in layout.Entries)
        {
            checkpoint.TryGet(entry.Name, out var info);
            string dtype = info.DType.ToString();
            byDType[dtype] = byDType.GetValueOrDefault(dtype) + entry.Length;
            storedBytes += info.End - info.Begin;
        }
        return new ModelInspection(config, layout.TotalLength, layout.Entries.Count, byDType, storedBytes,
            CpuWeightBytes: layout.TotalLength * sizeof(float),
            KvCacheBytesPerToken: 2L * config.LayerCount * config.KeyValueHeadCount * config.HeadDim * sizeof(float),
            notices);
    }

    /// <summary>
    /// The decoding defaults of a model folder's <c>generation_config.json</c>, resolved as Hugging Face
    /// <c>GenerationConfig</c> resolves them: greedy unless <c>do_sample</c> is true (also when the file is absent),
    /// <c>temperature</c> 1, <c>top_k</c> 50 and <c>top_p</c> 1 unless given. Settings the engine does not apply
    /// (e.g. <c>repetition_penalty</c> ≠ 1) are listed in <paramref name="ignored"/>.
    /// </summary>
    public static GenerationOptions LoadGenerationDefaults(string directory, out IReadOnlyList<string> ignored)
    {
        var notApplied = new List<string>();
        ignored = notApplied;
        string path = Path.Combine(directory, "generation_config.json");
        if (!File.Exists(path)) return new GenerationOptions { Strategy = DecodingStrategy.Greedy };
        using var doc = ParseJson(path);
        var root = doc.RootElement;
        double? Number(string name) =>
            root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
        bool sample = root.TryGetProperty("do_sample", out var ds) && ds.ValueKind == JsonValueKind.True;
        var options = new GenerationOptions
        {
            Strategy = sample ? DecodingStrategy.Sample : DecodingStrategy.Greedy,
            Temperature = (float)(Number("temperature") ?? 1.0),
            TopK = (int)(Number("top_k") ?? 50),
            TopP = (float)(Number("top_p") ?? 1.0),
        };
        if (Number("repetition_penalty") is { } rp && rp != 1.0) notApplied.Add($"repetition_penalty {rp}");
        if (Number("min_p") is { } mp && mp > 0) notApplied.Add($"min_p {mp}");
        if (Number("num_beams") is { } beams && beams > 1) notApplied.Add($"num_beams {beams}");
        return options;
    }

    private static JsonDocument ParseJson(string path)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new SparkException($"{path}: invalid JSON at line {e.LineNumber + 1}", e); }
        if (doc.RootElement.ValueKind == JsonValueKind.Object) return doc;
        doc.Dispose();
        throw new SparkException($"{path}: the top level must be a JSON object");
    }

    /// <summary>
    /// Reads <c>config.json</c> of a model folder, merging EOS ids from <c>generation_config.json</c> when present.
    /// </summary>
    public static ModelConfig LoadConfig(string directory)
    {
        if (!System.IO.Directory.Exists(directory)) throw new SparkException($"{directory}: no such model folder");
        string path = Path.Combine(directory, "config.json");
        if (!File.Exists(path)) throw new SparkException($"{directory}: no config.json in the model folder");
        var config = ModelConfig.Load(path);
        string genPath = Path.Combine(directory, "generation_config.json");
        if (!File.Exists(genPath)) return config;
        using var doc = ParseJson(genPath);
        var eos = ModelConfig.ReadTokenIds(doc.RootElement, "eos_token_id", genPath);
        return config with { EosTokenIds = config.EosTokenIds.Concat(eos).Distinct().ToArray() };
    }

    /// <summary>Logits for every position of <paramref name="ids"/> [T], processed from position 0: [T, V].</summary>
    public Logits Forward(ReadOnlySpan<int> ids)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (ids.IsEmpty) throw new SparkException("forward needs at least one token id");
        if (ids.Length > Config.MaxPositions)
            throw new SparkException($"ids: {ids.Length} tokens exceed the model's max_position_embeddings ({Config.MaxPositions})");
        Generator.ValidateIds(ids.ToArray(), Config.VocabSize, "ids");
        using var cache = new KvCache(_backend, Config, slots: 1, capacity: ids.Length);
        using var logits = _transformer.Forward(ids, [new Segment(0, 0, ids.Length)], cache, LogitRows.All);
        var values = new float[logits.Length];
        _backend.Download(values, logits);
        GC.KeepAlive(this); // ops read native memory through raw spans: the weights must outlive the call
        return new Logits(values, ids.Length, Config.VocabSize);
    }

    /// <summary>
    /// The next-token logits after each of <paramref name="prompts"/> (each processed from position 0): [prompts, V].
    /// Prompts are packed into forwards of at most <paramref name="maxTokensPerForward"/> tokens (and 64 prompts), so a
    /// long list is scored in a few batched passes instead of one pass per prompt.
    /// </summary>
    /// <exception cref="SparkException">An empty prompt, an id outside the vocabulary, or a prompt longer than the context.</exception>
    public Logits NextTokenLogits(IReadOnlyList<IReadOnlyList<int>> prompts, int maxTokensPerForward = 4096)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(prompts);
        if (maxTokensPerForward < 1) throw new SparkException($"max tokens per forward is {maxTokensPerForward}; expected ≥ 1");
        for (int p = 0; p < prompts.Count; p++)
        {
            if (prompts[p].Count == 0) throw new SparkException($"prompt {p} is empty; scoring needs at least one token");
            if (prompts[p].Count > Config.MaxPositions)
                throw new SparkException($"prompt {p}: {prompts[p].Count} tokens exceed the model's max_position_embeddings ({Config.MaxPositions})");
            Generator.ValidateIds(prompts[p], Config.VocabSize, $"prompt {p}");
        }
        int vocab = Config.VocabSize;
        var values = new float[(long)prompts.Count * vocab];
        for (int start = 0; start < prompts.Count;)
        {
            // a chunk: consecutive prompts up to the token and row limits (always at least one prompt)
            int end = start, tokens = 0;
            while (end < prompts.Count && end - start < 64 && (end == start || tokens + prompts[end].Count <= maxTokensPerForward))
                tokens += prompts[end++].Count;
            var chunk = Enumerable.Range(start, end - start).Select(i => prompts[i]).ToArray();
            using var cache = new KvCache(_backend, Config, slots: chunk.Length, capacity: chunk.Max(p => p.Count));
            var segments = chunk.Select((p, i) => new Segment(i, 0, p.Count)).ToArray();
            using var logits = _transformer.Forward(chunk.SelectMany(p => p).ToArray(), segments, cache, LogitRows.LastOfEachSegment);
            _backend.Download(values.AsSpan(checked(start * vocab), chunk.Length * vocab), logits);
            start = end;
        }
        GC.KeepAlive(this); // as in Forward
        return new Logits(values, prompts.Count, vocab);
    }

    /// <summary>
    /// Generates a continuation of each prompt (prompts may differ in length), batched. Tokens are reported to
    /// <paramref name="onToken"/> as they are sampled.
    /// </summary>
    public IReadOnlyList<GenerationResult> Generate(IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options,
        Action<GeneratedToken>? onToken = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var results = Generator.Generate(_transformer, prompts, options, onToken);
        GC.KeepAlive(this); // as in Forward
        return results;
    }

    /// <summary>Generates a continuation of one prompt.</summary>
    public GenerationResult Generate(IReadOnlyList<int> prompt, GenerationOptions options, Action<GeneratedToken>? onToken = null) =>
        Generate([prompt], options, onToken)[0];

    /// <summary>
    /// The mean next-token cross-entropy over every prediction of the sequences (each processed from position 0;
    /// a sequence of T tokens makes T−1 predictions) and its gradient for every weight, keyed by Hugging Face name
    /// (tied embeddings: one gradient holding both uses), in the weight's shape, row-major.
    /// </summary>
    public GradientResult LossAndGradients(IReadOnlyList<IReadOnlyList<int>> sequences)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Training.TrainingSupport.Require(_backend);
        if (sequences.Count == 0) throw new SparkException("gradients need at least one sequence");
        for (int i = 0; i < sequences.Count; i++)
        {
            if (sequences[i].Count < 2) throw new SparkException($"sequence {i} has {sequences[i].Count} token(s); a prediction needs at least 2");
            if (sequences[i].Count > Config.MaxPositions)
                throw new SparkException($"sequence {i}: {sequences[i].Count} tokens exceed the model's max_position_embeddings ({Config.MaxPositions})");
            Generator.ValidateIds(sequences[i], Config.VocabSize, $"sequence {i}");
        }
        var tokens = sequences.SelectMany(s => s).ToArray();
        var targets = sequences.SelectMany(s => s.Skip(1).Append(-1)).ToArray();
        var segments = sequences.Select(s => new Segment(0, 0, s.Count)).ToArray();
        int predictions = tokens.Length - sequences.Count;

        using var graph = new TrainingGraph(_transformer, tokens.Length);
        using var gradients = new ParameterArena(_backend, _parameters.Layout);
        var (lossSum, _) = graph.ForwardBackward(tokens, targets, segments, gradients, predictions);
        var byName = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var entry in _parameters.Layout.Entries)
        {
            var values = new float[entry.Length];
            _backend.Download(values, gradients[entry.Name]);
            byName[entry.Name] = values;
        }
        GC.KeepAlive(this);
        return new GradientResult((float)(lossSum / predictions), byName);
    }

    /// <summary>The shape of a weight, by Hugging Face name.</summary>
    public long[] ParameterShape(string name) =>
        _parameters.Layout.TryGet(name, out var e) ? e.Shape.Select(d => (long)d).ToArray() : throw new SparkException($"no weight named '{name}'");

    internal Transformer Transformer => _transformer;

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
    internal ParameterArena Parameters => _parameters;
    internal IBackend Backend => _backend;

    internal ParameterLayout Layout => _parameters.Layout;

    /// <summary>
    /// Writes the model as a Hugging Face folder (config.json, generation_config.json, safetensors — sharded above
    /// <see cref="Training.ExportOptions.MaxShardBytes"/> —, and the tokenizer files of <see cref="Training.ExportOptions.SourceDirectory"/>),
    /// atomically: the previous folder stays intact if the write fails.
    /// </summary>
    public void Export(string directory, Training.ExportOptions? options = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Training.HfCheckpointExporter.Export(directory, _parameters.Layout, ReadParameter, options);
        GC.KeepAlive(this);
    }

    /// <summary>A copy of parameter <paramref name="name"/> (F32, row-major, the layout entry's shape).</summary>
    internal float[] ReadParameter(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var view = _parameters[name];
        var values = new float[view.Length];
        _backend.Download(values, view);
        GC.KeepAlive(this);
        return values;
    }

    /// <summary>Frees the model's memory.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _transformer.Dispose();
        _parameters.Dispose();
        _backend.Dispose();
    }
}
