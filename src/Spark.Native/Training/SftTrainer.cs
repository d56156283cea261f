using System.Diagnostics;
using System.Text.Json;
using Spark.Native.Backends;
using Spark.Native.Generation;
using Spark.Native.Models;

namespace Spark.Native.Training;

/// <summary>Whether the backward recomputes the (cheap) RMSNorm outputs instead of keeping them.</summary>
public enum RecomputeNorms
{
    /// <summary>Keep them: fastest.</summary>
    No,
    /// <summary>Recompute them: 2·layers·tokens·hidden fewer floats of activation memory.</summary>
    Yes,
}

/// <summary>
/// How the optimizer keeps weights that the backend stores narrower than F32 (BF16 on CUDA). Without effect on the CPU,
/// whose weights are F32.
/// </summary>
public enum MasterWeights
{
    /// <summary>An F32 master copy (4 more bytes per parameter) is updated and rounded to the stored type: exact resume.</summary>
    Fp32,
    /// <summary>
    /// No master copy: the update is computed in fp32 from the stored value and rounded stochastically, so updates
    /// smaller than half a bf16 ulp are kept on average (saves the master's memory).
    /// </summary>
    StochasticRounding,
}

/// <summary>Settings of a supervised fine-tuning run.</summary>
public sealed record SftOptions
{
    /// <summary>Passes over the data.</summary>
    public int Epochs { get; init; } = 1;
    /// <summary>Examples per micro-batch (packed as separate segments: no padding, no cross-attention).</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Micro-batches per optimizer step.</summary>
    public int GradientAccumulation { get; init; } = 1;
    /// <summary>AdamW settings (learning rate, betas, weight decay, gradient clipping).</summary>
    public OptimizerSettings Optimizer { get; init; } = new() { LearningRate = 1e-5 };
    /// <summary>Learning-rate shape after warm-up.</summary>
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Cosine;
    /// <summary>Linear warm-up steps.</summary>
    public int WarmupSteps { get; init; }
    /// <summary>Shuffling seed: the same seed and data give bit-identical weights on the CPU.</summary>
    public ulong Seed { get; init; }
    /// <summary>Save a checkpoint every this many optimizer steps (0: only the final one).</summary>
    public int SaveEvery { get; init; }
    /// <summary>Stop (with an error) after this many consecutive steps whose loss or gradients are not finite.</summary>
    public int MaxNonFiniteSteps { get; init; } = 5;
    /// <summary>Recompute the RMSNorm outputs in the backward instead of keeping them (less activation memory).</summary>
    public RecomputeNorms RecomputeNorms { get; init; } = RecomputeNorms.No;
    /// <summary>Stop after this many optimizer steps in this call (null: run to the end); for interrupting a run.</summary>
    public long? StopAfterSteps { get; init; }
    /// <summary>How narrow (BF16) weights are updated; see <see cref="Training.MasterWeights"/>.</summary>
    public MasterWeights MasterWeights { get; init; } = MasterWeights.Fp32;

    internal void Validate()
    {
        if (Epochs < 1) throw new SparkException($"epochs is {Epochs}; expected ≥ 1");
        if (BatchSize < 1) throw new SparkException($"batch size is {BatchSize}; expected ≥ 1");
        if (GradientAccumulation < 1) throw new SparkException($"gradient accumulation is {GradientAccumulation}; expected ≥ 1");
        if (WarmupSteps < 0) throw new SparkException($"warm-up steps is {WarmupSteps}; expected ≥ 0");
        if (SaveEvery < 0) throw new SparkException($"save-every is {SaveEvery}; expected ≥ 0");
        Optimizer.Validate();
    }
}

/// <summary>One optimizer step as reported to the console and the metrics file.</summary>
/// <param name="Step">Optimizer steps done (1-based).</param>
/// <param name="TotalSteps">Steps of the whole run.</param>
/// <param name="Epoch">Current epoch (0-based).</param>
/// <param name="Loss">Mean cross-entropy over the step's learned tokens.</param>
/// <param name="LearningRate">Learning rate used.</param>
/// <param name="GradNorm">Global gradient norm before clipping.</param>
/// <param name="Tokens">Tokens processed in the step.</param>
/// <param name="TokensPerSecond">Throughput of the step.</param>
/// <param name="Skipped">Whether the update was skipped (non-finite loss or gradients).</param>
/// <param name="EtaSeconds">Estimated seconds to the end of the run.</param>
public sealed record SftProgress(long Step, long TotalSteps, int Epoch, double Loss, double LearningRate, double GradNorm,
    int Tokens, double TokensPerSecond, bool Skipped, double EtaSeconds);

/// <summary>
/// Supervised fine-tuning on the model's backend: micro-batches packed as segments, gradient accumulation, global-norm
/// clipping, AdamW with per-weight decay policy, a learning-rate schedule, metrics as JSONL, periodic and final
/// Hugging Face checkpoints with the training state beside them, and bit-exact resume.
/// </summary>
public static class SftTrainer
{
    /// <summary>Name of the folder of the final checkpoint inside the output folder.</summary>
    public const string FinalCheckpoint = "final";

