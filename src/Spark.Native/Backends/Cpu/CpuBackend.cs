using System.Buffers;
using System.Numerics.Tensors;
using Spark.Native.Generation;
using Spark.Native.Tensors;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Backends.Cpu;

// Dimension legend: T rows (tokens), H hidden, I intermediate, V vocabulary, S cached positions,
// NH query heads, NKV key/value heads, HD head dim. F32 everywhere.

/// <summary>
/// The reference backend: F32 in native memory, span-first kernels on <see cref="TensorPrimitives"/>,
/// parallel over rows, a blocked GEMM. Every other backend is checked against this one.
/// </summary>
internal sealed partial class CpuBackend : IBackend
{
    public string Name => "cpu";

    public bool Supports(OpKind op) => true; // the reference implements the whole op set

    public DType ActivationDType => DType.F32;

    public Tensor Allocate(DType dtype, params int[] shape)
    {
        if (dtype != DType.F32) throw new NotSupportedException($"the CPU backend computes in F32; {dtype} tensors are converted when loaded");
        return new Tensor(this, new CpuMemory(Math.Max(1, Tensor.ShapeLength(shape))), 0, (int[])shape.Clone(), ownsMemory: true);
    }

    public void Upload(Tensor destination, ReadOnlySpan<float> source)
    {
        Check.Length(destination, source.Length, nameof(source));
        source.CopyTo(Data(destination));
    }

    public void Download(Span<float> destination, Tensor source)
    {
        Check.Length(source, destination.Length, nameof(destination));
        Data(source).CopyTo(destination);
    }

