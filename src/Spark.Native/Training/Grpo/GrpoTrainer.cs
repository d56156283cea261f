using System.Diagnostics;
using System.Text.Json;
using Spark.Native.Backends;
using Spark.Native.Generation;
using Spark.Native.Models;

namespace Spark.Native.Training.Grpo;

/// <summary>Settings of a GRPO run (the loss variant lives in <see cref="Loss"/>).</summary>
public sealed record GrpoOptions
{
    /// <summary>Loss variant, β, clipping, aggregation (presets: <see cref="GrpoLoss.Grpo"/>, Dapo, DrGrpo, Bnpo, Gspo).</summary>
    public GrpoLoss Loss { get; init; } = GrpoLoss.Grpo(128) with { Beta = 0 };
    /// <summary>Prompts per rollout batch.</summary>
    public int PromptsPerStep { get; init; } = 8;
    /// <summary>Completions per prompt (G).</summary>
    public int GroupSize { get; init; } = 8;
    /// <summary>Sampling temperature; log-probs are taken at the same temperature.</summary>
    public float Temperature { get; init; } = 1f;
    /// <summary>Top-k (0: off).</summary>
    public int TopK { get; init; }
    /// <summary>Top-p (1: off).</summary>
    public float TopP { get; init; } = 1f;
    /// <summary>Strings that end a completion (besides the model's EOS ids).</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];
    /// <summary>Optimizer steps per rollout batch (mini-batches); above 1 the old log-probs are the sampling-time ones.</summary>
    public int MiniBatches { get; init; } = 1;
    /// <summary>
    /// Micro-batches per mini-batch: each mini-batch's forward/backward runs in this many parts whose gradients add up
    /// before its one optimizer step (the same update, less activation memory).
    /// </summary>
    public int GradientAccumulation { get; init; } = 1;
    /// <summary>Rollout batches (steps) of the run.</summary>
    public int Steps { get; init; } = 100;
    /// <summary>AdamW settings.</summary>
    public OptimizerSettings Optimizer { get; init; } = new() { LearningRate = 1e-6, MaxGradNorm = 1.0 };
    /// <summary>Concurrent sequences of the rollout engine.</summary>
    public int Slots { get; init; } = 64;
    /// <summary>Seed of prompt order and sampling.</summary>
    public ulong Seed { get; init; }
    /// <summary>How BF16 weights are updated (CUDA).</summary>
    public MasterWeights MasterWeights { get; init; } = MasterWeights.Fp32;
    /// <summary>Rollout batches drawn at most per step when dynamic sampling drops uninformative groups.</summary>
    public int MaxSamplingAttempts { get; init; } = 4;
    /// <summary>Learning-rate shape after warm-up (per optimizer step).</summary>
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Constant;
    /// <summary>Linear warm-up, in optimizer steps.</summary>
    public int WarmupSteps { get; init; }
    /// <summary>Save a checkpoint (Hugging Face weights + training state) every this many steps; 0: only the final one.</summary>
    public int SaveEvery { get; init; }
    /// <summary>Log one prompt's completions to samples.jsonl every this many steps; 0: never.</summary>
    public int SampleEvery { get; init; } = 10;
    /// <summary>Run the evaluation callback every this many steps (and after the last); 0: never.</summary>
    public int EvalEvery { get; init; }
    /// <summary>Stop after this many steps of this call (null: run to the end); for interrupting a run.</summary>
    public long? StopAfterSteps { get; init; }

    internal void Validate()
    {
        Loss.Validate();
        if (PromptsPerStep < 1) throw new SparkException($"prompts per step is {PromptsPerStep}; expected ≥ 1");
        if (GroupSize < 2) throw new SparkException($"group size is {GroupSize}; GRPO compares completions within a group, expected ≥ 2");
        if (!(Temperature > 0)) throw new SparkException($"temperature is {Temperature}; GRPO samples, expected > 0");
        if (MiniBatches < 1 || MiniBatches > PromptsPerStep * GroupSize)
            throw new SparkException($"mini-batches is {MiniBatches}; expected 1 … {PromptsPerStep * GroupSize} (the completions per step)");
        if (GradientAccumulation < 1 || GradientAccumulation > (PromptsPerStep * GroupSize + MiniBatches - 1) / MiniBatches)
            throw new SparkException($"gradient accumulation is {GradientAccumulation}; expected 1 … {(PromptsPerStep * GroupSize + MiniBatches - 1) / MiniBatches} (the completions per mini-batch)");
        if (Steps < 1) throw new SparkException($"steps is {Steps}; expected ≥ 1");
        if (MaxSamplingAttempts < 1) throw new SparkException($"max sampling attempts is {MaxSamplingAttempts}; expected ≥ 1");
        if (WarmupSteps < 0 || SaveEvery < 0 || SampleEvery < 0 || EvalEvery < 0)
            throw new SparkException("warm-up steps, save-every, sample-every and eval-every must be ≥ 0");
        Optimizer.Validate();
    }
}