    /// <summary>
    /// Trains <paramref name="model"/> in place on <paramref name="data"/>; writes checkpoints and <c>metrics.jsonl</c>
    /// under <paramref name="outputDirectory"/>. <paramref name="resumeState"/> is a checkpoint folder written by an
    /// earlier run whose weights <paramref name="model"/> was loaded from. Returns the state after the last step.
    /// </summary>
    public static SftProgress? Train(SparkModel model, SftDataset data, SftOptions options, string outputDirectory,
        string? sourceDirectory = null, string? resumeState = null, Action<SftProgress>? onStep = null)
    {
        options.Validate();
        var backend = model.Backend;
        TrainingSupport.Require(backend);
        var layout = model.Parameters.Layout;
        ValidateAgainstModel(data, model.Config);
        bool master = model.Parameters.Buffer.DType != DType.F32 && options.MasterWeights == MasterWeights.Fp32;
        using var state = resumeState is null
            ? new TrainingState(backend, layout, options.Optimizer, master ? model.Parameters : null)
            : TrainingState.Load(resumeState, backend, layout, needsMaster: master);
        string fingerprint = Fingerprint(data, options);
        if (resumeState is null)
        {
            state.RngState = options.Seed;
            state.RunFingerprint = fingerprint;
        }
        else if (state.RunFingerprint != fingerprint)
            throw new SparkException($"{resumeState}: the saved run was started with other data or batching ({state.RunFingerprint ?? "unknown"}); this run has {fingerprint}. Resume with the same data, --batch-size, --grad-accum, --epochs, --seed and schedule");
        if (state.SamplePosition >= data.Examples.Count)
            throw new SparkException($"{resumeState}: saved sample position {state.SamplePosition} is past the {data.Examples.Count} examples");
        state.Settings = options.Optimizer;

        int perStep = options.BatchSize * options.GradientAccumulation;
        long stepsPerEpoch = (data.Examples.Count + perStep - 1) / perStep;
        long totalSteps = stepsPerEpoch * options.Epochs;
        var schedule = new LearningRateSchedule(options.Schedule, options.Optimizer.LearningRate, options.WarmupSteps, (int)Math.Max(totalSteps, options.WarmupSteps));
        int longest = data.Examples.Max(e => e.Ids.Length);
        using var graph = new TrainingGraph(model.Transformer, longest * options.BatchSize,
            options.RecomputeNorms == RecomputeNorms.Yes ? ActivationRecompute.Norms : ActivationRecompute.Nothing);
        using var gradients = new ParameterArena(backend, layout);
        Directory.CreateDirectory(outputDirectory);
        string metricsPath = Path.Combine(outputDirectory, "metrics.jsonl");
        TrimMetrics(metricsPath, state.Step); // a resumed run rewrites the steps after its checkpoint

        var clock = Stopwatch.StartNew();
        long stepsThisCall = 0;
        int nonFiniteInARow = 0;
        SftProgress? last = null;
        (int Epoch, int[] Order) shuffled = (-1, []);
        while (state.Epoch < options.Epochs && (options.StopAfterSteps is not { } stop || stepsThisCall < stop))
        {
            if (shuffled.Epoch != state.Epoch) shuffled = (state.Epoch, Shuffle(data.Examples.Count, state.RngState, state.Epoch));
            int[] order = shuffled.Order;
            var window = order.Skip((int)state.SamplePosition).Take(perStep).Select(i => data.Examples[i]).ToArray();
            var stepClock = Stopwatch.StartNew();

            // one optimizer step: token-mean loss over every learned token of the window
            int learned = window.Sum(e => e.Targets().Count(t => t >= 0));
            backend.Fill(gradients.Buffer, 0f);
            double lossSum = 0;
            int tokens = 0;
            foreach (var micro in window.Chunk(options.BatchSize))
            {
                var ids = micro.SelectMany(e => e.Ids).ToArray();
                var targets = micro.SelectMany(e => e.Targets()).ToArray();
                var segments = micro.Select(e => new Segment(0, 0, e.Ids.Length)).ToArray();
                lossSum += graph.ForwardBackward(ids, targets, segments, gradients, Math.Max(1, learned)).LossSum;
                tokens += ids.Length;
            }
            double loss = lossSum / Math.Max(1, learned);
            double normSquared = backend.SumOfSquares(gradients.Buffer);
            double gradNorm = Math.Sqrt(normSquared);
            double lr = schedule.At(state.Step);
            bool finite = double.IsFinite(loss) && double.IsFinite(normSquared);
            if (finite)
            {
                nonFiniteInARow = 0;
                float clip = (float)GradientClipping.Scale(normSquared, options.Optimizer.MaxGradNorm);
                var o = options.Optimizer;
                foreach (var entry in layout.Entries)
                {
                    float decay = WeightDecayPolicy.AppliesTo(entry.Name) ? (float)o.WeightDecay : 0f;
                    backend.AdamW(model.Parameters[entry.Name], state.Master?[entry.Name], gradients[entry.Name], state.FirstMoment[entry.Name],
                        state.SecondMoment[entry.Name], new AdamWStep((float)lr, (float)o.Beta1, (float)o.Beta2, (float)o.Epsilon, decay,
                            checked((int)(state.OptimizerStep + 1)), clip, Seed: StochasticSeed(options.Seed, entry.Name)));
                }
                state.OptimizerStep++;
            }
            else if (++nonFiniteInARow >= options.MaxNonFiniteSteps)
            {
                throw new SparkException($"step {state.Step + 1}: loss or gradients were not finite for {nonFiniteInARow} steps in a row (loss {loss}, grad norm {gradNorm}); stopping. Lower the learning rate or check the data");
            }

            state.Step++;
            stepsThisCall++;
            state.SamplePosition += window.Length;
            if (state.SamplePosition >= data.Examples.Count)
            {
                state.Epoch++;
                state.SamplePosition = 0;
            }
            double elapsed = clock.Elapsed.TotalSeconds;
            last = new SftProgress(state.Step, totalSteps, state.Epoch, loss, lr, gradNorm, tokens,
                tokens / Math.Max(1e-9, stepClock.Elapsed.TotalSeconds), Skipped: !finite,
                EtaSeconds: elapsed / stepsThisCall * (totalSteps - state.Step));
            File.AppendAllText(metricsPath, JsonSerializer.Serialize(last, MetricsJson) + "\n");
            onStep?.Invoke(last);

            bool done = state.Epoch >= options.Epochs;
            bool stopping = options.StopAfterSteps is { } limit && stepsThisCall >= limit;
            if (done || stopping || (options.SaveEvery > 0 && state.Step % options.SaveEvery == 0))
                SaveCheckpoint(model, state, Path.Combine(outputDirectory, done ? FinalCheckpoint : $"checkpoint-{state.Step}"), sourceDirectory);
        }
        return last;
    }

