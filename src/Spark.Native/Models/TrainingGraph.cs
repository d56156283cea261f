using Spark.Native.Backends;
using Spark.Native.Tensors;

namespace Spark.Native.Models;

// Dimension legend: R rows of the batch (all sequences' tokens, concatenated), H hidden, I intermediate,
// V vocabulary, Q = NH·HD query width, KV = NKV·HD key/value width, L layers.

/// <summary>Which activations the backward recomputes instead of keeping from the forward.</summary>
internal enum ActivationRecompute
{
    /// <summary>Keep every activation the backward needs.</summary>
    Nothing,
    /// <summary>Recompute both RMSNorm outputs of each layer in the backward (saves 2·L·R·H floats for two cheap ops).</summary>
    Norms,
}

/// <summary>What the graph computes on top of the final hidden states.</summary>
internal enum TrainingHead
{
    /// <summary>LM-head logits [R, V] and fused cross-entropy (SFT): keeps R·V activations.</summary>
    CrossEntropy,
    /// <summary>The fused log-prob gather (RL): per-token log p(target) and entropy at a temperature, no [R, V] logits.</summary>
    LogProbs,
}

/// <summary>
/// Forward with saved activations and the explicit backward of the Llama/Qwen2 decoder (as llm.c does it: one
/// function per direction, no autograd graph). Activations live in one planned arena sized for a row capacity;
/// gradients accumulate into a parameter-shaped arena (tied embeddings collect both uses in one tensor).
/// </summary>
internal sealed class TrainingGraph : IDisposable
{
    private readonly Transformer _model;
    private readonly IBackend _b;
    private readonly Tensor _arena;   // activations and their gradients, in the backend's activation type
    private readonly Tensor _losses;  // [R] F32
    private readonly Layer[] _layers;
    private readonly Tensor _final, _finalNormed;                                   // [R,H] [R,H]
    private readonly Tensor? _logits;                                               // [R,V], CrossEntropy head only
    private readonly Tensor _logProbs, _entropies, _logSumExp, _logProbGrad, _entropyGrad; // [R] F32, LogProbs head
    private readonly Tensor _dx, _dNormed, _dAttention, _dQ, _dK, _dV, _dHidden, _dGate, _dUp; // gradients of activations

    /// <summary>Saved activations of one layer.</summary>
    private sealed record Layer(Tensor Input, Tensor Norm1, Tensor Q, Tensor K, Tensor V, Tensor Attention, Tensor Middle,
        Tensor Norm2, Tensor Gate, Tensor Up, Tensor Hidden);

    private readonly ActivationRecompute _recompute;

    private readonly TrainingHead _head;
    private Segment[]? _forwardSegments; // the LogProbs head's forward batch, which its backward continues
    private int[]? _forwardTokens, _forwardTargets;
    private float _forwardTemperature;

    public TrainingGraph(Transformer model, int rowCapacity, ActivationRecompute recompute = ActivationRecompute.Nothing,
        TrainingHead head = TrainingHead.CrossEntropy)
    {
        _recompute = recompute;
        _head = head;
        _model = model;
        _b = model.Backend;
        Capacity = rowCapacity;
        var c = model.Config;
        int r = rowCapacity, h = c.HiddenSize, q = c.HeadCount * c.HeadDim, kv = c.KeyValueHeadCount * c.HeadDim, im = c.IntermediateSize;

        int logitColumns = head == TrainingHead.CrossEntropy ? c.VocabSize : 0;
        if ((long)r * logitColumns > Array.MaxLength)
            throw new SparkException($"a training batch of {r} tokens × vocabulary {c.VocabSize} needs {(long)r * c.VocabSize:N0} logits, more than one buffer holds ({Array.MaxLength:N0}); use a smaller --batch-size or --max-length");
        bool keepNorms = recompute == ActivationRecompute.Nothing;
        long perLayer = (long)r * (h * (keepNorms ? 4 : 2) + q * 2 + kv * 2 + im * 3);
        long total = perLayer * c.LayerCount + (long)r * (h * 2 + logitColumns) + (long)r * (h * 3 + q * 2 + kv * 2 + im * 3);
        var dtype = _b.ActivationDType;
        _arena = _b.Allocate(dtype, checked((int)((total + 1023) / 1024)), 1024);
        try { _losses = _b.Allocate(DType.F32, 6, r); } // losses, log-probs, entropies, log-sum-exps and the two head gradients
        catch
        {
            _arena.Dispose();
            throw;
        }
        (_logProbs, _entropies, _logSumExp, _logProbGrad, _entropyGrad) =
            (_losses.Rows(1, 1).Reshape(r), _losses.Rows(2, 1).Reshape(r), _losses.Rows(3, 1).Reshape(r), _losses.Rows(4, 1).Reshape(r), _losses.Rows(5, 1).Reshape(r));
        long offset = 0;
        Tensor Take(params int[] shape)
        {
            var t = new Tensor(_b, _arena.Memory, offset, shape, ownsMemory: false);
            offset += t.Length;
            return t;
        }
        var sharedNorm = Take(r, h); // the one norm buffer of every layer when norms are recomputed
        Tensor Norm() => keepNorms ? Take(r, h) : sharedNorm;
        _layers = new Layer[c.LayerCount];
        for (int l = 0; l < c.LayerCount; l++)
            _layers[l] = new Layer(Take(r, h), Norm(), Take(r, q), Take(r, kv), Take(r, kv), Take(r, q), Take(r, h),
                Norm(), Take(r, im), Take(r, im), Take(r, im));
        (_final, _finalNormed) = (Take(r, h), Take(r, h));
        _logits = head == TrainingHead.CrossEntropy ? Take(r, c.VocabSize) : null;
        (_dx, _dNormed, _dAttention, _dQ, _dK, _dV, _dHidden, _dGate, _dUp) =
            (Take(r, h), Take(r, h), Take(r, q), Take(r, q), Take(r, kv), Take(r, kv), Take(r, im), Take(r, im), Take(r, im));
        ActivationBytes = total * IO.DTypes.SizeOf(dtype) + 6L * r * sizeof(float);
    }

