using System.Buffers;
using System.Numerics.Tensors;
using Spark.Native.Tensors;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Backends.Cpu;

// Training ops of the CPU backend. Dimension legend as in CpuBackend.cs (T rows, H hidden, I intermediate,
// V vocabulary, S cached positions, NH/NKV heads, HD head dim).
// Backward ops add (+=) into their gradient outputs; CrossEntropy overwrites its gradient.
// Determinism: every sum that crosses parallel work items is done by one item in a fixed order (or by the GEMM,
// which sums each element in a fixed order), so results do not depend on the thread count.
internal sealed partial class CpuBackend
{
    /// <summary>Elements per work item of the element-wise ops (and per partial sum of <see cref="SumOfSquares"/>).</summary>
    private const int ElementChunk = 16384;

    public void EmbeddingBackward(Tensor tableGrad, Tensor outputGrad, ReadOnlySpan<int> ids)
    {
        Check.Rank(tableGrad, 2, nameof(tableGrad));
        int v = tableGrad.Shape[0], h = tableGrad.Shape[1];
        Check.Shape(outputGrad, nameof(outputGrad), ids.Length, h);
        for (int t = 0; t < ids.Length; t++)
            if ((uint)ids[t] >= (uint)v) throw new ArgumentOutOfRangeException(nameof(ids), $"token id {ids[t]} at position {t} is outside the vocabulary [0, {v})");
        var g = Data(tableGrad);
        var dy = Data(outputGrad);
        // sequential over t: repeated ids are summed in row order
        for (int t = 0; t < ids.Length; t++)
        {
            var row = g.Slice(ids[t] * h, h);
            TensorPrimitives.Add(row, dy.Slice(t * h, h), row);
        }
    }