/// <summary>One GRPO step as reported to the console and the metrics file.</summary>
/// <param name="Step">Rollout batches done (1-based).</param>
/// <param name="TotalSteps">Steps of the run.</param>
/// <param name="Reward">Mean verifier reward of the step's completions (before dynamic sampling).</param>
/// <param name="Accuracy">Fraction of completions with reward 1.</param>
/// <param name="Loss">Mean GRPO loss over the mini-batches.</param>
/// <param name="Kl">Mean k3 KL to the reference model (null without one).</param>
/// <param name="ClipFraction">Fraction of completion tokens whose ratio was clipped (low + high).</param>
/// <param name="Entropy">Mean next-token entropy over completion tokens (at the sampling temperature).</param>
/// <param name="MeanLength">Mean completion length in tokens.</param>
/// <param name="KeptGroups">Groups trained on (only dynamic sampling drops the all-equal ones).</param>
/// <param name="RolloutTokensPerSecond">Generated tokens per second of sampling.</param>
/// <param name="TrainTokensPerSecond">Tokens per second of the forward/backward passes.</param>
/// <param name="RolloutSeconds">Time spent sampling.</param>
/// <param name="TrainSeconds">Time spent in forward/backward and the optimizer.</param>
/// <param name="EtaSeconds">Estimated seconds to the end of the run.</param>
/// <param name="GradNorm">Mean global gradient norm (before clipping) over the step's optimizer steps.</param>
public sealed record GrpoProgress(long Step, long TotalSteps, double Reward, double Accuracy, double Loss, double? Kl, double ClipFraction,
    double Entropy, double MeanLength, int KeptGroups, double RolloutTokensPerSecond, double TrainTokensPerSecond, double RolloutSeconds,
    double TrainSeconds, double EtaSeconds, double GradNorm = 0);

/// <summary>A prompt to train on: its token ids and whatever the reward function needs to score a completion.</summary>
public sealed record GrpoPrompt(IReadOnlyList<int> Ids, object? Problem = null);

/// <summary>
/// GRPO (Shao et al. 2024, arXiv 2402.03300) and its variants (see <see cref="GrpoLoss"/>) in one process: sample G
/// completions per prompt from the live weights (<see cref="RolloutEngine"/>), score them, compute group advantages,
/// then one or more AdamW steps on the clipped-surrogate loss with log-probs from the fused log-prob gather at the
/// sampling temperature (no [tokens × vocab] logits). Writes <c>metrics.jsonl</c> (one line per step, evaluation
/// results added to the steps that ran one), <c>samples.jsonl</c>, and checkpoints <c>checkpoint-N/</c> and
/// <c>final/</c> (Hugging Face weights with the training state beside them) into the output folder.
/// </summary>
public static class GrpoTrainer
{
    /// <summary>Name of the folder of the final checkpoint inside the output folder.</summary>
    public const string FinalCheckpoint = "final";

    /// <summary>
    /// Trains <paramref name="model"/> in place on a fixed list of prompts (a fresh shuffle per pass).
    /// <paramref name="reward"/> scores a completion (its text and tokens in the <see cref="RolloutSample"/>) for the
    /// prompt it came from, in [0, 1] for verifiers; a reward ≥ 1 counts as correct. A frozen
    /// <paramref name="reference"/> model is needed when β ≠ 0 and not allocated otherwise.
    /// </summary>
    public static GrpoProgress? Train(SparkModel model, IReadOnlyList<GrpoPrompt> prompts, Func<GrpoPrompt, RolloutSample, double> reward,
        GrpoOptions options, string outputDirectory, Text.Tokenizer? tokenizer = null, SparkModel? reference = null,
        Action<GrpoProgress>? onStep = null, string? sourceDirectory = null, string? resumeState = null,
        Func<SparkModel, IReadOnlyDictionary<string, double>>? evaluate = null)
    {
        if (prompts.Count == 0) throw new SparkException("GRPO needs at least one prompt");
        return Train(model, ShuffledPrompts.WithReward(prompts, reward, options.Seed), options, outputDirectory, tokenizer, reference,
            new GrpoHooks { OnStep = onStep, Evaluate = evaluate }, sourceDirectory, resumeState);
    }