    /// <summary>Most rows (tokens) one call can take.</summary>
    public int Capacity { get; }

    /// <summary>Size of the activation arena.</summary>
    public long ActivationBytes { get; }

    /// <summary>
    /// Runs the batch forward, then backward, adding ∂loss/∂θ into <paramref name="gradients"/>. tokens [R] are the
    /// sequences concatenated (each segment starts at position 0), targets [R] the next-token ids or −1 where a row
    /// does not count. The loss is Σ cross-entropy / <paramref name="lossDivisor"/> (the number of counted rows of the
    /// whole optimizer batch, so micro-batches add up). Returns the summed cross-entropy and the counted rows.
    /// </summary>
    public (double LossSum, int Counted) ForwardBackward(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets,
        ReadOnlySpan<Segment> segments, ParameterArena gradients, float lossDivisor)
    {
        if (_head != TrainingHead.CrossEntropy) throw new InvalidOperationException("this graph was built for the log-prob head; use ForwardLogProbs");
        int rows = CheckBatch(tokens, targets);
        Tensor R(Tensor t) => t.Rows(0, rows);
        var p = _model.Parameters;
        var lmHead = p[p.Layout.LmHeadName];
        var losses = _losses.Rows(0, 1).Reshape(Capacity);
        Forward(tokens, segments);
        _b.MatMul(R(_logits!), R(_finalNormed), lmHead, null);
        _b.CrossEntropy(R(losses), R(_logits!), R(_logits!), targets, 1f / lossDivisor); // logits become their gradient

        // backward: every gradient buffer is zeroed before the ops accumulate into it
        Zero(_dNormed, rows);
        _b.MatMulBackward(R(_dNormed), gradients[p.Layout.LmHeadName], null, R(_logits!), R(_finalNormed), lmHead);
        Backward(tokens, segments, gradients);

        var values = new float[rows];
        _b.Download(values, R(losses));
        double sum = 0;
        int counted = 0;
        for (int i = 0; i < rows; i++)
        {
            sum += values[i];
            if (targets[i] >= 0) counted++;
        }
        return (sum, counted);
    }

    /// <summary>
    /// The RL forward: runs the batch, saving activations, and returns per-token log p(targets[t]) and the entropy of
    /// the next-token distribution at <paramref name="temperature"/> through the fused log-prob gather (no [R, V]
    /// logits). A target of −1 gives log-prob 0. <see cref="BackwardFromLogProbs"/> continues from this batch.
    /// </summary>
    public (float[] LogProbs, float[] Entropies) ForwardLogProbs(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets,
        ReadOnlySpan<Segment> segments, float temperature)
    {
        if (_head != TrainingHead.LogProbs) throw new InvalidOperationException("this graph was built for the cross-entropy head; use ForwardBackward");
        int rows = CheckBatch(tokens, targets);
        Tensor R(Tensor t) => t.Rows(0, rows);
        var p = _model.Parameters;
        Forward(tokens, segments);
        _b.LogProbGather(R(_logProbs), R(_entropies), R(_logSumExp), R(_finalNormed), p[p.Layout.LmHeadName], targets, temperature);
        (_forwardTokens, _forwardTargets, _forwardSegments, _forwardTemperature) = (tokens.ToArray(), targets.ToArray(), segments.ToArray(), temperature);
        var logProbs = new float[rows];
        var entropies = new float[rows];
        _b.Download(logProbs, R(_logProbs));
        _b.Download(entropies, R(_entropies));
        return (logProbs, entropies);
    }