    /// <summary>Random bits of one parameter's stochastic rounding: the run's seed and the name (the kernel adds step and index).</summary>
    internal static uint StochasticSeed(ulong seed, string name)
    {
        uint h = 2166136261u; // FNV-1a over the name, then the seed mixed in
        foreach (char c in name) h = (h ^ c) * 16777619u;
        return h ^ (uint)seed ^ (uint)(seed >> 32);
    }

    private static readonly JsonSerializerOptions MetricsJson = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals, // a skipped step logs "NaN"
    };

    /// <summary>Exports the weights (F32, exact) with the training state beside them, atomically.</summary>
    internal static void SaveCheckpoint(SparkModel model, TrainingState state, string directory, string? sourceDirectory, Action<string>? saveMore = null)
    {
        model.Export(directory, new ExportOptions
        {
            SourceDirectory = sourceDirectory,
            WriteExtraFiles = folder =>
            {
                state.Save(folder);
                saveMore?.Invoke(folder);
            },
        });
    }

    /// <summary>Every example must fit the model: ids in the vocabulary, length within max_position_embeddings.</summary>
    private static void ValidateAgainstModel(SftDataset data, ModelConfig config)
    {
        for (int i = 0; i < data.Examples.Count; i++)
        {
            var ids = data.Examples[i].Ids;
            if (ids.Length > config.MaxPositions)
                throw new SparkException($"example {i} has {ids.Length} tokens, more than the model's max_position_embeddings ({config.MaxPositions}); lower --max-length");
            foreach (int id in ids)
                if ((uint)id >= (uint)config.VocabSize)
                    throw new SparkException($"example {i} holds token id {id}, outside the model's vocabulary [0, {config.VocabSize}); is the tokenizer the model's?");
        }
    }

    /// <summary>What a resumed run must share with the saved one: batching, epochs, schedule, seed and the data itself.</summary>
    private static string Fingerprint(SftDataset data, SftOptions o)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var e in data.Examples)
        {
            sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(e.Ids.AsSpan()));
            sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(e.Learned.AsSpan()));
            sha.AppendData(BitConverter.GetBytes(-1));
        }
        string digest = Convert.ToHexString(sha.GetHashAndReset())[..16].ToLowerInvariant();
        return $"examples={data.Examples.Count} data={digest} batch={o.BatchSize} accum={o.GradientAccumulation} epochs={o.Epochs} " +
               $"schedule={o.Schedule} warmup={o.WarmupSteps} seed={o.Seed}";
    }

    /// <summary>Drops metric lines of steps after <paramref name="step"/> (left by a run that went past its checkpoint).</summary>
    internal static void TrimMetrics(string path, long step)
    {
        if (!File.Exists(path)) return;
        var keep = File.ReadAllLines(path).Where(line =>
        {
            try { return JsonDocument.Parse(line).RootElement.GetProperty("step").GetInt64() <= step; }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException) { return false; }
        }).ToArray();
        File.WriteAllLines(path, keep);
    }

    /// <summary>The example order of an epoch: a Fisher–Yates shuffle driven by the counter RNG of (seed, epoch).</summary>
    internal static int[] Shuffle(int count, ulong seed, int epoch)
    {
        var order = Enumerable.Range(0, count).ToArray();
        ulong stream = CounterRng.Next(seed, (ulong)epoch);
        for (int i = count - 1; i > 0; i--)
        {
            int j = (int)(CounterRng.Next(stream, (ulong)i) % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }
}
