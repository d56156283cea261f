using System.Globalization;
using System.Text.Json;
using Spark.Native.Backends;
using Spark.Native.IO;
using Spark.Native.Models;

namespace Spark.Native.Training;

/// <summary>
/// What a run needs to resume besides the weights: counters, the data position, the RNG state, the optimizer
/// settings and the AdamW moments (two F32 arenas mirroring the parameter layout; zero when fresh).
/// Saved as <c>training_state.safetensors</c> (tensors <c>exp_avg.&lt;hf name&gt;</c> and
/// <c>exp_avg_sq.&lt;hf name&gt;</c>, F32, parameter shapes) plus <c>training_state.json</c> (scalars). When the
/// model's weights are stored in a narrower type than F32 (BF16 on CUDA), the state can also hold F32 master weights
/// (<c>master.&lt;hf name&gt;</c>) that the optimizer updates; the exported checkpoint then carries their rounding, and a
/// resume continues from the exact master values.
/// </summary>
internal sealed class TrainingState : IDisposable
{
    public const string TensorFileName = "training_state.safetensors";
    public const string JsonFileName = "training_state.json";
    public const string FirstMomentPrefix = "exp_avg.";
    public const string SecondMomentPrefix = "exp_avg_sq.";
    public const string MasterPrefix = "master.";
    private const string Format = "spark-training-state";
    private const int Version = 1;

    private readonly IBackend _backend;

