using Spark.Native.Models;

namespace Spark.Native.Tests.Fixtures;

/// <summary>
/// A second, independent implementation of the Llama/Qwen2 forward in float64 with plain loops, written from the
/// transformers semantics in formats.md. Slow and obvious on purpose: it is the oracle for the engine's forward.
/// </summary>
internal sealed class ReferenceModel(ModelConfig c, Func<string, double[]?> weight)
{
    public ReferenceModel(ModelConfig c, IReadOnlyDictionary<string, (long[] Shape, float[] Data)> w)
        : this(c, name => w.TryGetValue(name, out var t) ? t.Data.Select(x => (double)x).ToArray() : null) { }

    private double[] W(string name) => weight(name) ?? throw new KeyNotFoundException(name);
    private double[]? B(string name) => weight(name);

    /// <summary>Mean next-token cross-entropy over all predictions of the sequences.</summary>
    public double Loss(IReadOnlyList<int[]> sequences)
    {
        double sum = 0;
        int count = 0;
        foreach (var ids in sequences)
        {
            var logits = Forward(ids);
            for (int t = 0; t + 1 < ids.Length; t++)
            {
                double max = logits[t].Max();
                double z = logits[t].Sum(v => Math.Exp(v - max));
                sum += Math.Log(z) + max - logits[t][ids[t + 1]];
                count++;
            }
        }
        return sum / count;
    }

    /// <summary>Logits [T][V] for ids processed from position 0.</summary>
    public double[][] Forward(int[] ids)
    {
        int t = ids.Length, h = c.HiddenSize, hd = c.HeadDim, nh = c.HeadCount, nkv = c.KeyValueHeadCount;
        var emb = W("model.embed_tokens.weight");
        var x = new double[t][];
        for (int i = 0; i < t; i++) x[i] = emb.AsSpan(ids[i] * h, h).ToArray();
        var invFreq = InverseFrequencies();
        for (int l = 0; l < c.LayerCount; l++)
        {
            string p = $"model.layers.{l}.";
            var n1 = x.Select(r => RmsNorm(r, W(p + "input_layernorm.weight"))).ToArray();
            var q = n1.Select(r => Linear(r, W(p + "self_attn.q_proj.weight"), B(p + "self_attn.q_proj.bias"), nh * hd)).ToArray();
            var k = n1.Select(r => Linear(r, W(p + "self_attn.k_proj.weight"), B(p + "self_attn.k_proj.bias"), nkv * hd)).ToArray();
            var v = n1.Select(r => Linear(r, W(p + "self_attn.v_proj.weight"), B(p + "self_attn.v_proj.bias"), nkv * hd)).ToArray();
            for (int i = 0; i < t; i++)
            {
                Rope(q[i], i, invFreq, hd);
                Rope(k[i], i, invFreq, hd);
            }
            var att = new double[t][];
            for (int i = 0; i < t; i++)
            {
                att[i] = new double[nh * hd];
                for (int head = 0; head < nh; head++)
                {
                    int g = head / (nh / nkv);
                    var scores = new double[i + 1];
                    for (int s = 0; s <= i; s++)
                    {
                        double dot = 0;
                        for (int d = 0; d < hd; d++) dot += q[i][head * hd + d] * k[s][g * hd + d];
                        scores[s] = dot / Math.Sqrt(hd);
                    }
                    double max = scores.Max(), sum = 0;
                    for (int s = 0; s <= i; s++) sum += scores[s] = Math.Exp(scores[s] - max);
                    for (int s = 0; s <= i; s++)
                        for (int d = 0; d < hd; d++) att[i][head * hd + d] += scores[s] / sum * v[s][g * hd + d];
                }
            }
            for (int i = 0; i < t; i++)
            {
                var o = Linear(att[i], W(p + "self_attn.o_proj.weight"), B(p + "self_attn.o_proj.bias"), h);
                for (int d = 0; d < h; d++) x[i][d] += o[d];
                var n2 = RmsNorm(x[i], W(p + "post_attention_layernorm.weight"));
                var gate = Linear(n2, W(p + "mlp.gate_proj.weight"), B(p + "mlp.gate_proj.bias"), c.IntermediateSize);
                var up = Linear(n2, W(p + "mlp.up_proj.weight"), B(p + "mlp.up_proj.bias"), c.IntermediateSize);
                for (int j = 0; j < gate.Length; j++) gate[j] = gate[j] / (1 + Math.Exp(-gate[j])) * up[j];
                var down = Linear(gate, W(p + "mlp.down_proj.weight"), B(p + "mlp.down_proj.bias"), h);
                for (int d = 0; d < h; d++) x[i][d] += down[d];
            }
        }
        var head0 = W(c.TieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight");
        return x.Select(r => Linear(RmsNorm(r, W("model.norm.weight")), head0, null, c.VocabSize)).ToArray();
    }

    private double[] RmsNorm(double[] x, double[] weight)
    {
        double ms = x.Sum(v => v * v) / x.Length;
        double r = 1 / Math.Sqrt(ms + c.RmsNormEps);
        return x.Select((v, i) => v * r * weight[i]).ToArray();
    }

    private static double[] Linear(double[] x, double[] weight, double[]? bias, int outFeatures)
    {
        var y = new double[outFeatures];
        for (int o = 0; o < outFeatures; o++)
        {
            double s = bias?[o] ?? 0;
            for (int i = 0; i < x.Length; i++) s += x[i] * weight[o * x.Length + i];
            y[o] = s;
        }
        return y;
    }

    private double[] InverseFrequencies()
    {
        int half = c.HeadDim / 2;
        var inv = new double[half];
        for (int j = 0; j < half; j++)
        {
            inv[j] = Math.Pow(c.RopeTheta, -2.0 * j / c.HeadDim);
            if (c.RopeScaling is { } s)
            {
                double wl = 2 * Math.PI / inv[j];
                double low = s.OriginalMaxPositions / s.LowFrequencyFactor, high = s.OriginalMaxPositions / s.HighFrequencyFactor;
                if (wl > low) inv[j] /= s.Factor;
                else if (!(wl < high))
                {
                    double smooth = (s.OriginalMaxPositions / wl - s.LowFrequencyFactor) / (s.HighFrequencyFactor - s.LowFrequencyFactor);
                    inv[j] = (1 - smooth) * inv[j] / s.Factor + smooth * inv[j];
                }
            }
        }
        return inv;
    }

    private static void Rope(double[] x, int position, double[] inv, int hd)
    {
        int half = hd / 2;
        for (int head = 0; head < x.Length; head += hd)
            for (int j = 0; j < half; j++)
            {
                double a = x[head + j], b = x[head + j + half];
                double cos = Math.Cos(position * inv[j]), sin = Math.Sin(position * inv[j]);
                x[head + j] = a * cos - b * sin;
                x[head + j + half] = b * cos + a * sin;
            }
    }
}
