using System.Diagnostics;
using Spark.Native.Backends;
using Spark.Native.Backends.Cuda;
using Spark.Native.Interop;
using Spark.Native.Tensors;

namespace Spark.Native.Benchmarks;

// Dimension legend: T rows (tokens), H hidden, V vocabulary, B sequences, S sequence length, NH query heads,
// NKV key/value heads, HD head dim, C token chunk. Activations bf16, statistics fp32, references float64.

/// <summary>
/// One numbered version of a lab kernel: its source under <c>kernels/lab/</c> (null for the engine's op, called through
/// the backend) and what it tries. The comment header of each source says what changed from the version before and why.
/// </summary>
public sealed record LabVersion(string Family, int Number, string Name, string? Source, string Summary);

/// <summary>Settings of <c>spark bench lab</c>.</summary>
public sealed record LabSettings(IReadOnlyList<string> Families, int Reps = 20, int Warmup = 2, double CaseSeconds = 1.0,
    string? JsonPath = null, string? Commit = null);

/// <summary>
/// One version's result. Status: ok (validated, then timed), invalid (the normalized error of an output was over the
/// tolerance or NaN: not timed), error (it threw: not built yet, a launch failure). <c>Nmse</c> = Σ(out − ref)² / Σ ref²
/// per output against the float64 reference on the validation shape.
/// </summary>
public sealed record LabEntry(string Family, int Version, string Name, string? Source, string ValidationShape, string TimingShape,
    string Status, IReadOnlyDictionary<string, double>? Nmse, double Tolerance, double? MedianMs, double? MinMs, int Runs,
    double Flops, double Bytes, double? Tflops, double? Gbps, double? SpeedupOverV1, long? ScratchBytes, string? Error);

/// <summary>The JSON of <c>spark bench lab</c>.</summary>
public sealed record LabReport(string Suite, GpuMachine Machine, string Commit, DateTime TimestampUtc,
    IReadOnlyDictionary<string, object> Settings, IReadOnlyList<LabEntry> Entries);

/// <summary>
/// The kernel lab (llm.c's dev/cuda, apart from the engine): numbered versions of the hard kernels, each run on the same
/// inputs, validated against a float64 reference computed on the host from the exact bf16 inputs, and only then timed
/// at a real shape with <see cref="GpuTimer"/>. Lab sources are embedded with the engine's kernels (so
/// <c>spark kernels compile</c> and the NVRTC tests compile them too) but only this runner loads them.
/// </summary>
public static class KernelLab
{
    /// <summary>The lab's kernel families, in run order.</summary>
    public static IReadOnlyList<string> Families { get; } = ["rmsnorm", "attention", "logprob"];

    /// <summary>Every version of every family, v1 first; the sources are embedded under <c>kernels/lab/</c>.</summary>
    public static IReadOnlyList<LabVersion> Versions { get; } =
    [
        new("rmsnorm", 1, "thread per row", "lab/rmsnorm/v1_thread_per_row.cu", "one thread walks a row: uncoalesced"),
        new("rmsnorm", 2, "block per row", "lab/rmsnorm/v2_block_per_row.cu", "256 threads per row, shared-memory reduction"),
        new("rmsnorm", 3, "warp per row, 16-byte loads", "lab/rmsnorm/v3_warp_per_row_vec16.cu", "shuffle-only reduction, uint4 loads"),
        new("rmsnorm", 4, "v3 + fused residual add", "lab/rmsnorm/v4_fused_residual.cu", "residual += delta and the norm in one pass"),
        new("attention", 1, "naive, scores in global", "lab/attention/v1_naive_global.cu", "S = QKᵀ to HBM, softmax, PV: three kernels"),
        new("attention", 2, "block per row, online softmax", "lab/attention/v2_row_online_softmax.cu", "no score matrix; 4 warps merge running states"),
        new("attention", 3, "tiled shared memory, fp32", "lab/attention/v3_tiled_shared.cu", "16 query rows share each 32-key K/V tile"),
        new("attention", 4, "engine (backend Attention)", null, "the engine's kernel through IBackend.Attention"),
        new("logprob", 1, "materialise logits + log-softmax", "lab/logprob/v1_materialise.cu", "cuBLASLt logits [T, V], fp32 log-softmax [T, V], gather"),
        new("logprob", 2, "token chunks, online LSE", "lab/logprob/v2_chunked_online.cu", "T/8-row logits chunks, one online pass per row"),
        new("logprob", 3, "engine (backend LogProbGather)", null, "the engine's fused op through IBackend.LogProbGather"),
    ];

