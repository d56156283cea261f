using Spark.Native.Backends;
using Spark.Native.Tensors;

namespace Spark.Native.Models;

// Dimension legend: T rows of this call (all segments' tokens, concatenated), H hidden, I intermediate,
// V vocabulary, NH/NKV query/key-value heads, HD head dim, L layers.

/// <summary>A run of consecutive tokens of one sequence: cache slot, position of its first token, token count.</summary>
internal readonly record struct Segment(int Slot, int StartPosition, int Length);

/// <summary>Which rows of the final hidden state go through the LM head.</summary>
internal enum LogitRows
{
    /// <summary>Every token: logits [T, V].</summary>
    All,
    /// <summary>The last token of each segment: logits [segments, V] (what generation needs).</summary>
    LastOfEachSegment,
}

/// <summary>The weights of one decoder layer, as views into the arena.</summary>
internal sealed record LayerWeights(
    Tensor InputNorm, Tensor Q, Tensor? QBias, Tensor K, Tensor? KBias, Tensor V, Tensor? VBias, Tensor O, Tensor? OBias,
    Tensor PostAttentionNorm, Tensor Gate, Tensor? GateBias, Tensor Up, Tensor? UpBias, Tensor Down, Tensor? DownBias)
{
    public static LayerWeights From(ParameterArena p, int l)
    {
        Tensor W(string s) => p[ParameterLayout.LayerName(l, s)];
        Tensor? B(string s) => p.Optional(ParameterLayout.LayerName(l, s));
        return new(W("input_layernorm.weight"),
            W("self_attn.q_proj.weight"), B("self_attn.q_proj.bias"),
            W("self_attn.k_proj.weight"), B("self_attn.k_proj.bias"),
            W("self_attn.v_proj.weight"), B("self_attn.v_proj.bias"),
            W("self_attn.o_proj.weight"), B("self_attn.o_proj.bias"),
            W("post_attention_layernorm.weight"),
            W("mlp.gate_proj.weight"), B("mlp.gate_proj.bias"),
            W("mlp.up_proj.weight"), B("mlp.up_proj.bias"),
            W("mlp.down_proj.weight"), B("mlp.down_proj.bias"));
    }
}

/// <summary>
/// The Llama/Qwen2 decoder forward, straight-line over backend ops (transformers semantics, see formats.md):
/// h += o_proj(attn(rope(q), rope(k), v)) of input_layernorm(h); h += down(silu(gate(x)) · up(x)) of
/// post_attention_layernorm(h); logits = lm_head(norm(h)).
/// </summary>
internal sealed class Transformer : IDisposable
{
    private readonly IBackend _b;
    private readonly LayerWeights[] _layers;
    private readonly Tensor _embedding, _finalNorm, _lmHead;
    private readonly Tensor _inverseFrequencies; // [HD/2]
    private readonly AttentionHeads _heads;
    private readonly float _eps;

    public Transformer(IBackend backend, ParameterArena parameters)
    {
        _b = backend;
        Parameters = parameters;
        Config = parameters.Layout.Config;
        _layers = Enumerable.Range(0, Config.LayerCount).Select(l => LayerWeights.From(parameters, l)).ToArray();
        _embedding = parameters[ParameterLayout.Embedding];
        _finalNorm = parameters[ParameterLayout.FinalNorm];
        _lmHead = parameters[parameters.Layout.LmHeadName];
        _heads = new AttentionHeads(Config.HeadCount, Config.KeyValueHeadCount, Config.HeadDim);
        _eps = (float)Config.RmsNormEps;
        _inverseFrequencies = backend.Allocate(DType.F32, Config.HeadDim / 2);
        backend.Upload(_inverseFrequencies, RopeFrequencies.Compute(Config.HeadDim, Config.RopeTheta, Config.RopeScaling));
    }

    public ModelConfig Config { get; }
    public ParameterArena Parameters { get; }
    public IBackend Backend => _b;
    /// <summary>RoPE inverse frequencies [HD/2].</summary>
    public Tensor InverseFrequencies => _inverseFrequencies;