    /// <summary>
    /// Adds ∂L/∂θ into <paramref name="gradients"/> given ∂L/∂logProbs [R] (and ∂L/∂entropies [R], or empty) of the batch
    /// of the last <see cref="ForwardLogProbs"/>, whose saved activations it uses.
    /// </summary>
    public void BackwardFromLogProbs(ReadOnlySpan<float> logProbGrad, ReadOnlySpan<float> entropyGrad, ParameterArena gradients)
    {
        if (_forwardTokens is null || _forwardTargets is null || _forwardSegments is null)
            throw new InvalidOperationException("BackwardFromLogProbs needs a ForwardLogProbs on the same batch first");
        int rows = _forwardTokens.Length;
        if (logProbGrad.Length != rows || (entropyGrad.Length != 0 && entropyGrad.Length != rows))
            throw new ArgumentException($"{logProbGrad.Length} log-prob and {entropyGrad.Length} entropy gradients for a batch of {rows} rows");
        Tensor R(Tensor t) => t.Rows(0, rows);
        var p = _model.Parameters;
        _b.Upload(R(_logProbGrad), logProbGrad);
        if (entropyGrad.Length != 0) _b.Upload(R(_entropyGrad), entropyGrad);
        Zero(_dNormed, rows);
        _b.LogProbGatherBackward(R(_dNormed), gradients[p.Layout.LmHeadName], R(_logProbGrad), entropyGrad.Length != 0 ? R(_entropyGrad) : null,
            R(_logSumExp), R(_entropies), R(_finalNormed), p[p.Layout.LmHeadName], _forwardTargets, _forwardTemperature);
        Backward(_forwardTokens, _forwardSegments, gradients);
    }

    private int CheckBatch(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets)
    {
        int rows = tokens.Length;
        if (targets.Length != rows) throw new ArgumentException($"{targets.Length} targets for {rows} tokens");
        if (rows > Capacity) throw new ArgumentException($"{rows} rows exceed the training graph's capacity {Capacity}");
        return rows;
    }