    public void RmsNormBackward(Tensor inputGrad, Tensor weightGrad, Tensor outputGrad, Tensor input, Tensor weight, float eps)
    {
        Check.Rank(input, 2, nameof(input));
        int rows = input.Shape[0], h = input.Shape[1];
        Check.SameShape(input, inputGrad, nameof(inputGrad));
        Check.SameShape(input, outputGrad, nameof(outputGrad));
        Check.Shape(weight, nameof(weight), h);
        Check.Shape(weightGrad, nameof(weightGrad), h);
        var rs = new float[rows];
        var mx = input.Memory; long xo = input.Offset;
        var mdy = outputGrad.Memory; long dyo = outputGrad.Offset;
        var mdx = inputGrad.Memory; long dxo = inputGrad.Offset;
        var mw = weight.Memory; long wo = weight.Offset;
        // dx += r·(w⊙dy) − x·r³·mean(w⊙dy⊙x), with r = rsqrt(mean(x²) + eps) as in the forward; rows in parallel
        ParallelRows(rows, (long)h * 12, t =>
        {
            var x = Span(mx, xo + (long)t * h, h);
            var dy = Span(mdy, dyo + (long)t * h, h);
            var dx = Span(mdx, dxo + (long)t * h, h);
            float r = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(x) / h + eps);
            rs[t] = r;
            float[] rented = ArrayPool<float>.Shared.Rent(h);
            var wdy = rented.AsSpan(0, h);
            TensorPrimitives.Multiply(Span(mw, wo, h), dy, wdy);
            float c = TensorPrimitives.Dot(wdy, x) / h * r * r * r;
            TensorPrimitives.MultiplyAdd(wdy, r, dx, dx);
            TensorPrimitives.MultiplyAdd(x, -c, dx, dx);
            ArrayPool<float>.Shared.Return(rented);
        });
        // dw += Σ_t dy·x·r, summed over t in order
        var dw = Data(weightGrad);
        var tmp = new float[h];
        for (int t = 0; t < rows; t++)
        {
            TensorPrimitives.Multiply(Span(mdy, dyo + (long)t * h, h), Span(mx, xo + (long)t * h, h), tmp);
            TensorPrimitives.MultiplyAdd(tmp, rs[t], dw, dw);
        }
    }

    public void MatMulBackward(Tensor? inputGrad, Tensor weightGrad, Tensor? biasGrad, Tensor outputGrad, Tensor input, Tensor weight)
    {
        var (m, n, k) = MatMulChecks.Backward(inputGrad, weightGrad, biasGrad, outputGrad, input, weight);
        var dy = Data(outputGrad);
        // dX [T,K] += dY [T,N] · W [N,K]
        if (inputGrad is not null)
            CpuGemm.MatMul(Data(inputGrad), dy, Data(weight), default, m, k, n, Transpose.No, Transpose.No, GemmAccumulate.AddToOutput);
        // dW [N,K] += dYᵀ [N,T] · X [T,K]
        CpuGemm.MatMul(Data(weightGrad), dy, Data(input), default, n, k, m, Transpose.Yes, Transpose.No, GemmAccumulate.AddToOutput);
        if (biasGrad is not null)
        {
            var db = Data(biasGrad);
            for (int t = 0; t < m; t++) TensorPrimitives.Add(db, dy.Slice(t * n, n), db);
        }
    }

    // The forward rotates by +angle; its transpose (= inverse) rotates by −angle, with the same fp32 angle.
    public void RopeBackward(Tensor xGrad, ReadOnlySpan<int> positions, Tensor inverseFrequencies, int headDim) =>
        RotateHalf(nameof(RopeBackward), xGrad, positions, inverseFrequencies, headDim, sinSign: -1f);

    public void AttentionBackward(Tensor queryGrad, Tensor keysGrad, Tensor valuesGrad, Tensor outputGrad,
        Tensor query, Tensor keys, Tensor values, ReadOnlySpan<AttentionSpan> spans, AttentionHeads heads)
    {
        AttentionChecks.Validate(nameof(AttentionBackward), query, keys, values, spans, heads, disjointKeys: true);
        Check.SameShape(query, queryGrad, nameof(queryGrad));
        Check.SameShape(query, outputGrad, nameof(outputGrad));
        Check.SameShape(keys, keysGrad, nameof(keysGrad));
        Check.SameShape(keys, valuesGrad, nameof(valuesGrad));
        int hd = heads.HeadDim, kvWidth = heads.KeyValueWidth, qWidth = heads.QueryWidth, group = heads.GroupSize;
        float scale = 1f / MathF.Sqrt(hd);
        var spanList = spans.ToArray();
        int longest = 0;
        long work = 0;
        foreach (var s in spanList) { longest = Math.Max(longest, s.KeyCount); work += (long)s.Length * s.KeyCount; }
        var mq = query.Memory; long qo = query.Offset;
        var mk = keys.Memory; long ko = keys.Offset;
        var mv = values.Memory; long vo = values.Offset;
        var mdo = outputGrad.Memory; long doo = outputGrad.Offset;
        var mdq = queryGrad.Memory; long dqo = queryGrad.Offset;
        var mdk = keysGrad.Memory; long dko = keysGrad.Offset;
        var mdv = valuesGrad.Memory; long dvo = valuesGrad.Offset;
        // One work item per kv head: it alone writes dK/dV of that head and dQ of the query heads it serves, in a fixed
        // (span, row, head, position) order, so the result does not depend on the thread count.
        ParallelRows(heads.KeyValueHeads, work * group * hd * 4, kvHead =>
        {
            float[] rented = ArrayPool<float>.Shared.Rent(2 * Math.Max(1, longest));
            foreach (var span in spanList)
                for (int t = 0; t < span.Length; t++)
                {
                    int visible = span.StartPosition + t + 1;
                    var p = rented.AsSpan(0, visible);
                    var dp = rented.AsSpan(longest, visible);
                    long kvBase = (long)span.KeyRow * kvWidth + kvHead * hd;
                    for (int head = kvHead * group; head < (kvHead + 1) * group; head++)
                    {
                        long qOffset = (long)(span.QueryRow + t) * qWidth + head * hd;
                        var q = Span(mq, qo + qOffset, hd);
                        var dOut = Span(mdo, doo + qOffset, hd);
                        var dq = Span(mdq, dqo + qOffset, hd);
                        // recompute the probabilities exactly as the forward does
                        for (int s = 0; s < visible; s++)
                            p[s] = TensorPrimitives.Dot(q, Span(mk, ko + kvBase + (long)s * kvWidth, hd)) * scale;
                        StableSoftmax(p, p);
                        for (int s = 0; s < visible; s++)
                            dp[s] = TensorPrimitives.Dot(dOut, Span(mv, vo + kvBase + (long)s * kvWidth, hd));
                        float pdp = TensorPrimitives.Dot(p, dp);
                        for (int s = 0; s < visible; s++)
                        {
                            long kvOffset = kvBase + (long)s * kvWidth;
                            var dv = Span(mdv, dvo + kvOffset, hd);
                            var dk = Span(mdk, dko + kvOffset, hd);
                            float dScore = p[s] * (dp[s] - pdp) * scale; // ∂L/∂(q·k), the 1/√HD folded in
                            TensorPrimitives.MultiplyAdd(dOut, p[s], dv, dv);
                            TensorPrimitives.MultiplyAdd(Span(mk, ko + kvOffset, hd), dScore, dq, dq);
                            TensorPrimitives.MultiplyAdd(q, dScore, dk, dk);
                        }
                    }
                }
            ArrayPool<float>.Shared.Return(rented);
        });
    }

    public void SwiGluBackward(Tensor gateGrad, Tensor upGrad, Tensor outputGrad, Tensor gate, Tensor up)
    {
        Check.SameShape(gate, up, nameof(up));
        Check.SameShape(gate, outputGrad, nameof(outputGrad));
        Check.SameShape(gate, gateGrad, nameof(gateGrad));
        Check.SameShape(gate, upGrad, nameof(upGrad));
        var mg = gate.Memory; long go = gate.Offset;
        var mu = up.Memory; long uo = up.Offset;
        var mdy = outputGrad.Memory; long dyo = outputGrad.Offset;
        var mdg = gateGrad.Memory; long dgo = gateGrad.Offset;
        var mdu = upGrad.Memory; long duo = upGrad.Offset;
        ParallelChunks(gate.Length, (start, len) =>
        {
            var g = Span(mg, go + start, len);
            var u = Span(mu, uo + start, len);
            var dy = Span(mdy, dyo + start, len);
            var dg = Span(mdg, dgo + start, len);
            var du = Span(mdu, duo + start, len);
            float[] rented = ArrayPool<float>.Shared.Rent(len);
            var sig = rented.AsSpan(0, len);
            TensorPrimitives.Sigmoid(g, sig);
            for (int i = 0; i < len; i++)
            {
                // silu(g) = g·σ(g); silu'(g) = σ(g)·(1 + g·(1 − σ(g)))
                float s = sig[i];
                du[i] += dy[i] * g[i] * s;
                dg[i] += dy[i] * u[i] * s * (1f + g[i] * (1f - s));
            }
            ArrayPool<float>.Shared.Return(rented);
        });
    }

    public void CrossEntropy(Tensor losses, Tensor logitsGrad, Tensor logits, ReadOnlySpan<int> targets, float gradScale)
    {
        var (rows, v) = CrossEntropyChecks.Validate(losses, logitsGrad, logits, targets);
        var target = targets.ToArray();
        var loss = Data(losses);
        var ml = logits.Memory; long lo = logits.Offset;
        var mg = logitsGrad.Memory; long gro = logitsGrad.Offset;
        var lossValues = new float[rows];
        ParallelRows(rows, (long)v * 16, t =>
        {
            var x = Span(ml, lo + (long)t * v, v);
            var g = Span(mg, gro + (long)t * v, v); // may be x itself: x is read before g is written
            if (target[t] < 0)
            {
                lossValues[t] = 0;
                g.Clear();
                return;
            }
            float max = TensorPrimitives.Max(x);
            float targetLogit = x[target[t]];
            TensorPrimitives.Subtract(x, max, g);
            TensorPrimitives.Exp(g, g);
            double sum = 0;
            foreach (float e in g) sum += e;
            lossValues[t] = (float)(max + Math.Log(sum) - targetLogit); // log Σ exp(x) − x[target]
            TensorPrimitives.Multiply(g, (float)(gradScale / sum), g);
            g[target[t]] -= gradScale;
        });
        lossValues.CopyTo(loss);
    }

    public void Fill(Tensor tensor, float value)
    {
        var m = tensor.Memory; long o = tensor.Offset;
        ParallelChunks(tensor.Length, (start, len) => Span(m, o + start, len).Fill(value)); // chunks: arenas pass 2^31 elements
    }

    public double SumOfSquares(Tensor x)
    {
        var mx = x.Memory; long xo = x.Offset;
        long n = x.Length;
        // fixed chunks summed in float64, then the partial sums added in chunk order: independent of the thread count
        var partial = new double[(n + ElementChunk - 1) / ElementChunk];
        ParallelChunks(n, (start, len) =>
        {
            double sum = 0;
            foreach (float e in Span(mx, xo + start, len)) sum += (double)e * e;
            partial[start / ElementChunk] = sum;
        });
        double total = 0;
        foreach (double s in partial) total += s;
        return total;
    }

    public void AdamW(Tensor parameters, Tensor? master, Tensor gradients, Tensor firstMoment, Tensor secondMoment, AdamWStep step)
    {
        Check.SameShape(parameters, gradients, nameof(gradients));
        Check.SameShape(parameters, firstMoment, nameof(firstMoment));
        Check.SameShape(parameters, secondMoment, nameof(secondMoment));
        if (master is not null) Check.SameShape(parameters, master, nameof(master));
        if (step.Step < 1) throw new ArgumentOutOfRangeException(nameof(step), $"AdamW step {step.Step} must count from 1");
        // bias corrections 1 − β^step: the powers in float64 (β2^step for β2 = 0.999 loses digits in float32)
        float correction1 = (float)(1 - Math.Pow(step.Beta1, step.Step));
        float correction2 = (float)(1 - Math.Pow(step.Beta2, step.Step));
        float lr = step.LearningRate, b1 = step.Beta1, b2 = step.Beta2, eps = step.Epsilon, wd = step.WeightDecay, gs = step.GradScale;
        // the update runs on the master copy when there is one; F32 parameters then receive it unchanged
        var target = master ?? parameters;
        var mp = target.Memory; long po = target.Offset;
        var mg = gradients.Memory; long go = gradients.Offset;
        var mm = firstMoment.Memory; long mo = firstMoment.Offset;
        var mv = secondMoment.Memory; long vo = secondMoment.Offset;
        ParallelChunks(parameters.Length, (start, len) =>
        {
            var p = Span(mp, po + start, len);
            var g = Span(mg, go + start, len);
            var m = Span(mm, mo + start, len);
            var v = Span(mv, vo + start, len);
            for (int i = 0; i < len; i++)
            {
                float grad = g[i] * gs;
                m[i] = b1 * m[i] + (1 - b1) * grad;
                v[i] = b2 * v[i] + (1 - b2) * grad * grad;
                float mHat = m[i] / correction1, vHat = v[i] / correction2;
                p[i] -= lr * (mHat / (MathF.Sqrt(vHat) + eps) + wd * p[i]);
            }
        });
        if (master is not null) Copy(parameters, master);
    }

    public void GroupAdvantage(Tensor advantages, Tensor rewards, int groupSize, AdvantageNormalization normalization, float epsilon)
    {
        AdvantageChecks.Validate(nameof(GroupAdvantage), advantages, rewards, groupSize);
        var a = Data(advantages);
        var r = Data(rewards);
        // statistics in float64 over each group, in order (N is a batch of rollouts: small)
        double batchStd = normalization == AdvantageNormalization.BatchStd ? StdDev(r) : 0;
        for (int g = 0; g < r.Length; g += groupSize)
        {
            var group = r.Slice(g, groupSize);
            double mean = Mean(group);
            double scale = normalization switch
            {
                AdvantageNormalization.GroupStd => 1 / (StdDev(group) + epsilon),
                AdvantageNormalization.BatchStd => 1 / (batchStd + epsilon),
                _ => 1,
            };
            for (int i = 0; i < groupSize; i++) a[g + i] = (float)((group[i] - mean) * scale);
        }

        static double Mean(ReadOnlySpan<float> x)
        {
            double sum = 0;
            foreach (float e in x) sum += e;
            return sum / x.Length;
        }

        // unbiased (Bessel); a single value has std 0
        static double StdDev(ReadOnlySpan<float> x)
        {
            if (x.Length < 2) return 0;
            double mean = Mean(x), sum = 0;
            foreach (float e in x) sum += (e - mean) * (e - mean);
            return Math.Sqrt(sum / (x.Length - 1));
        }
    }

    /// <summary>Runs body(start, length) over [0, n) in chunks of <see cref="ElementChunk"/>, in parallel when worth it.</summary>
    private static void ParallelChunks(long n, Action<long, int> body)
    {
        int chunks = checked((int)((n + ElementChunk - 1) / ElementChunk));
        ParallelRows(chunks, ElementChunk * 8, c =>
        {
            long start = (long)c * ElementChunk;
            body(start, (int)Math.Min(ElementChunk, n - start));
        });
    }
}