    /// <summary>
    /// Runs tokens [T] (the segments' tokens, concatenated in segment order) through the model, appending their
    /// keys and values to <paramref name="cache"/>. Returns logits [T, V] or [segments, V]; the caller disposes them.
    /// </summary>
    public Tensor Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<Segment> segments, KvCache cache, LogitRows rows)
    {
        int t = ValidateSegments(tokens.Length, segments, cache);
        var c = Config;
        int h = c.HiddenSize, qw = _heads.QueryWidth, kvw = _heads.KeyValueWidth, im = c.IntermediateSize;
        var positions = new int[t];
        var cacheRows = new int[t];     // where each token's key and value go in its layer's cache block
        var spans = new AttentionSpan[segments.Length];
        for (int s = 0, row = 0; s < segments.Length; s++)
        {
            var seg = segments[s];
            spans[s] = new AttentionSpan(row, seg.Length, cache.RowInLayer(seg.Slot, 0), seg.StartPosition);
            for (int i = 0; i < seg.Length; i++, row++)
            {
                positions[row] = seg.StartPosition + i;
                cacheRows[row] = cache.RowInLayer(seg.Slot, seg.StartPosition + i);
            }
        }

        using var x = _b.Allocate(_b.ActivationDType, t, h);          // residual stream
        using var normed = _b.Allocate(_b.ActivationDType, t, h);
        using var q = _b.Allocate(_b.ActivationDType, t, qw);
        using var k = _b.Allocate(_b.ActivationDType, t, kvw);
        using var v = _b.Allocate(_b.ActivationDType, t, kvw);
        using var attention = _b.Allocate(_b.ActivationDType, t, qw);
        using var projected = _b.Allocate(_b.ActivationDType, t, h);
        using var gate = _b.Allocate(_b.ActivationDType, t, im);
        using var up = _b.Allocate(_b.ActivationDType, t, im);

        _b.Embedding(x, _embedding, tokens);
        for (int l = 0; l < _layers.Length; l++)
        {
            var w = _layers[l];
            if (l == 0) _b.RmsNorm(normed, x, w.InputNorm, _eps); // later layers get it fused with the residual add below
            _b.MatMul(q, normed, w.Q, w.QBias);
            _b.MatMul(k, normed, w.K, w.KBias);
            _b.MatMul(v, normed, w.V, w.VBias);
            _b.Rope(q, positions, _inverseFrequencies, c.HeadDim);
            _b.Rope(k, positions, _inverseFrequencies, c.HeadDim);
            var keys = cache.LayerKeys(l);
            var values = cache.LayerValues(l);
            _b.CopyRows(keys, k, cacheRows);
            _b.CopyRows(values, v, cacheRows);
            _b.Attention(attention, q, keys, values, spans, _heads);
            _b.MatMul(projected, attention, w.O, w.OBias);
            _b.AddRmsNorm(normed, x, projected, w.PostAttentionNorm, _eps);
            _b.MatMul(gate, normed, w.Gate, w.GateBias);
            _b.MatMul(up, normed, w.Up, w.UpBias);
            _b.SwiGlu(gate, gate, up);
            _b.MatMul(projected, gate, w.Down, w.DownBias);
            if (l + 1 < _layers.Length) _b.AddRmsNorm(normed, x, projected, _layers[l + 1].InputNorm, _eps);
            else _b.Add(x, x, projected);
        }

        var final = x;
        using var lastRows = rows == LogitRows.LastOfEachSegment ? _b.Allocate(_b.ActivationDType, segments.Length, h) : null;
        if (lastRows is not null)
        {
            for (int s = 0, end = 0; s < segments.Length; s++)
            {
                end += segments[s].Length;
                _b.Copy(lastRows.Rows(s, 1), x.Rows(end - 1, 1));
            }
            final = lastRows;
        }
        using var finalNormed = _b.Allocate(_b.ActivationDType, final.Shape);
        _b.RmsNorm(finalNormed, final, _finalNorm, _eps);
        var logits = _b.Allocate(_b.ActivationDType, final.Shape[0], c.VocabSize);
        _b.MatMul(logits, finalNormed, _lmHead, null);
        return logits;
    }

    private static int ValidateSegments(int tokenCount, ReadOnlySpan<Segment> segments, KvCache cache)
    {
        if (segments.IsEmpty) throw new ArgumentException("a forward needs at least one segment");
        int total = 0;
        var slots = new HashSet<int>();
        foreach (var s in segments)
        {
            if (!slots.Add(s.Slot)) throw new ArgumentException($"slot {s.Slot} appears in two segments of one forward");
            if (s.Length <= 0) throw new ArgumentException($"segment of slot {s.Slot} has no tokens");
            if ((uint)s.Slot >= (uint)cache.Slots) throw new ArgumentOutOfRangeException(nameof(segments), $"slot {s.Slot} outside the cache's {cache.Slots} slots");
            if (s.StartPosition < 0 || s.StartPosition + s.Length > cache.Capacity)
                throw new ArgumentOutOfRangeException(nameof(segments), $"positions [{s.StartPosition}, {s.StartPosition + s.Length}) exceed the KV cache capacity {cache.Capacity}");
            total += s.Length;
        }
        if (total != tokenCount) throw new ArgumentException($"segments cover {total} tokens, {tokenCount} given");
        return total;
    }

    public void Dispose() => _inverseFrequencies.Dispose();
}