    /// <summary>
    /// Trains <paramref name="model"/> in place on the prompts of <paramref name="source"/>, each completion scored by
    /// it. A frozen <paramref name="reference"/> model is needed when β ≠ 0 and not allocated otherwise.
    /// <paramref name="resumeState"/> is a checkpoint folder of an earlier run of the same settings.
    /// </summary>
    public static GrpoProgress? Train(SparkModel model, IPromptSource source, GrpoOptions options, string outputDirectory,
        Text.Tokenizer? tokenizer = null, SparkModel? reference = null, GrpoHooks? hooks = null, string? sourceDirectory = null,
        string? resumeState = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(source);
        options.Validate();
        hooks ??= new GrpoHooks();
        if (options.Loss.NeedsReferenceModel && reference is null)
            throw new SparkException($"beta is {options.Loss.Beta}: the KL term needs a frozen reference model (or set beta to 0)");
        var backend = model.Backend;
        TrainingSupport.Require(backend);
        if (!backend.Supports(OpKind.LogProbGather) || !backend.Supports(OpKind.LogProbGatherBackward))
            throw new SparkException($"GRPO on the {backend.Name} backend needs the fused log-prob gather, which it does not implement");
        var layout = model.Parameters.Layout;
        bool master = model.Parameters.Buffer.DType != DType.F32 && options.MasterWeights == MasterWeights.Fp32;
        using var state = resumeState is null
            ? new TrainingState(backend, layout, options.Optimizer, master ? model.Parameters : null)
            : TrainingState.Load(resumeState, backend, layout, needsMaster: master);
        string fingerprint = $"grpo source={source.Fingerprint} per-step={options.PromptsPerStep} G={options.GroupSize} seed={options.Seed} " +
            $"steps={options.Steps} mini-batches={options.MiniBatches} accumulation={options.GradientAccumulation} loss={options.Loss}";
        if (resumeState is null) state.RunFingerprint = fingerprint;
        else if (state.RunFingerprint != fingerprint)
            throw new SparkException($"{resumeState}: the saved run was started with other prompts or batching ({state.RunFingerprint ?? "unknown"}); this run has {fingerprint}");
        state.Settings = options.Optimizer;
        long optimizerSteps = (long)options.Steps * options.MiniBatches;
        var schedule = new LearningRateSchedule(options.Schedule, options.Optimizer.LearningRate, options.WarmupSteps,
            (int)Math.Min(int.MaxValue, Math.Max(optimizerSteps, options.WarmupSteps)));
        using var gradients = new ParameterArena(backend, layout);
        int maxLength = options.Loss.MaxCompletionLength;
        int perMiniBatch = (options.PromptsPerStep * options.GroupSize + options.MiniBatches - 1) / options.MiniBatches;
        int perMicroBatch = (perMiniBatch + options.GradientAccumulation - 1) / options.GradientAccumulation;
        // the training graphs are sized for the largest micro-batch seen so far (prompt lengths are only known as they are drawn)
        TrainingGraph? graph = null, referenceGraph = null;
        var engine = new RolloutEngine(model, new RolloutOptions { Slots = options.Slots, Seed = options.Seed }, tokenizer);

        Directory.CreateDirectory(outputDirectory);
        string metricsPath = Path.Combine(outputDirectory, RunReport.MetricsFile);
        if (resumeState is null) File.WriteAllText(metricsPath, "");
        else SftTrainer.TrimMetrics(metricsPath, state.Step); // a resumed run rewrites the steps after its checkpoint
        string samplesPath = Path.Combine(outputDirectory, RunReport.SamplesFile);
        if (resumeState is null) File.WriteAllText(samplesPath, "");
        else SftTrainer.TrimMetrics(samplesPath, state.Step);
        source.Position = state.SamplePosition; // where the source stood at the checkpoint (0 for a new run)
        var checkpointed = source as ICheckpointedPromptSource;
        if (resumeState is not null) checkpointed?.LoadState(resumeState);
        try
        {
            var clock = Stopwatch.StartNew();
            long stepsThisCall = 0;
            GrpoProgress? last = null;
            for (long step = state.Step; step < options.Steps && (options.StopAfterSteps is not { } stop || stepsThisCall < stop); step++)
            {
                // ---- rollouts (dynamic sampling draws more batches until enough informative groups, bounded)
                var rolloutClock = Stopwatch.StartNew();
                var fill = new DynamicSampling(options.PromptsPerStep, options.GroupSize, options.Loss.DynamicSampling ? options.MaxSamplingAttempts : 1);
                var groups = new List<(GrpoPrompt Prompt, RolloutSample[] Samples, double[] Rewards)>();
                var scoredBatches = new List<ScoredGroup>();
                long generated = 0;
                double rewardSum = 0, correct = 0, lengthSum = 0;
                int scored = 0;
                while (!fill.IsDone)
                {
                    var batch = new GrpoPrompt[options.PromptsPerStep];
                    for (int i = 0; i < batch.Length; i++) batch[i] = source.Next();
                    var requests = batch.Select((p, i) => new RolloutRequest
                    {
                        Prompt = p.Ids, Samples = options.GroupSize, Temperature = options.Temperature, TopK = options.TopK, TopP = options.TopP,
                        MaxCompletionTokens = maxLength, StopStrings = options.StopStrings,
                        Seed = Mix(options.Seed, (ulong)step, (ulong)fill.Attempts, (ulong)i),
                    }).ToArray();
                    var result = engine.Run(requests);
                    generated += result.Stats.GeneratedTokens;
                    var rewards = new double[result.Samples.Count];
                    var scores = new RewardScore[result.Samples.Count];
                    for (int i = 0; i < rewards.Length; i++)
                    {
                        var sample = result.Samples[i];
                        scores[i] = source.Score(batch[sample.RequestIndex], sample);
                        double r = scores[i].Reward;
                        if (!double.IsFinite(r)) throw new SparkException($"step {step + 1}: the reward of prompt {sample.RequestIndex}, sample {sample.SampleIndex} is {r}");
                        rewardSum += r;
                        correct += scores[i].Correct ? 1 : 0;
                        lengthSum += sample.Tokens.Count;
                        scored++;
                        if (options.Loss.OverlongCacheLength > 0)
                            r += RolloutShaping.OverlongPenalty(sample.Tokens.Count, maxLength, options.Loss.OverlongCacheLength);
                        rewards[i] = r;
                    }
                    // the engine returns samples grouped by request, G per prompt
                    var groupSamples = result.Samples.Chunk(options.GroupSize).ToArray();
                    for (int g = 0; g < batch.Length; g++)
                        scoredBatches.Add(new ScoredGroup(batch[g], groupSamples[g], scores.AsSpan(g * options.GroupSize, options.GroupSize).ToArray()));
                    // without dynamic sampling every group is trained on: an all-equal group has advantage 0 but still counts in the
                    // loss normaliser (B rows, or its tokens) and still carries the β·KL term, as in TRL
                    int[] keep = fill.Add(rewards);
                    if (!options.Loss.DynamicSampling) keep = Enumerable.Range(0, batch.Length).ToArray();
                    foreach (int g in keep)
                        groups.Add((batch[g], groupSamples[g], rewards.AsSpan(g * options.GroupSize, options.GroupSize).ToArray()));
                }
                double rolloutSeconds = rolloutClock.Elapsed.TotalSeconds;
                hooks.OnRollouts?.Invoke(step + 1, scoredBatches);

                // ---- policy update: one or more mini-batches, each an optimizer step
                var trainClock = Stopwatch.StartNew();
                var advantages = GrpoMath.Advantages(groups.SelectMany(g => g.Rewards).ToArray(), options.GroupSize, options.Loss.RewardScaling, options.Loss.AdvantageEpsilon);
                var rows = groups.SelectMany(g => g.Samples.Select(s => (g.Prompt, Sample: s))).ToArray();
                double tokenNormalizer = rows.Sum(r => (double)CompletionMask(r.Sample, options.Loss).Count(m => m > 0));
                double lossSum = 0, klSum = 0, clipSum = 0, entropySum = 0, entropyTokens = 0;
                long trainTokens = 0;
                // no counted completion token at all (every one truncated and masked): no update this step
                int miniBatches = rows.Length == 0 || tokenNormalizer == 0 ? 0 : Math.Min(options.MiniBatches, rows.Length);
                bool haveKl = false;
                int trained = 0; // mini-batches that took a loss (a fully masked one is skipped)
                double gradNormSum = 0;
                for (int mb = 0; mb < miniBatches; mb++)
                {
                    int from = rows.Length * mb / miniBatches, to = rows.Length * (mb + 1) / miniBatches;
                    // every part of this mini-batch is normalised as the whole mini-batch (dapo: the whole rollout batch), so the
                    // accumulated gradient is the mini-batch's gradient
                    double miniTokens = rows[from..to].Sum(r => (double)CompletionMask(r.Sample, options.Loss).Count(m => m > 0));
                    if (miniTokens == 0) continue; // every completion here is masked (truncated): nothing to learn from
                    double? tokenScope = options.Loss.LossType == LossType.Dapo ? tokenNormalizer : miniTokens;
                    int micros = Math.Min(options.GradientAccumulation, to - from);
                    double miniLoss = 0, miniClip = 0, miniKl = 0;
                    backend.Fill(gradients.Buffer, 0f);
                    for (int mc = 0; mc < micros; mc++)
                    {
                        int a = from + (to - from) * mc / micros, b = from + (to - from) * (mc + 1) / micros;
                        var part = rows[a..b];
                        var batch = Pack(part.Select(r => (r.Prompt.Ids, r.Sample.Tokens)).ToArray());
                        trainTokens += batch.Tokens.Length;
                        if (graph is null || graph.Capacity < batch.Tokens.Length)
                        {
                            int capacity = Math.Max(batch.Tokens.Length, perMicroBatch * (part.Max(r => r.Prompt.Ids.Count) + maxLength));
                            // null between dispose and create, so a failed allocation is not disposed twice by the finally below
                            graph?.Dispose();
                            graph = null;
                            graph = new TrainingGraph(model.Transformer, capacity, head: TrainingHead.LogProbs);
                            if (reference is not null)
                            {
                                referenceGraph?.Dispose();
                                referenceGraph = null;
                                referenceGraph = new TrainingGraph(reference.Transformer, capacity, head: TrainingHead.LogProbs);
                            }
                        }
                        var (logProbs, entropies) = graph.ForwardLogProbs(batch.Tokens, batch.Targets, batch.Segments, options.Temperature);
                        int width = Math.Max(1, part.Max(r => r.Sample.Tokens.Count));
                        var logp = Gather(logProbs, batch, width);
                        var mask = new double[part.Length * width];
                        for (int i = 0; i < part.Length; i++)
                        {
                            var m = CompletionMask(part[i].Sample, options.Loss);
                            for (int t = 0; t < m.Length; t++) mask[i * width + t] = m[t];
                            foreach (int row in batch.CompletionRows(i)) { entropySum += entropies[row]; entropyTokens++; }
                        }
                        double microTokens = mask.Sum();
                        if (microTokens == 0) continue; // this part is fully masked; it adds nothing to the loss or the gradient
                        // π_old: the sampling-time log-probs when this batch takes several optimizer steps, else π_θ itself
                        double[] oldLogp = options.MiniBatches > 1 ? GatherSampled(part.Select(r => r.Sample).ToArray(), width) : [];
                        double[] refLogp = [];
                        if (referenceGraph is not null) refLogp = Gather(referenceGraph.ForwardLogProbs(batch.Tokens, batch.Targets, batch.Segments, options.Temperature).LogProbs, batch, width);
                        var loss = GrpoMath.Loss(options.Loss, advantages.AsSpan(a, b - a), logp, oldLogp, refLogp, mask, tokenScope, rowNormalizer: to - from);
                        // (dapo with several mini-batches: each is normalised by the whole rollout batch's tokens, so the reported
                    // mean over mini-batches is 1/M of the per-token loss, as TRL logs it)
                    miniLoss += loss.Loss;
                        // clip fractions and KL are per counted token: weight each part by its share of the mini-batch's tokens
                        miniClip += (loss.ClipLowFraction + loss.ClipHighFraction) * microTokens / miniTokens;
                        if (loss.KlMean is { } kl) { miniKl += kl * microTokens / miniTokens; haveKl = true; }

                        var rowGrad = new float[batch.Tokens.Length];
                        for (int i = 0; i < part.Length; i++)
                        {
                            int t = 0;
                            foreach (int row in batch.CompletionRows(i)) rowGrad[row] = (float)loss.GradLogp[i * width + t++];
                        }
                        graph.BackwardFromLogProbs(rowGrad, [], gradients); // accumulates into the mini-batch's gradient
                    }
                    lossSum += miniLoss;
                    clipSum += miniClip;
                    klSum += miniKl;
                    trained++;
                    gradNormSum += OptimizerStep(model, state, gradients, options, schedule.At(state.OptimizerStep), step);
                }
                double trainSeconds = trainClock.Elapsed.TotalSeconds;
                state.Step = step + 1;
                state.SamplePosition = source.Position;
                stepsThisCall++;

                if (options.SampleEvery > 0 && (step + 1) % options.SampleEvery == 0 && groups.Count > 0)
                    LogSamples(samplesPath, step + 1, groups[0].Samples, groups[0].Rewards);
                bool done = step + 1 == options.Steps;
                bool stopping = options.StopAfterSteps is { } limit && stepsThisCall >= limit;
                var evaluation = hooks.Evaluate is { } evaluate && options.EvalEvery > 0 && ((step + 1) % options.EvalEvery == 0 || done) ? evaluate(model) : null;

                double elapsed = clock.Elapsed.TotalSeconds;
                last = new GrpoProgress(step + 1, options.Steps, rewardSum / Math.Max(1, scored), correct / Math.Max(1, scored),
                    trained == 0 ? 0 : lossSum / trained, haveKl ? klSum / trained : null, trained == 0 ? 0 : clipSum / trained,
                    entropyTokens == 0 ? 0 : entropySum / entropyTokens, lengthSum / Math.Max(1, scored), groups.Count,
                    generated / Math.Max(1e-9, rolloutSeconds), trainTokens / Math.Max(1e-9, trainSeconds), rolloutSeconds, trainSeconds,
                    elapsed / stepsThisCall * (options.Steps - step - 1), trained == 0 ? 0 : gradNormSum / trained);
                var line = JsonSerializer.SerializeToNode(last, MetricsJson)!.AsObject();
                line["learning_rate"] = schedule.At(Math.Max(0, state.OptimizerStep - 1));
                if (evaluation is not null)
                    foreach (var (name, value) in evaluation) line["eval_" + name] = value;
                if (hooks.StepMetrics is { } extra)
                    foreach (var (name, value) in extra()) line[name] = value;
                File.AppendAllText(metricsPath, line.ToJsonString() + "\n");
                hooks.OnStep?.Invoke(last);
                if (done || stopping || (options.SaveEvery > 0 && state.Step % options.SaveEvery == 0))
                    SftTrainer.SaveCheckpoint(model, state, Path.Combine(outputDirectory, done ? FinalCheckpoint : $"checkpoint-{state.Step}"), sourceDirectory,
                        checkpointed is null ? null : checkpointed.SaveState);
            }
            return last;
        }
        finally
        {
            graph?.Dispose();
            referenceGraph?.Dispose();
        }
    }