    /// <summary>Embedding → layers → final norm, saving what the backward needs; leaves the result in _finalNormed.</summary>
    private void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<Segment> segments)
    {
        var (rows, positions, spans, heads, eps, c, p) = Geometry(tokens, segments);
        Tensor R(Tensor t) => t.Rows(0, rows);

        // forward, saving what the backward needs
        _b.Embedding(R(_layers.Length > 0 ? _layers[0].Input : _final), p[ParameterLayout.Embedding], tokens);
        for (int l = 0; l < _layers.Length; l++)
        {
            var a = _layers[l];
            var w = LayerWeights.From(p, l);
            _b.RmsNorm(R(a.Norm1), R(a.Input), w.InputNorm, eps);
            _b.MatMul(R(a.Q), R(a.Norm1), w.Q, w.QBias);
            _b.MatMul(R(a.K), R(a.Norm1), w.K, w.KBias);
            _b.MatMul(R(a.V), R(a.Norm1), w.V, w.VBias);
            _b.Rope(R(a.Q), positions, _model.InverseFrequencies, c.HeadDim);
            _b.Rope(R(a.K), positions, _model.InverseFrequencies, c.HeadDim);
            _b.Attention(R(a.Attention), R(a.Q), R(a.K), R(a.V), spans, heads);
            _b.MatMul(R(a.Middle), R(a.Attention), w.O, w.OBias);
            _b.Add(R(a.Middle), R(a.Middle), R(a.Input));
            _b.RmsNorm(R(a.Norm2), R(a.Middle), w.PostAttentionNorm, eps);
            _b.MatMul(R(a.Gate), R(a.Norm2), w.Gate, w.GateBias);
            _b.MatMul(R(a.Up), R(a.Norm2), w.Up, w.UpBias);
            _b.SwiGlu(R(a.Hidden), R(a.Gate), R(a.Up));
            var next = l + 1 < _layers.Length ? _layers[l + 1].Input : _final;
            _b.MatMul(R(next), R(a.Hidden), w.Down, w.DownBias);
            _b.Add(R(next), R(next), R(a.Middle));
        }
        _b.RmsNorm(R(_finalNormed), R(_final), p[ParameterLayout.FinalNorm], eps);
    }

    /// <summary>From ∂L/∂(final normed hidden) in _dNormed back to every parameter gradient (accumulated).</summary>
    private void Backward(ReadOnlySpan<int> tokens, ReadOnlySpan<Segment> segments, ParameterArena gradients)
    {
        var (rows, positions, spans, heads, eps, c, p) = Geometry(tokens, segments);
        Tensor R(Tensor t) => t.Rows(0, rows);
        var g = gradients;
        Zero(_dx, rows);
        _b.RmsNormBackward(R(_dx), g[ParameterLayout.FinalNorm], R(_dNormed), R(_final), p[ParameterLayout.FinalNorm], eps);
        for (int l = _layers.Length - 1; l >= 0; l--)
        {
            var a = _layers[l];
            var w = LayerWeights.From(p, l);
            var dw = LayerWeights.From(g, l);
            // x_out = middle + down(swiglu(gate(norm2), up(norm2))), norm2 = rmsnorm(middle)
            Zero(_dHidden, rows);
            _b.MatMulBackward(R(_dHidden), dw.Down, dw.DownBias, R(_dx), R(a.Hidden), w.Down);
            Zero(_dGate, rows);
            Zero(_dUp, rows);
            _b.SwiGluBackward(R(_dGate), R(_dUp), R(_dHidden), R(a.Gate), R(a.Up));
            if (_recompute == ActivationRecompute.Norms) _b.RmsNorm(R(a.Norm2), R(a.Middle), w.PostAttentionNorm, eps);
            Zero(_dNormed, rows);
            _b.MatMulBackward(R(_dNormed), dw.Gate, dw.GateBias, R(_dGate), R(a.Norm2), w.Gate);
            _b.MatMulBackward(R(_dNormed), dw.Up, dw.UpBias, R(_dUp), R(a.Norm2), w.Up);
            _b.RmsNormBackward(R(_dx), dw.PostAttentionNorm, R(_dNormed), R(a.Middle), w.PostAttentionNorm, eps); // _dx is now ∂/∂middle
            // middle = input + o_proj(attention(rope(q), rope(k), v)), q/k/v = proj(norm1), norm1 = rmsnorm(input)
            Zero(_dAttention, rows);
            _b.MatMulBackward(R(_dAttention), dw.O, dw.OBias, R(_dx), R(a.Attention), w.O);
            Zero(_dQ, rows);
            Zero(_dK, rows);
            Zero(_dV, rows);
            _b.AttentionBackward(R(_dQ), R(_dK), R(_dV), R(_dAttention), R(a.Q), R(a.K), R(a.V), spans, heads);
            _b.RopeBackward(R(_dQ), positions, _model.InverseFrequencies, c.HeadDim);
            _b.RopeBackward(R(_dK), positions, _model.InverseFrequencies, c.HeadDim);
            if (_recompute == ActivationRecompute.Norms) _b.RmsNorm(R(a.Norm1), R(a.Input), w.InputNorm, eps);
            Zero(_dNormed, rows);
            _b.MatMulBackward(R(_dNormed), dw.Q, dw.QBias, R(_dQ), R(a.Norm1), w.Q);
            _b.MatMulBackward(R(_dNormed), dw.K, dw.KBias, R(_dK), R(a.Norm1), w.K);
            _b.MatMulBackward(R(_dNormed), dw.V, dw.VBias, R(_dV), R(a.Norm1), w.V);
            _b.RmsNormBackward(R(_dx), dw.InputNorm, R(_dNormed), R(a.Input), w.InputNorm, eps); // _dx is now ∂/∂input
        }
        _b.EmbeddingBackward(g[ParameterLayout.Embedding], R(_dx), tokens);
    }

    /// <summary>What the forward and the backward of one batch both need: rows, positions, attention spans, heads, eps.</summary>
    private (int Rows, int[] Positions, AttentionSpan[] Spans, AttentionHeads Heads, float Eps, ModelConfig Config, ParameterArena Parameters)
        Geometry(ReadOnlySpan<int> tokens, ReadOnlySpan<Segment> segments)
    {
        var c = _model.Config;
        return (tokens.Length, Positions(segments, tokens.Length), Spans(segments), new AttentionHeads(c.HeadCount, c.KeyValueHeadCount, c.HeadDim),
            (float)c.RmsNormEps, c, _model.Parameters);
    }

    private void Zero(Tensor t, int rows) => _b.Fill(t.Rows(0, rows), 0f);

    private static int[] Positions(ReadOnlySpan<Segment> segments, int rows)
    {
        var positions = new int[rows];
        int row = 0;
        foreach (var s in segments)
        {
            if (s.StartPosition != 0) throw new ArgumentException("training segments start at position 0");
            for (int i = 0; i < s.Length; i++) positions[row++] = i;
        }
        if (row != rows) throw new ArgumentException($"segments cover {row} rows, {rows} tokens given");
        return positions;
    }

    /// <summary>Each sequence attends to itself: its rows are both its queries and its keys.</summary>
    private static AttentionSpan[] Spans(ReadOnlySpan<Segment> segments)
    {
        var spans = new AttentionSpan[segments.Length];
        int row = 0;
        for (int i = 0; i < segments.Length; i++)
        {
            spans[i] = new AttentionSpan(row, segments[i].Length, row, 0);
            row += segments[i].Length;
        }
        return spans;
    }

    public void Dispose()
    {
        _arena.Dispose();
        _losses.Dispose();
    }
}
