using System.Buffers;
using System.Numerics.Tensors;
using Spark.Native.Tensors;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Backends.Cpu;

// Fused log-prob gather (the reference). Dimension legend: T tokens, H hidden, V vocabulary; Tc rows of a token block
// (≤ LogProbTokenBlock), Vc ids of a vocabulary chunk (≤ LogProbVocabChunk). z = hidden · weightᵀ / τ is computed one
// [Tc, Vc] block at a time with the blocked GEMM (4 MiB at most) and never as a whole [T, V] matrix.
//
// Online log-sum-exp per row over the chunks, in the chunk order: m the running max (float, an element of z),
// s = Σ exp(z − m) and w = Σ exp(z − m)·(z − m) in float64. Shifting w by m gives entropy = log s − w/s without
// cancelling against m (large logits), and log-prob = (z[target] − m) − log s.
//
// Determinism: the GEMM sums each element in a fixed order, each row's state is updated by one work item, chunk by
// chunk in order, and the gradients are added by the GEMM in (token block, vocabulary chunk) order: results do not
// depend on the thread count.
internal sealed partial class CpuBackend
{
    /// <summary>Vocabulary ids per chunk of z.</summary>
    private const int LogProbVocabChunk = 4096;

    /// <summary>Token rows per block of z: a block is at most 256 × 4096 floats (4 MiB).</summary>
    private const int LogProbTokenBlock = 256;

    public void LogProbGather(Tensor logProbs, Tensor entropies, Tensor logSumExp, Tensor hidden, Tensor weight,
        ReadOnlySpan<int> targets, float temperature)
    {
        var (t, h, v) = LogProbChecks.Forward(nameof(LogProbGather), ActivationDType, logProbs, entropies, logSumExp, hidden, weight,
            targets, temperature);
        if (t == 0) return;
        var target = targets.ToArray();
        var rowMax = new float[t];
        var rowSum = new double[t]; // 0: no chunk seen yet
        var rowShifted = new double[t];
        var targetLogit = new float[t];
        var z = new float[Math.Min(t, LogProbTokenBlock) * Math.Min(v, LogProbVocabChunk)];
        ForEachLogitBlock(z, hidden, weight, t, h, v, 1f / temperature, (t0, tc, v0, vc) =>
            ParallelRows(tc, (long)vc * 8, r =>
            {
                int row = t0 + r;
                var zr = z.AsSpan(r * vc, vc);
                float[] rented = ArrayPool<float>.Shared.Rent(2 * vc);
                var shifted = rented.AsSpan(0, vc);
                var e = rented.AsSpan(vc, vc);
                // the new max first, rescaling what the earlier chunks summed
                float chunkMax = TensorPrimitives.Max(zr);
                float m = rowMax[row];
                double s = rowSum[row], w = rowShifted[row];
                if (s == 0) m = chunkMax;
                else if (chunkMax > m || float.IsNaN(chunkMax))
                {
                    double a = Math.Exp((double)m - chunkMax);
                    w = a * (w + ((double)m - chunkMax) * s);
                    s *= a;
                    m = chunkMax;
                }
                TensorPrimitives.Subtract(zr, m, shifted); // z − m ≤ 0
                TensorPrimitives.Exp(shifted, e);
                rowSum[row] = s + TensorPrimitives.Sum(e);
                rowShifted[row] = w + TensorPrimitives.Dot(e, shifted);
                rowMax[row] = m;
                int local = target[row] - v0;
                if (local >= 0 && local < vc) targetLogit[row] = zr[local];
                ArrayPool<float>.Shared.Return(rented);
            }));
        var lp = Data(logProbs);
        var ent = Data(entropies);
        var lse = Data(logSumExp);
        for (int row = 0; row < t; row++)
        {
            double logS = Math.Log(rowSum[row]);
            lse[row] = (float)(rowMax[row] + logS);
            ent[row] = (float)(logS - rowShifted[row] / rowSum[row]);
            lp[row] = target[row] < 0 ? 0f : (float)(((double)targetLogit[row] - rowMax[row]) - logS);
        }
    }