    /// <summary>
    /// Fresh state: zero moments, and with <paramref name="masterFrom"/> an F32 master copy of those weights (read
    /// back from the backend, exact).
    /// </summary>
    public TrainingState(IBackend backend, ParameterLayout layout, OptimizerSettings settings, ParameterArena? masterFrom = null)
    {
        settings.Validate();
        _backend = backend;
        Layout = layout;
        Settings = settings;
        FirstMoment = new ParameterArena(backend, layout);
        try
        {
            SecondMoment = new ParameterArena(backend, layout);
            if (masterFrom is not null)
            {
                Master = new ParameterArena(backend, layout);
                foreach (var e in layout.Entries)
                {
                    var values = new float[e.Length];
                    backend.Download(values, masterFrom[e.Name]);
                    backend.Upload(Master[e.Name], values);
                }
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public ParameterLayout Layout { get; }
    public OptimizerSettings Settings { get; set; }
    /// <summary>Optimizer steps taken (the next update is step <c>Step + 1</c> for AdamW's bias correction).</summary>
    public long Step { get; set; }
    /// <summary>Passes over the data completed.</summary>
    public int Epoch { get; set; }
    /// <summary>Index of the next sample to read within the current epoch.</summary>
    public long SamplePosition { get; set; }
    /// <summary>The sampler's RNG state.</summary>
    public ulong RngState { get; set; }
    /// <summary>AdamW updates actually applied (steps skipped for non-finite gradients do not count): the bias-correction step.</summary>
    public long OptimizerStep { get; set; }
    /// <summary>What the run was started with (data and batching), compared on resume; null when unknown.</summary>
    public string? RunFingerprint { get; set; }
    /// <summary>AdamW m, one view per parameter.</summary>
    public ParameterArena FirstMoment { get; }
    /// <summary>AdamW v, one view per parameter.</summary>
    public ParameterArena SecondMoment { get; } = null!;
    /// <summary>F32 master weights the optimizer updates, when the model stores narrower ones; otherwise null.</summary>
    public ParameterArena? Master { get; private set; }

    /// <summary>
    /// Writes both files into <paramref name="directory"/> (created if needed), each atomically (temporary file, then
    /// rename): the tensors first, then the JSON. Both carry the step, so <see cref="Load"/> detects a pair torn by a
    /// crash between the two renames. Moments are downloaded one parameter at a time.
    /// </summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        var entries = Layout.Entries;
        var arenas = Master is null ? [FirstMoment, SecondMoment] : new[] { FirstMoment, SecondMoment, Master };
        string[] prefixes = [FirstMomentPrefix, SecondMomentPrefix, MasterPrefix];
        var headers = new List<SafeTensorHeaderEntry>(arenas.Length * entries.Count);
        for (int a = 0; a < arenas.Length; a++)
            foreach (var e in entries)
                headers.Add(new SafeTensorHeaderEntry(prefixes[a] + e.Name, DType.F32, e.Shape.Select(d => (long)d).ToArray()));
        var metadata = new Dictionary<string, string> { ["step"] = Step.ToString(CultureInfo.InvariantCulture) };
        SafeTensorsWriter.WriteStreaming(Path.Combine(directory, TensorFileName), headers, i =>
        {
            var e = entries[i % entries.Count];
            var arena = arenas[i / entries.Count];
            var values = new float[e.Length];
            _backend.Download(values, arena[e.Name]);
            return SafeTensorWriteEntry.FromF32(headers[i].Name, headers[i].Shape, values).Data;
        }, metadata);
        var json = ToJson();
        AtomicFile.Write(Path.Combine(directory, JsonFileName), stream => stream.Write(json));
    }

    /// <summary>
    /// Reads a state saved by <see cref="Save"/> for a model of <paramref name="layout"/>. Every parameter must have
    /// both moments, F32, in its shape, and nothing else may be there; errors are <see cref="SparkException"/>s
    /// naming the file and tensor. Master weights are loaded when the file has them, and required when
    /// <paramref name="needsMaster"/> (the model stores narrower weights and trains with a master copy).
    /// </summary>
    public static TrainingState Load(string directory, IBackend backend, ParameterLayout layout, bool needsMaster = false)
    {
        string jsonPath = Path.Combine(directory, JsonFileName);
        string tensorPath = Path.Combine(directory, TensorFileName);
        if (!File.Exists(jsonPath)) throw new SparkException($"{jsonPath}: no such file (not a saved training state)");
        if (!File.Exists(tensorPath)) throw new SparkException($"{tensorPath}: no such file (not a saved training state)");
        var scalars = ReadJson(jsonPath);

        SafeTensorsFile file;
        try { file = SafeTensorsFile.Open(tensorPath); }
        catch (SafeTensorsException e) { throw new SparkException(e.Message, e); }
        using (file)
        {
            string savedStep = file.Metadata.GetValueOrDefault("step") ?? "(none)";
            if (savedStep != scalars.Step.ToString(CultureInfo.InvariantCulture))
                throw new SparkException($"{tensorPath}: holds the moments of step {savedStep} but {JsonFileName} is at step {scalars.Step}; the save was interrupted");
            Validate(file, layout);
            bool hasMaster = layout.Entries.Count > 0 && file.TryGet(MasterPrefix + layout.Entries[0].Name, out _);
            if (needsMaster && !hasMaster)
                throw new SparkException($"{tensorPath}: has no master weights ('{MasterPrefix}<name>'); it was saved by a run without them (another device or --master-weights setting)");

            var state = new TrainingState(backend, layout, scalars.Settings)
            {
                Step = scalars.Step, Epoch = scalars.Epoch, SamplePosition = scalars.SamplePosition, RngState = scalars.RngState,
                OptimizerStep = scalars.OptimizerStep, RunFingerprint = scalars.RunFingerprint,
            };
            try
            {
                if (needsMaster) state.Master = new ParameterArena(backend, layout);
                foreach (var e in layout.Entries)
                {
                    backend.Upload(state.FirstMoment[e.Name], file.ReadF32(FirstMomentPrefix + e.Name));
                    backend.Upload(state.SecondMoment[e.Name], file.ReadF32(SecondMomentPrefix + e.Name));
                    if (state.Master is not null) backend.Upload(state.Master[e.Name], file.ReadF32(MasterPrefix + e.Name));
                }
                return state;
            }
            catch
            {
                state.Dispose();
                throw;
            }
        }
    }

    public void Dispose()
    {
        FirstMoment?.Dispose();
        SecondMoment?.Dispose();
        Master?.Dispose();
    }

    private static void Validate(SafeTensorsFile file, ParameterLayout layout)
    {
        foreach (var t in file.Tensors)
        {
            string? parameter = t.Name.StartsWith(SecondMomentPrefix, StringComparison.Ordinal) ? t.Name[SecondMomentPrefix.Length..]
                : t.Name.StartsWith(FirstMomentPrefix, StringComparison.Ordinal) ? t.Name[FirstMomentPrefix.Length..]
                : t.Name.StartsWith(MasterPrefix, StringComparison.Ordinal) ? t.Name[MasterPrefix.Length..]
                : null;
            if (parameter is null)
                throw new SparkException($"{file.Path}: tensor '{t.Name}' is not optimizer state (expected '{FirstMomentPrefix}<name>', '{SecondMomentPrefix}<name>' or '{MasterPrefix}<name>')");
            if (!layout.TryGet(parameter, out var entry))
                throw new SparkException($"{file.Path}: tensor '{t.Name}' belongs to parameter '{parameter}', which the model does not have");
            if (t.DType != DType.F32)
                throw new SparkException($"{file.Path}: tensor '{t.Name}' is {DTypes.Name(t.DType)}; optimizer state is F32");
            if (!t.Shape.SequenceEqual(entry.Shape.Select(d => (long)d)))
                throw new SparkException(
                    $"{file.Path}: tensor '{t.Name}' has shape {SafeTensorInfo.FormatShape(t.Shape)} but parameter '{entry.Name}' has {SafeTensorInfo.FormatShape(entry.Shape.Select(d => (long)d).ToArray())}");
        }
        bool anyMaster = file.Tensors.Any(t => t.Name.StartsWith(MasterPrefix, StringComparison.Ordinal));
        foreach (var e in layout.Entries)
            foreach (string prefix in anyMaster ? [FirstMomentPrefix, SecondMomentPrefix, MasterPrefix] : (string[])[FirstMomentPrefix, SecondMomentPrefix])
                if (!file.TryGet(prefix + e.Name, out _))
                    throw new SparkException($"{file.Path}: tensor '{prefix + e.Name}' is missing");
    }

    private byte[] ToJson()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("format", Format);
            w.WriteNumber("version", Version);
            w.WriteNumber("step", Step);
            w.WriteNumber("epoch", Epoch);
            w.WriteNumber("sample_position", SamplePosition);
            // a string: JSON readers that parse numbers as doubles would round a 64-bit state
            w.WriteString("rng_state", RngState.ToString(CultureInfo.InvariantCulture));
            w.WriteNumber("optimizer_step", OptimizerStep);
            if (RunFingerprint is not null) w.WriteString("run_fingerprint", RunFingerprint);
            w.WriteStartObject("optimizer");
            w.WriteNumber("learning_rate", Settings.LearningRate);
            w.WriteNumber("beta1", Settings.Beta1);
            w.WriteNumber("beta2", Settings.Beta2);
            w.WriteNumber("epsilon", Settings.Epsilon);
            w.WriteNumber("weight_decay", Settings.WeightDecay);
            w.WriteNumber("max_grad_norm", Settings.MaxGradNorm);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private sealed record Scalars(long Step, int Epoch, long SamplePosition, ulong RngState, OptimizerSettings Settings,
        long OptimizerStep, string? RunFingerprint);

    private static Scalars ReadJson(string path)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new SparkException($"{path}: invalid JSON at line {e.LineNumber + 1}", e); }
        using (doc)
        {
            var root = doc.RootElement;
            SparkException Error(string field, string problem) => new($"{path}: field '{field}' {problem}");
            if (root.ValueKind != JsonValueKind.Object) throw new SparkException($"{path}: the top level must be a JSON object");
            if (!root.TryGetProperty("format", out var f) || f.ValueKind != JsonValueKind.String || f.GetString() != Format)
                throw Error("format", $"must be \"{Format}\"");
            if (!root.TryGetProperty("version", out var v) || !v.TryGetInt32(out int version) || version != Version)
                throw Error("version", $"must be {Version}");
            long Long(JsonElement parent, string name, string prefix = "")
            {
                if (!parent.TryGetProperty(name, out var e) || e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long value) || value < 0)
                    throw Error(prefix + name, "is required (an integer ≥ 0)");
                return value;
            }
            double Double(JsonElement parent, string name)
            {
                if (!parent.TryGetProperty(name, out var e) || e.ValueKind != JsonValueKind.Number)
                    throw Error("optimizer." + name, "is required (a number)");
                return e.GetDouble();
            }
            if (!root.TryGetProperty("rng_state", out var r) || r.ValueKind != JsonValueKind.String
                || !ulong.TryParse(r.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out ulong rng))
                throw Error("rng_state", "is required (an unsigned 64-bit integer as a decimal string)");
            if (!root.TryGetProperty("optimizer", out var o) || o.ValueKind != JsonValueKind.Object)
                throw Error("optimizer", "is required (an object)");
            long epoch = Long(root, "epoch");
            if (epoch > int.MaxValue) throw Error("epoch", $"is {epoch}; too large");
            var settings = new OptimizerSettings
            {
                LearningRate = Double(o, "learning_rate"), Beta1 = Double(o, "beta1"), Beta2 = Double(o, "beta2"),
                Epsilon = Double(o, "epsilon"), WeightDecay = Double(o, "weight_decay"), MaxGradNorm = Double(o, "max_grad_norm"),
            };
            try { settings.Validate(); }
            catch (SparkException e) { throw new SparkException($"{path}: {e.Message}", e); }
            long step = Long(root, "step");
            long optimizerStep = root.TryGetProperty("optimizer_step", out _) ? Long(root, "optimizer_step") : step;
            string? fingerprint = root.TryGetProperty("run_fingerprint", out var fp) && fp.ValueKind == JsonValueKind.String ? fp.GetString() : null;
            return new Scalars(step, (int)epoch, Long(root, "sample_position"), rng, settings, optimizerStep, fingerprint);
        }
    }
}