    public void Embedding(Tensor output, Tensor table, ReadOnlySpan<int> ids)
    {
        Check.Rank(table, 2, nameof(table));
        int v = table.Shape[0], h = table.Shape[1];
        Check.Shape(output, nameof(output), ids.Length, h);
        var o = Data(output);
        var w = Data(table);
        for (int t = 0; t < ids.Length; t++)
        {
            int id = ids[t];
            if ((uint)id >= (uint)v) throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} at position {t} is outside the vocabulary [0, {v})");
            w.Slice(id * h, h).CopyTo(o.Slice(t * h, h));
        }
    }

    public void RmsNorm(Tensor output, Tensor input, Tensor weight, float eps)
    {
        Check.Rank(input, 2, nameof(input));
        int h = input.Shape[1];
        Check.SameShape(input, output, nameof(output));
        Check.Shape(weight, nameof(weight), h);
        var mw = weight.Memory; long wo = weight.Offset;
        RowWise(output, input, (x, y) =>
        {
            float meanSquare = TensorPrimitives.SumOfSquares(x) / h;
            float scale = 1f / MathF.Sqrt(meanSquare + eps);
            TensorPrimitives.Multiply(x, scale, y);
            TensorPrimitives.Multiply(y, Span(mw, wo, h), y);
        });
    }

    public void AddRmsNorm(Tensor normed, Tensor residual, Tensor delta, Tensor weight, float eps)
    {
        Check.SameShape(residual, delta, nameof(delta));
        Check.SameShape(residual, normed, nameof(normed));
        Check.NotOverlapping(normed, residual, nameof(AddRmsNorm), nameof(normed), nameof(residual));
        Check.NotOverlapping(normed, delta, nameof(AddRmsNorm), nameof(normed), nameof(delta));
        Add(residual, residual, delta);
        RmsNorm(normed, residual, weight, eps);
    }

    public void MatMul(Tensor output, Tensor input, Tensor weight, Tensor? bias)
    {
        Check.Rank(input, 2, nameof(input));
        Check.Rank(weight, 2, nameof(weight));
        int m = input.Shape[0], k = input.Shape[1], n = weight.Shape[0];
        Check.Shape(weight, nameof(weight), n, k);
        Check.Shape(output, nameof(output), m, n);
        if (bias is not null) Check.Shape(bias, nameof(bias), n);
        CpuGemm.MatMul(Data(output), Data(input), Data(weight), bias is null ? default : Data(bias),
            m, n, k, Transpose.No, Transpose.Yes, GemmAccumulate.Overwrite);
    }

    public void Rope(Tensor x, ReadOnlySpan<int> positions, Tensor inverseFrequencies, int headDim) =>
        RotateHalf(nameof(Rope), x, positions, inverseFrequencies, headDim, sinSign: 1f);

    /// <summary>
    /// Rotates each (j, j + HD/2) pair of every head of x [T, heads·HD] by +angle (sinSign 1, the forward) or −angle
    /// (sinSign −1, the transpose of the rotation, which is what the backward applies to the gradient).
    /// </summary>
    private static void RotateHalf(string op, Tensor x, ReadOnlySpan<int> positions, Tensor inverseFrequencies, int headDim, float sinSign)
    {
        Check.Rank(x, 2, nameof(x));
        int rows = x.Shape[0], width = x.Shape[1], half = headDim / 2;
        if (headDim % 2 != 0 || width % headDim != 0)
            throw new ArgumentException($"{op}: width {width} is not a whole number of heads of even size {headDim}");
        Check.Shape(inverseFrequencies, nameof(inverseFrequencies), half);
        if (positions.Length != rows) throw new ArgumentException($"{op}: {positions.Length} positions for {rows} rows");
        var invFreq = Data(inverseFrequencies);
        var data = Data(x);
        Span<float> cos = half <= 512 ? stackalloc float[half] : new float[half];
        Span<float> sin = half <= 512 ? stackalloc float[half] : new float[half];
        for (int t = 0; t < rows; t++)
        {
            for (int j = 0; j < half; j++)
            {
                // angle = position × inv_freq in fp32, as transformers computes it; cos/sin of that angle
                float angle = positions[t] * invFreq[j];
                cos[j] = (float)Math.Cos(angle);
                sin[j] = sinSign * (float)Math.Sin(angle);
            }
            var row = data.Slice(t * width, width);
            for (int head = 0; head < width; head += headDim)
            {
                for (int j = 0; j < half; j++)
                {
                    float a = row[head + j], b = row[head + j + half];
                    row[head + j] = a * cos[j] - b * sin[j];
                    row[head + j + half] = b * cos[j] + a * sin[j];
                }
            }
        }
    }

    public void Attention(Tensor output, Tensor query, Tensor keys, Tensor values, ReadOnlySpan<AttentionSpan> spans, AttentionHeads heads)
    {
        AttentionChecks.Validate(nameof(Attention), query, keys, values, spans, heads, disjointKeys: false);
        Check.SameShape(query, output, nameof(output));
        int hd = heads.HeadDim, kvWidth = heads.KeyValueWidth, qWidth = heads.QueryWidth, group = heads.GroupSize;
        // one work item per (query row, head) of every span: its key base row and visible count
        int covered = 0, longest = 0;
        foreach (var s in spans) { covered += s.Length; longest = Math.Max(longest, s.KeyCount); }
        var rowOf = new int[covered];
        var keyBase = new int[covered];
        var visibleOf = new int[covered];
        int item0 = 0;
        foreach (var s in spans)
            for (int i = 0; i < s.Length; i++, item0++)
                (rowOf[item0], keyBase[item0], visibleOf[item0]) = (s.QueryRow + i, s.KeyRow, s.StartPosition + i + 1);
        float scale = 1f / MathF.Sqrt(hd);
        var mo = output.Memory; long oo = output.Offset;
        var mq = query.Memory; long qo = query.Offset;
        var mk = keys.Memory; long ko = keys.Offset;
        var mv = values.Memory; long vo = values.Offset;
        ParallelRows(covered * heads.QueryHeads, (long)longest * hd * 2, item =>
        {
            int r = item / heads.QueryHeads, head = item % heads.QueryHeads;
            int t = rowOf[r], kvHead = head / group, visible = visibleOf[r];
            long k0 = ko + (long)keyBase[r] * kvWidth + kvHead * hd, v0 = vo + (long)keyBase[r] * kvWidth + kvHead * hd;
            var q = Span(mq, qo + (long)t * qWidth + head * hd, hd);
            var o = Span(mo, oo + (long)t * qWidth + head * hd, hd);
            float[] rented = ArrayPool<float>.Shared.Rent(visible);
            var scores = rented.AsSpan(0, visible);
            for (int s = 0; s < visible; s++)
                scores[s] = TensorPrimitives.Dot(q, Span(mk, k0 + (long)s * kvWidth, hd)) * scale;
            StableSoftmax(scores, scores);
            o.Clear();
            for (int s = 0; s < visible; s++)
                TensorPrimitives.MultiplyAdd(Span(mv, v0 + (long)s * kvWidth, hd), scores[s], o, o);
            ArrayPool<float>.Shared.Return(rented);
        });
    }

    public void CopyRows(Tensor destination, Tensor source, ReadOnlySpan<int> destinationRows)
    {
        RowScatterChecks.Validate(nameof(CopyRows), destination, source, destinationRows);
        int c = source.Shape[1];
        var d = Data(destination);
        var s = Data(source);
        for (int i = 0; i < destinationRows.Length; i++)
            s.Slice(i * c, c).CopyTo(d.Slice(destinationRows[i] * c, c));
    }

    public void SwiGlu(Tensor output, Tensor gate, Tensor up)
    {
        Check.SameShape(gate, up, nameof(up));
        Check.SameShape(gate, output, nameof(output));
        const int chunk = 16384;
        var mo = output.Memory; long oo = output.Offset;
        var mg = gate.Memory; long go = gate.Offset;
        var mu = up.Memory; long uo = up.Offset;
        int n = checked((int)output.Length);
        ParallelRows((n + chunk - 1) / chunk, chunk * 8, c =>
        {
            int start = c * chunk, len = Math.Min(chunk, n - start);
            var gs = Span(mg, go + start, len);
            var us = Span(mu, uo + start, len);
            var os = Span(mo, oo + start, len);
            float[] rented = ArrayPool<float>.Shared.Rent(len);
            var sig = rented.AsSpan(0, len);
            TensorPrimitives.Sigmoid(gs, sig);
            TensorPrimitives.Multiply(sig, gs, sig);
            TensorPrimitives.Multiply(sig, us, os);
            ArrayPool<float>.Shared.Return(rented);
        });
    }

    public void Add(Tensor output, Tensor a, Tensor b)
    {
        Check.SameShape(a, b, nameof(b));
        Check.SameShape(a, output, nameof(output));
        TensorPrimitives.Add(Data(a), Data(b), Data(output));
    }

    public void Softmax(Tensor output, Tensor input)
    {
        Check.Rank(input, 2, nameof(input));
        Check.SameShape(input, output, nameof(output));
        RowWise(output, input, (x, y) => StableSoftmax(x, y));
    }

    public void LogSoftmax(Tensor output, Tensor input)
    {
        Check.Rank(input, 2, nameof(input));
        Check.SameShape(input, output, nameof(output));
        RowWise(output, input, (x, y) =>
        {
            float max = TensorPrimitives.Max(x);
            TensorPrimitives.Subtract(x, max, y);
            double sum = 0;
            foreach (float z in y) sum += Math.Exp(z);
            TensorPrimitives.Subtract(y, (float)Math.Log(sum), y);
        });
    }

    public void Copy(Tensor destination, Tensor source)
    {
        Check.Length(destination, source.Length, nameof(source));
        Data(source).CopyTo(Data(destination));
    }

    public void Sample(Span<int> tokens, Tensor logits, ReadOnlySpan<SamplingRow> rows)
    {
        Check.Rank(logits, 2, nameof(logits));
        int r = logits.Shape[0], v = logits.Shape[1];
        if (tokens.Length != r || rows.Length != r)
            throw new ArgumentException($"Sample: {r} logit rows, {tokens.Length} token slots and {rows.Length} sampling rows");
        var settings = rows.ToArray();
        var result = new int[r];
        var ml = logits.Memory; long lo = logits.Offset;
        ParallelRows(r, (long)v * 64, i =>
        {
            float[] probs = ArrayPool<float>.Shared.Rent(v);
            int[] order = ArrayPool<int>.Shared.Rent(v);
            result[i] = SamplingRule.Sample(Span(ml, lo + (long)i * v, v), settings[i], probs, order);
            ArrayPool<float>.Shared.Return(probs);
            ArrayPool<int>.Shared.Return(order);
        });
        result.CopyTo(tokens);
    }

    public void Dispose() { }

    private static Span<float> Data(Tensor t) => Span(t.Memory, t.Offset, t.Length);

    private static Span<float> Span(DeviceMemory memory, long offset, long length) => ((CpuMemory)memory).Span(offset, length);

    /// <summary>
    /// y = exp(x − max x) / Σ exp(x − max x). Subtracting the max keeps large scores from overflowing to ∞/∞ and
    /// very negative ones from underflowing to 0/0 (<see cref="TensorPrimitives.SoftMax"/> does not).
    /// </summary>
    private static void StableSoftmax(ReadOnlySpan<float> x, Span<float> y)
    {
        float max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, y);
        TensorPrimitives.Exp(y, y);
        TensorPrimitives.Divide(y, TensorPrimitives.Sum(y), y);
    }

    private delegate void RowKernel(ReadOnlySpan<float> input, Span<float> output);

    /// <summary>Applies a kernel to each row of input [R, C] and output [R, C] (same shape), rows in parallel.</summary>
    private static void RowWise(Tensor output, Tensor input, RowKernel kernel)
    {
        int c = input.Shape[1];
        var mo = output.Memory; long oo = output.Offset;
        var mi = input.Memory; long io = input.Offset;
        ParallelRows(input.Shape[0], (long)c * 4, r => kernel(Span(mi, io + (long)r * c, c), Span(mo, oo + (long)r * c, c)));
    }

    /// <summary>Runs body(i) for i in [0, count), in parallel when the work (count × bytesPerItem) is worth it.</summary>
    private static void ParallelRows(int count, long bytesPerItem, Action<int> body)
    {
        if (count == 1 || count * bytesPerItem < 1 << 16)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        // on the ambient scheduler (TaskScheduler.Default outside a task), so a caller can bound the threads: under a
        // scheduler of maximum concurrency 1 every loop runs on one thread (the determinism tests rely on it)
        Parallel.For(0, count, new ParallelOptions { TaskScheduler = TaskScheduler.Current }, body);
    }
}