    /// <summary>Parses "all" or a comma-separated list of families.</summary>
    public static IReadOnlyList<string> ParseFamilies(string text)
    {
        var families = new List<string>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (part.Equals("all", StringComparison.OrdinalIgnoreCase)) { families.AddRange(Families); continue; }
            string? family = Families.FirstOrDefault(f => f.Equals(part, StringComparison.OrdinalIgnoreCase))
                ?? throw new SparkException($"--family: unknown kernel family '{part}' (expected {string.Join(", ", Families)} or all)");
            families.Add(family);
        }
        if (families.Count == 0) throw new SparkException($"--family: no family in \"{text}\" (expected {string.Join(", ", Families)} or all)");
        return families.Distinct().ToList();
    }

    /// <summary>Runs the lab, logging progress to <paramref name="log"/>; throws <see cref="SparkException"/> without a usable GPU.</summary>
    public static LabReport Run(LabSettings settings, TextWriter log)
    {
        using var backend = BenchJson.OpenBackend();
        var device = backend.Device;
        using var context = new BenchContext(backend, device, new KernelCompiler());
        using var timer = new GpuTimer(device);
        var machine = GpuMachine.Collect(device);
        string commit = BenchJson.Commit(settings.Commit);
        log.WriteLine($"{machine.Gpu} (sm_{device.ComputeCapability}), commit {commit}");
        var settingsJson = new Dictionary<string, object>
        {
            ["families"] = settings.Families.ToArray(),
            ["reps"] = settings.Reps,
            ["warmup"] = settings.Warmup,
            ["case_seconds"] = settings.CaseSeconds,
            ["validation"] = "float64 host reference from the exact bf16 inputs; nmse = Σ(out − ref)² / Σ ref² per output; NaN fails",
            ["timing"] = $"CUDA events, median; {timer.FlushBytes >> 20} MiB written before each run to evict L2",
        };
        var entries = new List<LabEntry>();
        var lab = new Lab(context, timer, settings, entries, log);
        void Save()
        {
            if (settings.JsonPath is { } path) BenchJson.Write(new LabReport("lab", machine, commit, DateTime.UtcNow, settingsJson, entries), path);
        }
        foreach (string family in settings.Families)
        {
            switch (family)
            {
                case "rmsnorm": lab.RmsNorm(); break;
                case "attention": lab.Attention(); break;
                case "logprob": lab.LogProb(); break;
            }
            Save();
        }
        return new LabReport("lab", machine, commit, DateTime.UtcNow, settingsJson, entries);
    }

    /// <summary>The short table printed last: one line per version.</summary>
    public static void PrintTable(LabReport report, TextWriter output)
    {
        output.WriteLine($"{"family",-10} {"version",-40} {"status",-8} {"max nmse",9} {"median",12} {"rate",14} {"vs v1",7}");
        foreach (var e in report.Entries)
        {
            string nmse = e.Nmse is { Count: > 0 } n ? $"{n.Values.Max():E1}" : "-";
            string rate = e.Tflops is { } t && e.Flops > e.Bytes ? $"{t:F1} TFLOP/s" : e.Gbps is { } g ? $"{g:F0} GB/s" : "-";
            output.WriteLine($"{e.Family,-10} {$"v{e.Version} {e.Name}",-40} {e.Status,-8} {nmse,9} {BenchJson.Ms(e.MedianMs),12} {rate,14} " +
                $"{(e.SpeedupOverV1 is { } s ? $"{s:F1}x" : "-"),7}" + (e.Error is null ? "" : $"  {KernelBenchmark.Truncate(e.Error, 70)}"));
        }
    }

    /// <summary>Σ(a − ref)² / Σ ref² (NaN when any value is NaN).</summary>
    public static double Nmse(ReadOnlySpan<float> actual, ReadOnlySpan<double> reference)
    {
        if (actual.Length != reference.Length) throw new ArgumentException($"{actual.Length} values against a reference of {reference.Length}");
        double error = 0, norm = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = actual[i] - reference[i];
            error += d * d;
            norm += reference[i] * reference[i];
        }
        return norm == 0 ? (error == 0 ? 0 : double.PositiveInfinity) : error / norm;
    }

    /// <summary>Rounds to the nearest bf16 (ties to even), as the kernels' float_to_bf16 does.</summary>
    public static float RoundToBf16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7fffffffu) > 0x7f800000u) return f;
        u += 0x7fffu + ((u >> 16) & 1u);
        return BitConverter.UInt32BitsToSingle(u & 0xffff0000u);
    }

    // ---- float64 references (public for the CPU tests of the lab's arithmetic)

    /// <summary>out[t] = x[t] · w / sqrt(mean(x[t]²) + eps). x [T, H], w [H].</summary>
    public static double[] RmsNormReference(ReadOnlySpan<float> x, ReadOnlySpan<float> w, int rows, int hidden, double eps)
    {
        var output = new double[rows * hidden];
        for (int t = 0; t < rows; t++)
        {
            double sum = 0;
            for (int i = 0; i < hidden; i++) sum += (double)x[t * hidden + i] * x[t * hidden + i];
            double s = 1.0 / Math.Sqrt(sum / hidden + eps);
            for (int i = 0; i < hidden; i++) output[t * hidden + i] = x[t * hidden + i] * s * w[i];
        }
        return output;
    }

    /// <summary>Causal GQA attention of B sequences of S rows: q, out [B·S, NH·HD]; k, v [B·S, NKV·HD].</summary>
    public static double[] AttentionReference(float[] q, float[] k, float[] v, int b, int s, int heads, int kvHeads, int headDim)
    {
        var output = new double[(long)b * s * heads * headDim];
        int group = heads / kvHeads;
        double scale = 1.0 / Math.Sqrt(headDim);
        Parallel.For(0, b * heads, bh =>
        {
            int seq = bh / heads, h = bh % heads, g = h / group;
            var scores = new double[s];
            for (int i = 0; i < s; i++)
            {
                long qRow = ((long)(seq * s + i) * heads + h) * headDim;
                double max = double.NegativeInfinity;
                for (int j = 0; j <= i; j++)
                {
                    long kRow = ((long)(seq * s + j) * kvHeads + g) * headDim;
                    double dot = 0;
                    for (int d = 0; d < headDim; d++) dot += (double)q[qRow + d] * k[kRow + d];
                    scores[j] = dot * scale;
                    max = Math.Max(max, scores[j]);
                }
                double sum = 0;
                for (int j = 0; j <= i; j++) { scores[j] = Math.Exp(scores[j] - max); sum += scores[j]; }
                for (int d = 0; d < headDim; d++)
                {
                    double acc = 0;
                    for (int j = 0; j <= i; j++) acc += scores[j] * v[((long)(seq * s + j) * kvHeads + g) * headDim + d];
                    output[qRow + d] = acc / sum;
                }
            }
        });
        return output;
    }

    /// <summary>
    /// z = hidden · weightᵀ: logProbs[t] = z[t, target] − lse(z[t]) (0 for target −1), entropies[t] = lse − Σ p·z.
    /// hidden [T, H], weight [V, H].
    /// </summary>
    public static (double[] LogProbs, double[] Entropies) LogProbReference(float[] hidden, float[] weight, int[] targets, int rows, int width, int vocab)
    {
        var logits = new double[(long)rows * vocab];
        Parallel.For(0, vocab, j =>
        {
            for (int t = 0; t < rows; t++)
            {
                double dot = 0;
                long w = (long)j * width, x = (long)t * width;
                for (int i = 0; i < width; i++) dot += (double)hidden[x + i] * weight[w + i];
                logits[(long)t * vocab + j] = dot;
            }
        });
        var logProbs = new double[rows];
        var entropies = new double[rows];
        for (int t = 0; t < rows; t++)
        {
            var z = logits.AsSpan((int)((long)t * vocab), vocab);
            double max = double.NegativeInfinity;
            foreach (double value in z) max = Math.Max(max, value);
            double sum = 0, weighted = 0;
            foreach (double value in z) { double e = Math.Exp(value - max); sum += e; weighted += e * value; }
            double lse = max + Math.Log(sum);
            logProbs[t] = targets[t] < 0 ? 0 : z[targets[t]] - lse;
            entropies[t] = lse - weighted / sum;
        }
        return (logProbs, entropies);
    }

    /// <summary>The per-family procedures: build inputs, reference, then each version validated and timed.</summary>
    private sealed unsafe class Lab(BenchContext ctx, GpuTimer timer, LabSettings settings, List<LabEntry> entries, TextWriter log)
    {
        private const float Eps = 1e-6f;
        private IBackend Backend => ctx.Backend;

        private float[] Download(Tensor t)
        {
            var values = new float[t.Length];
            Backend.Download(values, t);
            return values;
        }

        /// <summary>
        /// Validates one version on the validation inputs (prepare → run → check), then times it on the timing inputs.
        /// <paramref name="prepare"/> builds the version's region for a set of inputs; <paramref name="check"/> returns the NMSE
        /// of each output after one run on the validation inputs.
        /// </summary>
        private void Try<TInputs>(LabVersion version, TInputs validation, TInputs timing, string validationShape, string timingShape,
            Func<TInputs, PreparedCase> prepare, Func<IReadOnlyDictionary<string, double>> check, double tolerance, double flops, double bytes)
        {
            IReadOnlyDictionary<string, double>? nmse = null;
            string status;
            double[]? ms = null;
            long? scratch = null;
            string? error = null;
            try
            {
                using (var v = prepare(validation))
                {
                    v.Reset?.Invoke();
                    v.Run();
                    ctx.Device.Synchronize();
                }
                nmse = check();
                var bad = nmse.Where(p => double.IsNaN(p.Value) || p.Value > tolerance).ToList();
                if (bad.Count > 0)
                {
                    status = "invalid";
                    error = "over the tolerance: " + string.Join(", ", bad.Select(p => $"{p.Key} nmse {p.Value:E2}"));
                }
                else
                {
                    ctx.Device.Synchronize();
                    long before = ctx.Device.MemoryInfo().Free;
                    using var t = prepare(timing);
                    t.Reset?.Invoke();
                    t.Run();
                    ctx.Device.Synchronize();
                    scratch = t.OwnScratchBytes ?? Math.Max(0, before - ctx.Device.MemoryInfo().Free);
                    ms = timer.Measure(t.Run, t.Reset, Math.Max(0, settings.Warmup - 1), settings.Reps, settings.CaseSeconds);
                    status = "ok";
                }
            }
            catch (Exception e)
            {
                status = "error";
                error = $"{e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}";
            }
            double? median = ms is null ? null : GpuTimer.Median(ms);
            double? v1 = entries.FirstOrDefault(e => e.Family == version.Family && e.Version == 1)?.MedianMs;
            var entry = new LabEntry(version.Family, version.Number, version.Name, version.Source, validationShape, timingShape, status, nmse,
                tolerance, median, ms?[0], ms?.Length ?? 0, flops, bytes,
                median is > 0 ? flops / (median.Value * 1e-3) / 1e12 : null, median is > 0 ? bytes / (median.Value * 1e-3) / 1e9 : null,
                median is > 0 && v1 is > 0 ? v1 / median : null, scratch, error);
            entries.Add(entry);
            log.WriteLine($"  {version.Family} v{version.Number} {version.Name,-36} {status,-8} {BenchJson.Ms(median),12}" +
                (error is null ? "" : $"  {KernelBenchmark.Truncate(error, 90)}"));
        }

        private LabVersion Version(string family, int number) => Versions.Single(v => v.Family == family && v.Number == number);

        // ---- RMSNorm: out = x · rsqrt(mean(x²) + eps) ⊙ w; v4 adds residual += delta first

        private sealed class NormInputs(int rows, int hidden, Tensor x, Tensor w, Tensor delta, Tensor residual, Tensor output) : IDisposable
        {
            public int Rows => rows;
            public int Hidden => hidden;
            public Tensor X => x;
            public Tensor W => w;
            public Tensor Delta => delta;
            public Tensor Residual => residual;
            public Tensor Output => output;
            public void Dispose() { x.Dispose(); w.Dispose(); delta.Dispose(); residual.Dispose(); output.Dispose(); }
        }

        private NormInputs NormSet(int rows, int hidden) => new(rows, hidden, ctx.Random(DType.BF16, -2f, 2f, rows, hidden),
            ctx.Random(DType.BF16, 0.5f, 1.5f, hidden), ctx.Random(DType.BF16, -0.5f, 0.5f, rows, hidden),
            ctx.Zeros(DType.BF16, rows, hidden), ctx.Zeros(DType.BF16, rows, hidden));

        public void RmsNorm()
        {
            log.WriteLine("rmsnorm");
            using var small = NormSet(64, 3584);
            using var big = NormSet(16384, 3584);
            float[] x = Download(small.X), w = Download(small.W), delta = Download(small.Delta);
            double[] plain = RmsNormReference(x, w, small.Rows, small.Hidden, Eps);
            var summed = new float[x.Length];
            for (int i = 0; i < x.Length; i++) summed[i] = RoundToBf16(x[i] + delta[i]);
            double[] fused = RmsNormReference(summed, w, small.Rows, small.Hidden, Eps);
            var summedReference = Array.ConvertAll(summed, f => (double)f);

            foreach (var version in Versions.Where(v => v.Family == "rmsnorm"))
            {
                bool isFused = version.Number == 4;
                double bytes = 2.0 * big.Rows * big.Hidden * (isFused ? 4 : 2) + 2.0 * big.Hidden;
                Try(version, small, big, $"T{small.Rows}xH{small.Hidden}", $"T{big.Rows}xH{big.Hidden}", inputs => PrepareNorm(version, inputs),
                    () => isFused
                        ? new Dictionary<string, double> { ["out"] = Nmse(Download(small.Output), fused), ["residual"] = Nmse(Download(small.Residual), summedReference) }
                        : new Dictionary<string, double> { ["out"] = Nmse(Download(small.Output), plain) },
                    tolerance: 1e-4, flops: 4.0 * big.Rows * big.Hidden, bytes);
            }
        }

        private PreparedCase PrepareNorm(LabVersion version, NormInputs inputs)
        {
            int rows = inputs.Rows, hidden = inputs.Hidden;
            float eps = Eps;
            ulong o = BenchContext.PointerOf(inputs.Output), x = BenchContext.PointerOf(inputs.X), w = BenchContext.PointerOf(inputs.W);
            ulong r = BenchContext.PointerOf(inputs.Residual), d = BenchContext.PointerOf(inputs.Delta);
            if (version.Number >= 3 && hidden % 8 != 0) throw new NotSupportedException($"v{version.Number} needs H % 8 == 0 (H = {hidden})");
            var f = ctx.Function(version.Source!, $"rmsnorm_v{version.Number}");
            return version.Number switch
            {
                1 => new PreparedCase(() => ctx.Launch(f, ((uint)((rows + 127) / 128), 1, 1), 128, o, x, w, rows, hidden, eps)),
                2 => new PreparedCase(() => ctx.Launch(f, ((uint)rows, 1, 1), 256, o, x, w, rows, hidden, eps)),
                3 => new PreparedCase(() => ctx.Launch(f, ((uint)((rows + 7) / 8), 1, 1), 256, o, x, w, rows, hidden, eps)),
                // v4 updates the residual in place: restore it from x before every run (untimed)
                _ => new PreparedCase(() => ctx.Launch(f, ((uint)((rows + 7) / 8), 1, 1), 256, o, r, d, w, rows, hidden, eps))
                { Reset = () => Backend.Copy(inputs.Residual, inputs.X) },
            };
        }

        // ---- attention: B causal sequences of S tokens, GQA

        private sealed record AttentionInputs(int B, int S, AttentionHeads Heads, Tensor Q, Tensor K, Tensor V, Tensor Output) : IDisposable
        {
            public void Dispose() { Q.Dispose(); K.Dispose(); V.Dispose(); Output.Dispose(); }
        }

        private AttentionInputs AttentionSet(int b, int s, AttentionHeads heads) => new(b, s, heads,
            ctx.Random(DType.BF16, -1f, 1f, b * s, heads.QueryWidth), ctx.Random(DType.BF16, -1f, 1f, b * s, heads.KeyValueWidth),
            ctx.Random(DType.BF16, -1f, 1f, b * s, heads.KeyValueWidth), ctx.Zeros(DType.BF16, b * s, heads.QueryWidth));

        public void Attention()
        {
            log.WriteLine("attention");
            var heads = new AttentionHeads(28, 4, 128); // Qwen2.5-7B
            using var small = AttentionSet(2, 256, heads);
            using var big = AttentionSet(4, 2048, heads);
            double[] reference = AttentionReference(Download(small.Q), Download(small.K), Download(small.V), small.B, small.S,
                heads.QueryHeads, heads.KeyValueHeads, heads.HeadDim);
            double flops = KernelPlan.CausalAttentionFlops(big.B, big.S, heads.QueryHeads, heads.HeadDim);
            double bytes = 2.0 * big.B * big.S * (2.0 * heads.QueryWidth + 2.0 * heads.KeyValueWidth);
            foreach (var version in Versions.Where(v => v.Family == "attention"))
                Try(version, small, big, $"B{small.B}xS{small.S}xNH{heads.QueryHeads}xNKV{heads.KeyValueHeads}xHD{heads.HeadDim}",
                    $"B{big.B}xS{big.S}xNH{heads.QueryHeads}xNKV{heads.KeyValueHeads}xHD{heads.HeadDim}", inputs => PrepareAttention(version, inputs),
                    () => new Dictionary<string, double> { ["out"] = Nmse(Download(small.Output), reference) }, tolerance: 1e-4, flops, bytes);
        }

        private PreparedCase PrepareAttention(LabVersion version, AttentionInputs inputs)
        {
            int length = inputs.S, heads = inputs.Heads.QueryHeads, kvHeads = inputs.Heads.KeyValueHeads, headDim = inputs.Heads.HeadDim;
            uint b = (uint)inputs.B, nh = (uint)heads;
            ulong o = BenchContext.PointerOf(inputs.Output), q = BenchContext.PointerOf(inputs.Q);
            ulong k = BenchContext.PointerOf(inputs.K), v = BenchContext.PointerOf(inputs.V);
            if (version.Source is null)
            {
                var spans = Enumerable.Range(0, inputs.B).Select(i => new AttentionSpan(i * length, length, i * length, 0)).ToArray();
                return new PreparedCase(() => Backend.Attention(inputs.Output, inputs.Q, inputs.K, inputs.V, spans, inputs.Heads));
            }
            if (headDim % 32 != 0 || headDim > 128) throw new NotSupportedException($"lab attention needs HD % 32 == 0 and HD ≤ 128 (HD = {headDim})");
            switch (version.Number)
            {
                case 1:
                {
                    var scoresKernel = ctx.Function(version.Source, "attention_v1_scores");
                    var softmax = ctx.Function(version.Source, "attention_v1_softmax");
                    var output = ctx.Function(version.Source, "attention_v1_output");
                    long scoreCount = (long)inputs.B * heads * length * length;
                    var scores = ctx.Device.Allocate(scoreCount * sizeof(float));
                    ulong sp = scores.Pointer;
                    return new PreparedCase(() =>
                    {
                        ctx.Launch(scoresKernel, ((uint)(((long)length * length + 255) / 256), nh, b), 256, sp, q, k, length, heads, kvHeads, headDim);
                        ctx.Launch(softmax, ((uint)length, nh, b), 256, sp, length, heads);
                        ctx.Launch(output, ((uint)(((long)length * headDim + 255) / 256), nh, b), 256, o, sp, v, length, heads, kvHeads, headDim);
                    }, scores) { OwnScratchBytes = scoreCount * sizeof(float) };
                }
                case 2:
                {
                    var f = ctx.Function(version.Source, "attention_v2");
                    return new PreparedCase(() => ctx.Launch(f, ((uint)length, nh, b), 128, o, q, k, v, length, heads, kvHeads, headDim))
                    { OwnScratchBytes = 0 };
                }
                default:
                {
                    var f = ctx.Function(version.Source, "attention_v3");
                    return new PreparedCase(() => ctx.Launch(f, ((uint)((length + 15) / 16), nh, b), 128, o, q, k, v, length, heads, kvHeads, headDim))
                    { OwnScratchBytes = 0 };
                }
            }
        }

        // ---- log-prob gather: logProbs, entropies, logSumExp [T] from hidden [T, H] and the LM head W [V, H]

        private sealed record LogProbInputs(int T, int H, int V, Tensor Hidden, Tensor Weight, int[] Targets, CudaMemoryHandle TargetsOnDevice,
            Tensor LogProbs, Tensor Entropies, Tensor LogSumExp) : IDisposable
        {
            public void Dispose()
            {
                Hidden.Dispose(); Weight.Dispose(); TargetsOnDevice.Dispose(); LogProbs.Dispose(); Entropies.Dispose(); LogSumExp.Dispose();
            }
        }

        private LogProbInputs LogProbSet(int t, int h, int v, Tensor? sharedWeight)
        {
            int[] targets = BenchContext.Ids(t, v, 11);
            targets[t / 2] = -1; // one ignored row: log-prob 0, entropy still computed
            var onDevice = ctx.Device.Allocate((long)t * sizeof(int));
            ctx.Device.CopyToDevice<int>(onDevice, targets);
            return new LogProbInputs(t, h, v, ctx.Random(DType.BF16, -1f, 1f, t, h), sharedWeight ?? ctx.Random(DType.BF16, -0.05f, 0.05f, v, h),
                targets, onDevice, ctx.Zeros(DType.F32, t), ctx.Zeros(DType.F32, t), ctx.Zeros(DType.F32, t));
        }

        public void LogProb()
        {
            log.WriteLine("logprob");
            const int H = 1536, V = 151936; // Qwen2.5-1.5B
            using var big = LogProbSet(4096, H, V, null);
            var small = LogProbSet(16, H, V, big.Weight);
            try
            {
                var watch = Stopwatch.StartNew();
                var (logProbs, entropies) = LogProbReference(Download(small.Hidden), Download(small.Weight), small.Targets, small.T, H, V);
                log.WriteLine($"  float64 reference in {watch.Elapsed.TotalSeconds:F1} s");
                double flops = 2.0 * big.T * V * H;
                double bytes = 2.0 * ((double)big.T * H + (double)V * H) + 12.0 * big.T;
                foreach (var version in Versions.Where(v => v.Family == "logprob"))
                    Try(version, small, big, $"T{small.T}xH{H}xV{V}", $"T{big.T}xH{H}xV{V}", inputs => PrepareLogProb(version, inputs),
                        () => new Dictionary<string, double>
                        {
                            ["log_probs"] = Nmse(Download(small.LogProbs), logProbs),
                            ["entropies"] = Nmse(Download(small.Entropies), entropies),
                        }, tolerance: 1e-4, flops, bytes);
            }
            finally
            {
                // the weight is big's; release the rest of small
                small.Hidden.Dispose(); small.TargetsOnDevice.Dispose(); small.LogProbs.Dispose(); small.Entropies.Dispose(); small.LogSumExp.Dispose();
            }
        }

        private PreparedCase PrepareLogProb(LabVersion version, LogProbInputs inputs)
        {
            int t = inputs.T, v = inputs.V;
            ulong lp = BenchContext.PointerOf(inputs.LogProbs), en = BenchContext.PointerOf(inputs.Entropies), lse = BenchContext.PointerOf(inputs.LogSumExp);
            ulong targets = inputs.TargetsOnDevice.Pointer;
            if (version.Source is null)
                return new PreparedCase(() => Backend.LogProbGather(inputs.LogProbs, inputs.Entropies, inputs.LogSumExp, inputs.Hidden, inputs.Weight, inputs.Targets, 1f));
            if (version.Number == 1)
            {
                var logSoftmax = ctx.Function(version.Source, "logprob_v1_log_softmax");
                var gather = ctx.Function(version.Source, "logprob_v1_gather");
                var logits = ctx.Zeros(DType.BF16, t, v);
                var normalized = ctx.Zeros(DType.F32, t, v);
                ulong z = BenchContext.PointerOf(logits), ls = BenchContext.PointerOf(normalized);
                return new PreparedCase(() =>
                {
                    Backend.MatMul(logits, inputs.Hidden, inputs.Weight, null);
                    ctx.Launch(logSoftmax, ((uint)t, 1, 1), 256, ls, lse, z, v);
                    ctx.Launch(gather, ((uint)t, 1, 1), 256, lp, en, ls, targets, v);
                }, logits, normalized) { OwnScratchBytes = (long)t * v * (2 + 4) };
            }
            var online = ctx.Function(version.Source, "logprob_v2_online");
            int chunk = Math.Max(1, t / 8);
            var buffer = ctx.Zeros(DType.BF16, chunk, v);
            return new PreparedCase(() =>
            {
                for (int start = 0; start < t; start += chunk)
                {
                    int n = Math.Min(chunk, t - start);
                    var rows = n == chunk ? buffer : buffer.Rows(0, n);
                    Backend.MatMul(rows, inputs.Hidden.Rows(start, n), inputs.Weight, null);
                    ulong z = BenchContext.PointerOf(rows), off = (ulong)start * 4;
                    ulong lpc = lp + off, enc = en + off, lsec = lse + off, tc = targets + off;
                    ctx.Launch(online, ((uint)n, 1, 1), 256, lpc, enc, lsec, z, tc, v);
                }
            }, buffer) { OwnScratchBytes = (long)chunk * v * 2 };
        }
    }
}