    /// <summary>One group's completions with their rewards, as a samples.jsonl line per completion.</summary>
    private static void LogSamples(string path, long step, IReadOnlyList<RolloutSample> samples, IReadOnlyList<double> rewards)
    {
        var lines = samples.Select((s, i) => new System.Text.Json.Nodes.JsonObject
        {
            ["step"] = step, ["sample"] = i, ["reward"] = rewards[i], ["length"] = s.Tokens.Count, ["finish"] = s.FinishReason.ToString(),
            ["completion"] = s.Text ?? string.Join(' ', s.Tokens),
        }.ToJsonString());
        File.AppendAllLines(path, lines);
    }

    private static readonly JsonSerializerOptions MetricsJson = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Global-norm clipping, then AdamW on every parameter (decay per <see cref="WeightDecayPolicy"/>).</summary>
    private static double OptimizerStep(SparkModel model, TrainingState state, ParameterArena gradients, GrpoOptions options, double learningRate, long step)
    {
        var backend = model.Backend;
        double normSquared = backend.SumOfSquares(gradients.Buffer);
        if (!double.IsFinite(normSquared))
            throw new SparkException($"step {step + 1}: the gradient norm is not finite ({Math.Sqrt(normSquared)}); lower the learning rate or check the rewards");
        float clip = (float)GradientClipping.Scale(normSquared, options.Optimizer.MaxGradNorm);
        var o = options.Optimizer;
        foreach (var entry in state.Layout.Entries)
        {
            float decay = WeightDecayPolicy.AppliesTo(entry.Name) ? (float)o.WeightDecay : 0f;
            backend.AdamW(model.Parameters[entry.Name], state.Master?[entry.Name], gradients[entry.Name], state.FirstMoment[entry.Name],
                state.SecondMoment[entry.Name], new AdamWStep((float)learningRate, (float)o.Beta1, (float)o.Beta2, (float)o.Epsilon, decay,
                    checked((int)(state.OptimizerStep + 1)), clip, Seed: SftTrainer.StochasticSeed(options.Seed, entry.Name)));
        }
        state.OptimizerStep++;
        return Math.Sqrt(normSquared);
    }

