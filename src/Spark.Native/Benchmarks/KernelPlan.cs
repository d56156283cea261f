using Spark.Native.Backends;
using Spark.Native.Generation;
using Spark.Native.Tensors;

namespace Spark.Native.Benchmarks;

// Dimension legend: T tokens, H hidden, I intermediate, V vocabulary, NH query heads, NKV key/value heads, HD head dim,
// B sequences (or decode rows), S sequence length (or cached positions), P parameters. Activations bf16 (2 bytes).

/// <summary>
/// The cases of <c>spark bench kernels</c>: every op of a decoder layer and of the RL step at the real shapes of each
/// model, with the FLOP and byte models written next to each. Names are <c>model:op:shape</c>;
/// benchmarks/torch_kernels.py builds the same names for its PyTorch peers.
/// </summary>
public static class KernelPlan
{
    private const float Eps = 1e-6f;

    /// <summary>The cases for <paramref name="settings"/>, model by model; names are unique.</summary>
    public static IReadOnlyList<KernelCase> Build(KernelPlanSettings settings)
    {
        var cases = new List<KernelCase>();
        foreach (var m in settings.Models)
        {
            int t = settings.Tokens;
            cases.AddRange(MatMuls(m, t));
            cases.Add(RmsNorm(m, t));
            cases.Add(Rope(m, t));
            cases.Add(SwiGlu(m, t));
            foreach (int s in settings.SequenceLengths)
            {
                int b = Math.Max(1, settings.AttentionTokens / s);
                cases.Add(AttentionForward(m, b, s));
                cases.Add(AttentionBackward(m, b, s));
            }
            foreach (int s in settings.SequenceLengths) cases.Add(DecodeAttention(m, settings.DecodeRows, s));
            cases.AddRange(LogProb(m, t));
            cases.Add(CrossEntropy(m, t));
            long p = Math.Min(m.ParameterCount, settings.MaxAdamWParameters);
            cases.Add(AdamW(m, p, master: true));
            cases.Add(AdamW(m, p, master: false));
            cases.Add(SumOfSquares(m, p));
            cases.Add(Sample(m, settings.SampleRows));
        }
        var duplicate = cases.GroupBy(c => c.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new InvalidOperationException($"two benchmark cases are named {duplicate.Key}");
        return cases;
    }

    private static KernelCase Case(BenchModel m, string op, string shape, KernelBound bound, double flops, double bytes,
        string flopModel, string byteModel, Func<BenchContext, PreparedCase> prepare) =>
        new($"{m.Name}:{op}:{shape}", m.Name, op, shape, bound, flops, bytes, flopModel, byteModel) { Prepare = prepare };

    // ---- GEMMs: y[T, N] = x[T, K] · W[N, K]ᵀ (+ bias), the projections of a Qwen2 layer and the LM head

    private static IEnumerable<KernelCase> MatMuls(BenchModel m, int t)
    {
        (string Name, int N, int K, bool Bias)[] projections =
        [
            ("q_proj", m.QueryWidth, m.Hidden, true), ("k_proj", m.KeyValueWidth, m.Hidden, true), ("v_proj", m.KeyValueWidth, m.Hidden, true),
            ("o_proj", m.Hidden, m.QueryWidth, false), ("gate_proj", m.Intermediate, m.Hidden, false), ("up_proj", m.Intermediate, m.Hidden, false),
            ("down_proj", m.Hidden, m.Intermediate, false), ("lm_head", m.Vocab, m.Hidden, false),
        ];
        foreach (var (name, n, k, bias) in projections)
            yield return Case(m, $"matmul.{name}", $"T{t}xN{n}xK{k}", KernelBound.Compute,
                2.0 * t * n * k, 2.0 * ((double)t * k + (double)n * k + (double)t * n + (bias ? n : 0)),
                "2·T·N·K", "bf16, each operand once: x T·K + W N·K + y T·N" + (bias ? " + bias N" : ""),
                ctx =>
                {
                    var x = ctx.Random(DType.BF16, -1f, 1f, t, k);
                    var w = ctx.Random(DType.BF16, -0.05f, 0.05f, n, k);
                    var b = bias ? ctx.Random(DType.BF16, -0.1f, 0.1f, n) : null;
                    var y = ctx.Zeros(DType.BF16, t, n);
                    return new PreparedCase(() => ctx.Backend.MatMul(y, x, w, b), x, w, b, y);
                });
    }

    /// <summary>The GEMM ceiling: one bf16 8192³ matmul through the backend (cuBLASLt).</summary>
    internal static KernelCase GemmCeiling(int n = 8192) =>
        new("ceiling:matmul:8192x8192x8192", "ceiling", "matmul", $"{n}x{n}x{n}", KernelBound.Compute, 2.0 * n * n * n, 6.0 * n * n,
            "2·N³", "bf16 x, W, y once each")
        {
            Prepare = ctx =>
            {
                var x = ctx.Random(DType.BF16, -1f, 1f, n, n);
                var w = ctx.Random(DType.BF16, -0.05f, 0.05f, n, n);
                var y = ctx.Zeros(DType.BF16, n, n);
                return new PreparedCase(() => ctx.Backend.MatMul(y, x, w, null), x, w, y);
            },
        };

    // ---- element-wise and row ops of a layer

    private static KernelCase RmsNorm(BenchModel m, int t) =>
        Case(m, "rmsnorm", $"T{t}xH{m.Hidden}", KernelBound.Memory, 4.0 * t * m.Hidden, 2.0 * (2.0 * t * m.Hidden + m.Hidden),
            "≈ 4·T·H (square, sum, two multiplies)", "bf16: read x T·H, write y T·H, read w H",
            ctx =>
            {
                var x = ctx.Random(DType.BF16, -1f, 1f, t, m.Hidden);
                var w = ctx.Random(DType.BF16, 0.5f, 1.5f, m.Hidden);
                var y = ctx.Zeros(DType.BF16, t, m.Hidden);
                return new PreparedCase(() => ctx.Backend.RmsNorm(y, x, w, Eps), x, w, y);
            });

    private static KernelCase Rope(BenchModel m, int t) =>
        Case(m, "rope.q", $"T{t}xNH{m.Heads}xHD{m.HeadDim}", KernelBound.Memory, 3.0 * t * m.QueryWidth,
            2.0 * 2.0 * t * m.QueryWidth + 4.0 * t + 4.0 * m.HeadDim / 2,
            "≈ 3·T·NH·HD (a rotation is 2 multiplies and an add per element)", "bf16 in place: read + write q T·NH·HD; positions T·4; inv freq HD/2·4",
            ctx =>
            {
                var x = ctx.Random(DType.BF16, -1f, 1f, t, m.QueryWidth);
                var inv = ctx.Zeros(DType.F32, m.HeadDim / 2);
                var freqs = new float[m.HeadDim / 2];
                for (int i = 0; i < freqs.Length; i++) freqs[i] = (float)(1.0 / Math.Pow(m.RopeTheta, 2.0 * i / m.HeadDim));
                ctx.Backend.Upload(inv, freqs);
                int[] positions = Enumerable.Range(0, t).ToArray();
                return new PreparedCase(() => ctx.Backend.Rope(x, positions, inv, m.HeadDim), x, inv);
            });

    private static KernelCase SwiGlu(BenchModel m, int t) =>
        Case(m, "swiglu", $"T{t}xI{m.Intermediate}", KernelBound.Memory, 6.0 * t * m.Intermediate, 3.0 * 2.0 * t * m.Intermediate,
            "≈ 6·T·I (silu ≈ 4, two multiplies)", "bf16: read gate, up T·I each, write y T·I",
            ctx =>
            {
                var g = ctx.Random(DType.BF16, -4f, 4f, t, m.Intermediate);
                var u = ctx.Random(DType.BF16, -1f, 1f, t, m.Intermediate);
                var y = ctx.Zeros(DType.BF16, t, m.Intermediate);
                return new PreparedCase(() => ctx.Backend.SwiGlu(y, g, u), g, u, y);
            });

    // ---- attention: B causal sequences of S tokens in one batched call (training / prefill), and decode

    /// <summary>Causal attention forward FLOPs: QKᵀ and PV, 2·HD each per visible (query, key) pair, S(S+1)/2 pairs per sequence and head.</summary>
    public static double CausalAttentionFlops(int b, int s, int heads, int headDim) => 4.0 * headDim * heads * b * (s * (s + 1.0) / 2.0);

    private static AttentionSpan[] TrainingSpans(int b, int s) =>
        Enumerable.Range(0, b).Select(i => new AttentionSpan(i * s, s, i * s, 0)).ToArray();

    private static KernelCase AttentionForward(BenchModel m, int b, int s) =>
        Case(m, "attention.fwd", $"B{b}xS{s}", KernelBound.Compute, CausalAttentionFlops(b, s, m.Heads, m.HeadDim),
            2.0 * b * s * (2.0 * m.QueryWidth + 2.0 * m.KeyValueWidth),
            "causal: 4·HD·NH·B·S(S+1)/2 (QKᵀ and PV over the visible pairs)", "bf16: read q, k, v, write o once (B·S·(2·NH + 2·NKV)·HD)",
            ctx =>
            {
                var heads = new AttentionHeads(m.Heads, m.KeyValueHeads, m.HeadDim);
                var q = ctx.Random(DType.BF16, -1f, 1f, b * s, m.QueryWidth);
                var k = ctx.Random(DType.BF16, -1f, 1f, b * s, m.KeyValueWidth);
                var v = ctx.Random(DType.BF16, -1f, 1f, b * s, m.KeyValueWidth);
                var o = ctx.Zeros(DType.BF16, b * s, m.QueryWidth);
                var spans = TrainingSpans(b, s);
                return new PreparedCase(() => ctx.Backend.Attention(o, q, k, v, spans, heads), q, k, v, o);
            });

    private static KernelCase AttentionBackward(BenchModel m, int b, int s) =>
        Case(m, "attention.bwd", $"B{b}xS{s}", KernelBound.Compute, 2.5 * CausalAttentionFlops(b, s, m.Heads, m.HeadDim),
            2.0 * b * s * (2.0 * m.QueryWidth + 2.0 * m.KeyValueWidth) + 2.0 * 2.0 * b * s * (m.QueryWidth + 2.0 * m.KeyValueWidth),
            "2.5 × forward (FlashAttention convention: QKᵀ recomputed, dV, dP, dQ, dK)",
            "bf16: read q, dO (B·S·NH·HD each), k, v (B·S·NKV·HD each); dq, dk, dv accumulated (read + write)",
            ctx =>
            {
                var heads = new AttentionHeads(m.Heads, m.KeyValueHeads, m.HeadDim);
                var q = ctx.Random(DType.BF16, -1f, 1f, b * s, m.QueryWidth);
                var k = ctx.Random(DType.BF16, -1f, 1f, b * s, m.KeyValueWidth);
                var v = ctx.Random(DType.BF16, -1f, 1f, b * s, m.KeyValueWidth);
                var dO = ctx.Random(DType.BF16, -0.1f, 0.1f, b * s, m.QueryWidth);
                var dq = ctx.Zeros(DType.BF16, b * s, m.QueryWidth);
                var dk = ctx.Zeros(DType.BF16, b * s, m.KeyValueWidth);
                var dv = ctx.Zeros(DType.BF16, b * s, m.KeyValueWidth);
                var spans = TrainingSpans(b, s);
                return new PreparedCase(() => ctx.Backend.AttentionBackward(dq, dk, dv, dO, q, k, v, spans, heads), q, k, v, dO, dq, dk, dv);
            });

    private static KernelCase DecodeAttention(BenchModel m, int b, int s) =>
        Case(m, "attention.decode", $"B{b}xS{s}", KernelBound.Memory, 4.0 * b * s * m.QueryWidth,
            2.0 * (2.0 * b * s * m.KeyValueWidth + 2.0 * b * m.QueryWidth),
            "4·B·S·NH·HD (one query row per sequence against S cached keys)",
            "bf16: read the cached k and v (B·S·NKV·HD each) once; q and o B·NH·HD",
            ctx =>
            {
                var heads = new AttentionHeads(m.Heads, m.KeyValueHeads, m.HeadDim);
                var q = ctx.Random(DType.BF16, -1f, 1f, b, m.QueryWidth);
                var k = ctx.Random(DType.BF16, -1f, 1f, b * s, m.KeyValueWidth);
                var v = ctx.Random(DType.BF16, -1f, 1f, b * s, m.KeyValueWidth);
                var o = ctx.Zeros(DType.BF16, b, m.QueryWidth);
                var spans = Enumerable.Range(0, b).Select(i => new AttentionSpan(i, 1, i * s, s - 1)).ToArray();
                return new PreparedCase(() => ctx.Backend.Attention(o, q, k, v, spans, heads), q, k, v, o);
            });

    // ---- the RL step's vocabulary ops

    private static IEnumerable<KernelCase> LogProb(BenchModel m, int t)
    {
        int h = m.Hidden, v = m.Vocab;
        string shape = $"T{t}xH{h}xV{v}";
        double tvh = (double)t * v * h;
        double inputs = 2.0 * ((double)t * h + (double)v * h);
        const string Note = "; the engine also computes the entropy, the torch peer does not";

        PreparedCase Forward(BenchContext ctx, bool backward)
        {
            var hidden = ctx.Random(DType.BF16, -1f, 1f, t, h);
            var weight = ctx.Random(DType.BF16, -0.05f, 0.05f, v, h);
            var logProbs = ctx.Zeros(DType.F32, t);
            var entropies = ctx.Zeros(DType.F32, t);
            var lse = ctx.Zeros(DType.F32, t);
            int[] targets = BenchContext.Ids(t, v, 7);
            if (!backward)
                return new PreparedCase(() => ctx.Backend.LogProbGather(logProbs, entropies, lse, hidden, weight, targets, 1f),
                    hidden, weight, logProbs, entropies, lse);
            var hiddenGrad = ctx.Zeros(DType.BF16, t, h);
            var weightGrad = ctx.Zeros(DType.F32, v, h);
            var logProbGrad = ctx.Random(DType.F32, -1f, 1f, t);
            var entropyGrad = ctx.Random(DType.F32, -0.1f, 0.1f, t);
            return new PreparedCase(() =>
            {
                ctx.Backend.LogProbGather(logProbs, entropies, lse, hidden, weight, targets, 1f);
                ctx.Backend.LogProbGatherBackward(hiddenGrad, weightGrad, logProbGrad, entropyGrad, lse, entropies, hidden, weight, targets, 1f);
            }, hidden, weight, logProbs, entropies, lse, hiddenGrad, weightGrad, logProbGrad, entropyGrad);
        }

        yield return Case(m, "logprob.fwd", shape, KernelBound.Compute, 2 * tvh, inputs + 12.0 * t,
            "2·T·V·H (the logits GEMM; softmax terms ignored)", "bf16 hidden T·H and W V·H once; 3 fp32 outputs T" + Note,
            ctx => Forward(ctx, backward: false));
        yield return Case(m, "logprob.fwd+bwd", shape, KernelBound.Compute, 8 * tvh, 2 * inputs + 2.0 * 2.0 * t * h + 2.0 * 4.0 * v * h,
            "8·T·V·H: forward 2·T·V·H, backward 6·T·V·H (logits recomputed, dHidden, dW); torch's peer does 6·T·V·H",
            "forward and backward each read hidden and W (bf16); hiddenGrad read+write bf16; weightGrad V·H fp32 read+write" + Note,
            ctx => Forward(ctx, backward: true));
    }

    private static KernelCase CrossEntropy(BenchModel m, int t) =>
        Case(m, "cross_entropy", $"T{t}xV{m.Vocab}", KernelBound.Memory, 5.0 * t * m.Vocab, 2.0 * 2.0 * t * m.Vocab + 8.0 * t,
            "≈ 5·T·V (max, exp, sum, gradient)", "bf16: read logits T·V, write logitsGrad T·V; targets and losses T",
            ctx =>
            {
                var logits = ctx.Random(DType.BF16, -4f, 4f, t, m.Vocab);
                var grad = ctx.Zeros(DType.BF16, t, m.Vocab);
                var losses = ctx.Zeros(DType.F32, t);
                int[] targets = BenchContext.Ids(t, m.Vocab, 3);
                return new PreparedCase(() => ctx.Backend.CrossEntropy(losses, grad, logits, targets, 1f / t), logits, grad, losses);
            });

    private static string ParameterShape(BenchModel m, long p) => p == m.ParameterCount ? $"P{p}" : $"P{p}of{m.ParameterCount}";

    private static KernelCase AdamW(BenchModel m, long p, bool master) =>
        Case(m, master ? "adamw.master" : "adamw.sr", ParameterShape(m, p), KernelBound.Memory, 12.0 * p,
            master ? 30.0 * p : 24.0 * p, "≈ 12·P",
            master
                ? "per parameter: fp32 master read+write 8, fp32 grad 4, fp32 m and v read+write 16, bf16 weight write 2 = 30 B"
                : "per parameter: bf16 weight read+write 4 (stochastic rounding), fp32 grad 4, fp32 m and v read+write 16 = 24 B",
            ctx =>
            {
                int n = checked((int)p);
                var weights = ctx.Random(DType.BF16, -0.05f, 0.05f, n);
                var masterCopy = master ? ctx.Random(DType.F32, -0.05f, 0.05f, n) : null;
                var grads = ctx.Random(DType.F32, -1e-3f, 1e-3f, n);
                var m1 = ctx.Random(DType.F32, -1e-4f, 1e-4f, n);
                var m2 = ctx.Random(DType.F32, 1e-9f, 1e-8f, n);
                int step = 0;
                return new PreparedCase(() => ctx.Backend.AdamW(weights, masterCopy, grads, m1, m2,
                    new AdamWStep(1e-5f, 0.9f, 0.999f, 1e-8f, 0.01f, ++step, 1f, Seed: 17)), weights, masterCopy, grads, m1, m2);
            });

    private static KernelCase SumOfSquares(BenchModel m, long p) =>
        Case(m, "sum_of_squares", ParameterShape(m, p), KernelBound.Memory, 2.0 * p, 4.0 * p,
            "2·P", "fp32 gradients read once (4·P B); the result comes back to the host",
            ctx =>
            {
                var g = ctx.Random(DType.F32, -1e-3f, 1e-3f, checked((int)p));
                return new PreparedCase(() => ctx.Backend.SumOfSquares(g), g);
            });

    private static KernelCase Sample(BenchModel m, int rows) =>
        Case(m, "sample", $"R{rows}xV{m.Vocab}", KernelBound.Memory, 5.0 * rows * m.Vocab, 2.0 * rows * m.Vocab,
            "≈ 5·R·V (temperature, softmax, top-p scan)", "bf16 logits R·V read once; temperature 0.7, top-p 0.95",
            ctx =>
            {
                var logits = ctx.Random(DType.BF16, -8f, 8f, rows, m.Vocab);
                var settings = Enumerable.Range(0, rows).Select(i => new SamplingRow(0.7f, 0, 0.95f, 1234, (ulong)i)).ToArray();
                var tokens = new int[rows];
                return new PreparedCase(() => ctx.Backend.Sample(tokens, logits, settings), logits);
            });
}