    public void LogProbGatherBackward(Tensor hiddenGrad, Tensor weightGrad, Tensor logProbGrad, Tensor? entropyGrad,
        Tensor logSumExp, Tensor entropies, Tensor hidden, Tensor weight, ReadOnlySpan<int> targets, float temperature)
    {
        var (t, h, v) = LogProbChecks.Backward(nameof(LogProbGatherBackward), ActivationDType, hiddenGrad, weightGrad, logProbGrad,
            entropyGrad, logSumExp, entropies, hidden, weight, targets, temperature);
        if (t == 0) return;
        var target = targets.ToArray();
        var glp = Data(logProbGrad).ToArray();
        var gh = entropyGrad is null ? null : Data(entropyGrad).ToArray();
        var lse = Data(logSumExp).ToArray();
        var ent = Data(entropies).ToArray();
        float invTemperature = 1f / temperature;
        var mx = hidden.Memory; long xo = hidden.Offset;
        var mw = weight.Memory; long wo = weight.Offset;
        var mdx = hiddenGrad.Memory; long dxo = hiddenGrad.Offset;
        var mdw = weightGrad.Memory; long dwo = weightGrad.Offset;
        var z = new float[Math.Min(t, LogProbTokenBlock) * Math.Min(v, LogProbVocabChunk)];
        ForEachLogitBlock(z, hidden, weight, t, h, v, invTemperature, (t0, tc, v0, vc) =>
        {
            // z → dz/τ in place: with log p = z − lse, dz = g_lp·(onehot − p) − g_H·p·(log p + H), log p + H = z − E[z]
            ParallelRows(tc, (long)vc * 16, r =>
            {
                int row = t0 + r;
                var zr = z.AsSpan(r * vc, vc);
                float[] rented = ArrayPool<float>.Shared.Rent(2 * vc);
                var logP = rented.AsSpan(0, vc);
                var p = rented.AsSpan(vc, vc);
                float g = target[row] < 0 ? 0f : glp[row];
                TensorPrimitives.Subtract(zr, lse[row], logP);
                TensorPrimitives.Exp(logP, p);
                TensorPrimitives.Multiply(p, -g * invTemperature, zr);
                if (gh is not null)
                {
                    TensorPrimitives.Add(logP, ent[row], logP);
                    TensorPrimitives.Multiply(logP, p, logP);
                    TensorPrimitives.MultiplyAdd(logP, -gh[row] * invTemperature, zr, zr);
                }
                int local = target[row] - v0;
                if (local >= 0 && local < vc) zr[local] += g * invTemperature;
                ArrayPool<float>.Shared.Return(rented);
            });
            var dz = z.AsSpan(0, tc * vc);
            // hiddenGrad [Tc, H] += dz [Tc, Vc] · W_chunk [Vc, H]
            CpuGemm.MatMul(Span(mdx, dxo + (long)t0 * h, (long)tc * h), dz, Span(mw, wo + (long)v0 * h, (long)vc * h), default,
                tc, h, vc, Transpose.No, Transpose.No, GemmAccumulate.AddToOutput);
            // weightGrad chunk [Vc, H] += dzᵀ [Vc, Tc] · hidden [Tc, H]
            CpuGemm.MatMul(Span(mdw, dwo + (long)v0 * h, (long)vc * h), dz, Span(mx, xo + (long)t0 * h, (long)tc * h), default,
                vc, h, tc, Transpose.Yes, Transpose.No, GemmAccumulate.AddToOutput);
        });
    }

    /// <summary>
    /// For each token block (Tc rows from t0) and, within it, each vocabulary chunk (Vc ids from v0), in order:
    /// z [Tc, Vc] (dense, in <paramref name="z"/>) = hidden[t0 …] · weight[v0 …]ᵀ · invTemperature, then body(t0, Tc, v0, Vc).
    /// </summary>
    private static void ForEachLogitBlock(float[] z, Tensor hidden, Tensor weight, int t, int h, int v, float invTemperature,
        Action<int, int, int, int> body)
    {
        var mx = hidden.Memory; long xo = hidden.Offset;
        var mw = weight.Memory; long wo = weight.Offset;
        for (int t0 = 0; t0 < t; t0 += LogProbTokenBlock)
        {
            int tc = Math.Min(LogProbTokenBlock, t - t0);
            for (int v0 = 0; v0 < v; v0 += LogProbVocabChunk)
            {
                int vc = Math.Min(LogProbVocabChunk, v - v0);
                var block = z.AsSpan(0, tc * vc);
                CpuGemm.MatMul(block, Span(mx, xo + (long)t0 * h, (long)tc * h), Span(mw, wo + (long)v0 * h, (long)vc * h), default,
                    tc, vc, h, Transpose.No, Transpose.Yes, GemmAccumulate.Overwrite);
                TensorPrimitives.Multiply(block, invTemperature, block);
                body(t0, tc, v0, vc);
            }
        }
    }
}