    /// <summary>1 for each completion token that counts; all 0 for a truncated completion when the loss masks those.</summary>
    private static double[] CompletionMask(RolloutSample sample, GrpoLoss loss)
    {
        var mask = new double[sample.Tokens.Count];
        if (!(loss.MaskTruncatedCompletions && sample.Truncated)) Array.Fill(mask, 1.0);
        return mask;
    }

    /// <summary>Prompt + completion sequences packed as segments; targets are the completion tokens (−1 elsewhere).</summary>
    private sealed record Packed(int[] Tokens, int[] Targets, Segment[] Segments, int[] CompletionStart, int[] CompletionLength)
    {
        /// <summary>Rows whose target is completion token 0, 1, … of sequence i (the row before each token).</summary>
        public IEnumerable<int> CompletionRows(int i) => Enumerable.Range(CompletionStart[i], CompletionLength[i]);
    }

    private static Packed Pack(IReadOnlyList<(IReadOnlyList<int> Prompt, IReadOnlyList<int> Completion)> sequences)
    {
        int total = sequences.Sum(s => s.Prompt.Count + s.Completion.Count);
        var tokens = new int[total];
        var targets = new int[total];
        Array.Fill(targets, -1);
        var segments = new Segment[sequences.Count];
        var start = new int[sequences.Count];
        var length = new int[sequences.Count];
        int row = 0;
        for (int i = 0; i < sequences.Count; i++)
        {
            var (prompt, completion) = sequences[i];
            segments[i] = new Segment(0, 0, prompt.Count + completion.Count);
            for (int t = 0; t < prompt.Count; t++) tokens[row + t] = prompt[t];
            for (int t = 0; t < completion.Count; t++)
            {
                tokens[row + prompt.Count + t] = completion[t];
                targets[row + prompt.Count - 1 + t] = completion[t]; // the row before a token predicts it
            }
            (start[i], length[i]) = (row + prompt.Count - 1, completion.Count);
            row += prompt.Count + completion.Count;
        }
        return new Packed(tokens, targets, segments, start, length);
    }

    /// <summary>Per-row log-probs into [B, width] (padding 0).</summary>
    private static double[] Gather(float[] rowValues, Packed batch, int width)
    {
        var result = new double[batch.Segments.Length * width];
        for (int i = 0; i < batch.Segments.Length; i++)
        {
            int t = 0;
            foreach (int row in batch.CompletionRows(i)) result[i * width + t++] = rowValues[row];
        }
        return result;
    }

    private static double[] GatherSampled(IReadOnlyList<RolloutSample> samples, int width)
    {
        var result = new double[samples.Count * width];
        for (int i = 0; i < samples.Count; i++)
            for (int t = 0; t < samples[i].LogProbs.Length; t++) result[i * width + t] = samples[i].LogProbs[t];
        return result;
    }

    private static ulong Mix(ulong a, ulong b, ulong c, ulong d)
    {
        ulong h = a * 0x9E3779B97F4A7C15UL;
        foreach (ulong x in (ulong[])[b, c, d]) h = (h ^ x) * 0xBF58476D1CE4E5B9UL + 0x94D049BB133111EBUL;
        return h ^ (h >> 31);
    }
}
