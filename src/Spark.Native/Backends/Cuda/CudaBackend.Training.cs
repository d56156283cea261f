using Spark.Native.Interop;
using Spark.Native.Tensors;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Backends.Cuda;

// Training ops: backward kernels, cross-entropy, fills, reductions, AdamW, group advantages; and the KV-cache row scatter.
// Element types as IBackend's rules: activations, weights and activation gradients BF16; parameter gradients, moments,
// master weights, losses, rewards and advantages F32. Backward ops add into bf16 gradients by read-add-round (one
// rounding per op and element). Every sum has a fixed order for a given shape (no float atomics): results do not
// change from run to run. Written without a GPU: compile-checked, checked against the CPU reference by
// CudaBackendGradientTests and CudaBackendOpsTests on a machine that has one.
internal sealed unsafe partial class CudaBackend
{
    private static (string File, string[] Functions)[] TrainingKernels =>
    [
        ("embedding.cu", ["embedding_backward"]),
        ("rmsnorm.cu", ["rmsnorm_backward"]),
        ("rope.cu", ["rope_backward"]),
        ("swiglu.cu", ["swiglu_backward"]),
        ("crossentropy.cu", ["cross_entropy_forward_backward"]),
        ("adamw.cu", ["adamw_step", "adamw_step_f32", "adamw_step_stochastic"]),
        ("reduce.cu", ["sum_squares_partial_f32", "sum_squares_partial_bf16", "sum_partials", "column_sums_partial_bf16", "column_sums_add"]),
        ("rows.cu", ["fill_f32", "fill_bf16", "copy_rows"]),
        ("advantage.cu", ["reward_std", "group_advantage"]),
    ];

    private static OpKind[] TrainingOps =>
    [
        OpKind.EmbeddingBackward, OpKind.RmsNormBackward, OpKind.MatMulBackward, OpKind.RopeBackward, OpKind.SwiGluBackward,
        OpKind.CrossEntropy, OpKind.GroupAdvantage, OpKind.Fill, OpKind.SumOfSquares, OpKind.AdamW, OpKind.CopyRows,
    ];

    /// <summary>Row partitions of the RMSNorm weight gradient and of column sums: a function of the shape only.</summary>
    private const int MaxPartitions = 512;

    private CudaMemoryHandle? _scratch;
    private long _scratchBytes;

    public void EmbeddingBackward(Tensor tableGrad, Tensor outputGrad, ReadOnlySpan<int> ids)
    {
        ulong g = Pointer(tableGrad, DType.F32, nameof(EmbeddingBackward), nameof(tableGrad), "keeps parameter gradients in F32");
        ulong dy = Activation(outputGrad, nameof(EmbeddingBackward), nameof(outputGrad));
        Check.Rank(tableGrad, 2, nameof(tableGrad));
        int v = tableGrad.Shape[0], h = tableGrad.Shape[1], t = ids.Length;
        Check.Shape(outputGrad, nameof(outputGrad), t, h);
        for (int i = 0; i < t; i++)
            if ((uint)ids[i] >= (uint)v) throw new ArgumentOutOfRangeException(nameof(ids), $"token id {ids[i]} at position {i} is outside the vocabulary [0, {v})");
        if (t == 0 || h == 0) return;

        // positions sorted by (id, position), uploaded once as [positions T | distinct ids U | offsets U+1]
        var keys = new long[t];
        for (int i = 0; i < t; i++) keys[i] = ((long)ids[i] << 32) | (uint)i;
        Array.Sort(keys);
        int unique = 0;
        for (int i = 0; i < t; i++)
            if (i == 0 || keys[i] >> 32 != keys[i - 1] >> 32) unique++;
        var upload = new int[t + 2 * unique + 1];
        for (int i = 0, u = 0; i < t; i++)
        {
            upload[i] = (int)(keys[i] & 0xffffffffL);
            if (i > 0 && keys[i] >> 32 == keys[i - 1] >> 32) continue;
            upload[t + u] = (int)(keys[i] >> 32);
            upload[t + unique + u] = i;
            u++;
        }
        upload[t + 2 * unique] = t;
        ulong basePointer = UploadInts(upload);
        ulong tokens = basePointer, uniqueIds = basePointer + (ulong)t * sizeof(int), starts = basePointer + (ulong)(t + unique) * sizeof(int);
        uint columnBlocks = (uint)((h + Block - 1) / Block);
        Launch("embedding_backward", ((uint)unique, columnBlocks, 1), Block, 0,
            (IntPtr)(&g), (IntPtr)(&dy), (IntPtr)(&uniqueIds), (IntPtr)(&starts), (IntPtr)(&tokens), (IntPtr)(&h));
    }

    public void RmsNormBackward(Tensor inputGrad, Tensor weightGrad, Tensor outputGrad, Tensor input, Tensor weight, float eps)
    {
        ulong dx = Activation(inputGrad, nameof(RmsNormBackward), nameof(inputGrad));
        ulong dw = Pointer(weightGrad, DType.F32, nameof(RmsNormBackward), nameof(weightGrad), "keeps parameter gradients in F32");
        ulong dy = Activation(outputGrad, nameof(RmsNormBackward), nameof(outputGrad));
        ulong x = Activation(input, nameof(RmsNormBackward), nameof(input));
        ulong w = Activation(weight, nameof(RmsNormBackward), nameof(weight));
        Check.Rank(input, 2, nameof(input));
        int rows = input.Shape[0], h = input.Shape[1];
        Check.SameShape(input, inputGrad, nameof(inputGrad));
        Check.SameShape(input, outputGrad, nameof(outputGrad));
        Check.Shape(weight, nameof(weight), h);
        Check.Shape(weightGrad, nameof(weightGrad), h);
        if (rows == 0 || h == 0) return;
        int parts = Math.Min(rows, MaxPartitions);
        ulong partials = Scratch((long)parts * h * sizeof(float));
        Launch("rmsnorm_backward", ((uint)parts, 1, 1), Block, 0,
            (IntPtr)(&dx), (IntPtr)(&partials), (IntPtr)(&dy), (IntPtr)(&x), (IntPtr)(&w), (IntPtr)(&rows), (IntPtr)(&h), (IntPtr)(&eps));
        ColumnSumsAdd(dw, partials, parts, h);
    }

    public void MatMulBackward(Tensor? inputGrad, Tensor weightGrad, Tensor? biasGrad, Tensor outputGrad, Tensor input, Tensor weight)
    {
        ulong dx = inputGrad is null ? 0 : Activation(inputGrad, nameof(MatMulBackward), nameof(inputGrad));
        ulong dw = Pointer(weightGrad, DType.F32, nameof(MatMulBackward), nameof(weightGrad), "keeps parameter gradients in F32");
        ulong db = biasGrad is null ? 0 : Pointer(biasGrad, DType.F32, nameof(MatMulBackward), nameof(biasGrad), "keeps parameter gradients in F32");
        ulong dy = Activation(outputGrad, nameof(MatMulBackward), nameof(outputGrad));
        ulong x = Activation(input, nameof(MatMulBackward), nameof(input));
        ulong w = Activation(weight, nameof(MatMulBackward), nameof(weight));
        var (m, n, k) = MatMulChecks.Backward(inputGrad, weightGrad, biasGrad, outputGrad, input, weight);
        // every product below has a non-zero inner dimension (an empty sum adds nothing: skipped)
        if (m == 0 || n == 0) return;
        if (k > 0)
        {
            // dX [T, K] += dY [T, N] · W [N, K]   (bf16 output, beta 1: one rounding of old + product)
            if (inputGrad is not null)
                Gemm(new GemmOutput(dx, DType.BF16, k), new GemmOperand(dy, n, Transposed: false), new GemmOperand(w, k, Transposed: false),
                    m, k, n, alpha: 1f, accumulate: true);
            // dW [N, K] += dYᵀ [N, T] · X [T, K]   (dY stored [T, N] = [k, m] of this product: transposed; F32 output)
            Gemm(new GemmOutput(dw, DType.F32, k), new GemmOperand(dy, n, Transposed: true), new GemmOperand(x, k, Transposed: false),
                n, k, m, alpha: 1f, accumulate: true);
        }
        if (biasGrad is not null)
        {
            // db [N] += Σ_t dY[t, :]: fp32 column sums per row partition, then the partitions in order
            int rowsPerPart = Math.Max(64, (m + MaxPartitions - 1) / MaxPartitions);
            int parts = (m + rowsPerPart - 1) / rowsPerPart;
            ulong partials = Scratch((long)parts * n * sizeof(float));
            Launch("column_sums_partial_bf16", ((uint)((n + Block - 1) / Block), (uint)parts, 1), Block, 0,
                (IntPtr)(&partials), (IntPtr)(&dy), (IntPtr)(&m), (IntPtr)(&n), (IntPtr)(&rowsPerPart));
            ColumnSumsAdd(db, partials, parts, n);
        }
    }

    public void RopeBackward(Tensor xGrad, ReadOnlySpan<int> positions, Tensor inverseFrequencies, int headDim) =>
        RotateHalf(nameof(RopeBackward), "rope_backward", xGrad, positions, inverseFrequencies, headDim);

    /// <summary>
    /// Rope (kernel rope_forward: rotation by +angle) and RopeBackward (rope_backward: by −angle) on a BF16 x [T, heads·HD]
    /// in place, one thread per (j, j + HD/2) pair.
    /// </summary>
    private void RotateHalf(string op, string kernel, Tensor x, ReadOnlySpan<int> positions, Tensor inverseFrequencies, int headDim)
    {
        ulong data = Activation(x, op, nameof(x));
        ulong inv = Pointer(inverseFrequencies, DType.F32, op, nameof(inverseFrequencies), "expects F32 inverse frequencies");
        Check.Rank(x, 2, nameof(x));
        int rows = x.Shape[0], width = x.Shape[1], half = headDim / 2;
        if (headDim <= 0 || headDim % 2 != 0 || width % headDim != 0)
            throw new ArgumentException($"{op}: width {width} is not a whole number of heads of even size {headDim}");
        Check.Shape(inverseFrequencies, nameof(inverseFrequencies), half);
        if (positions.Length != rows) throw new ArgumentException($"{op}: {positions.Length} positions for {rows} rows");
        if (half > 1024) throw new NotSupportedException($"{op}: head dim {headDim} is over the kernel's 2048 (one thread per pair)");
        int heads = width / headDim;
        if (rows == 0 || heads == 0) return;
        ulong pos = UploadInts(positions);
        Launch(kernel, ((uint)rows, (uint)heads, 1), (uint)half, 0,
            (IntPtr)(&data), (IntPtr)(&pos), (IntPtr)(&inv), (IntPtr)(&heads), (IntPtr)(&headDim));
    }

    public void SwiGluBackward(Tensor gateGrad, Tensor upGrad, Tensor outputGrad, Tensor gate, Tensor up)
    {
        ulong dg = Activation(gateGrad, nameof(SwiGluBackward), nameof(gateGrad));
        ulong du = Activation(upGrad, nameof(SwiGluBackward), nameof(upGrad));
        ulong dy = Activation(outputGrad, nameof(SwiGluBackward), nameof(outputGrad));
        ulong g = Activation(gate, nameof(SwiGluBackward), nameof(gate));
        ulong u = Activation(up, nameof(SwiGluBackward), nameof(up));
        Check.SameShape(gate, up, nameof(up));
        Check.SameShape(gate, outputGrad, nameof(outputGrad));
        Check.SameShape(gate, gateGrad, nameof(gateGrad));
        Check.SameShape(gate, upGrad, nameof(upGrad));
        long n = gate.Length;
        if (n == 0) return;
        Launch("swiglu_backward", (GridStride(n), 1, 1), Block, 0,
            (IntPtr)(&dg), (IntPtr)(&du), (IntPtr)(&dy), (IntPtr)(&g), (IntPtr)(&u), (IntPtr)(&n));
    }

    public void CrossEntropy(Tensor losses, Tensor logitsGrad, Tensor logits, ReadOnlySpan<int> targets, float gradScale)
    {
        ulong l = Pointer(losses, DType.F32, nameof(CrossEntropy), nameof(losses), "keeps losses in F32");
        ulong dz = Activation(logitsGrad, nameof(CrossEntropy), nameof(logitsGrad));
        ulong z = Activation(logits, nameof(CrossEntropy), nameof(logits));
        var (rows, v) = CrossEntropyChecks.Validate(losses, logitsGrad, logits, targets);
        if (logitsGrad.Offset != logits.Offset && ReferenceEquals(logitsGrad.Memory, logits.Memory)
            && logitsGrad.Offset < logits.Offset + logits.Length && logits.Offset < logitsGrad.Offset + logitsGrad.Length)
            throw new ArgumentException("CrossEntropy: logitsGrad overlaps logits without being the same tensor", nameof(logitsGrad));
        if (rows == 0) return;
        ulong target = UploadInts(targets);
        Launch("cross_entropy_forward_backward", ((uint)rows, 1, 1), 512, 0,
            (IntPtr)(&l), (IntPtr)(&dz), (IntPtr)(&z), (IntPtr)(&target), (IntPtr)(&v), (IntPtr)(&gradScale));
    }

    public void Fill(Tensor tensor, float value)
    {
        var memory = Memory(tensor, nameof(Fill), nameof(tensor));
        if (tensor.DType is not (DType.F32 or DType.BF16))
            throw new ArgumentException($"Fill: {tensor.DType} tensors are not stored on the CUDA backend", nameof(tensor));
        FillStrided(memory.Pointer(tensor.Offset), tensor.DType, 1, tensor.Length, tensor.Length, value);
    }

    /// <summary>Sets rows × cols elements, row r at pointer + r·stride elements, to value (BF16: rounded to nearest even).</summary>
    private void FillStrided(ulong pointer, DType dtype, long rows, long cols, long stride, float value)
    {
        if (rows == 0 || cols == 0) return;
        uint columnBlocks = (uint)Math.Clamp((cols + Block - 1) / Block, 1, 65535), rowBlocks = (uint)Math.Min(rows, 65535);
        Launch(dtype == DType.F32 ? "fill_f32" : "fill_bf16", (columnBlocks, rowBlocks, 1), Block, 0,
            (IntPtr)(&pointer), (IntPtr)(&value), (IntPtr)(&rows), (IntPtr)(&cols), (IntPtr)(&stride));
    }

    public double SumOfSquares(Tensor x)
    {
        var memory = Memory(x, nameof(SumOfSquares), nameof(x));
        if (x.DType is not (DType.F32 or DType.BF16))
            throw new ArgumentException($"SumOfSquares: {x.DType} tensors are not stored on the CUDA backend", nameof(x));
        long n = x.Length;
        if (n == 0) return 0;
        ulong data = memory.Pointer(x.Offset);
        // fixed partitions for a given n (not per device): the same sums in the same order on every run
        int parts = (int)Math.Clamp((n + 16 * Block - 1) / (16 * Block), 1, 1024);
        ulong result = Scratch((1 + parts) * sizeof(double)), partials = result + sizeof(double);
        Launch(x.DType == DType.F32 ? "sum_squares_partial_f32" : "sum_squares_partial_bf16", ((uint)parts, 1, 1), Block, 0,
            (IntPtr)(&partials), (IntPtr)(&data), (IntPtr)(&n));
        Launch("sum_partials", (1, 1, 1), Block, 0, (IntPtr)(&result), (IntPtr)(&partials), (IntPtr)(&parts));
        double sum;
        _device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemcpyDtoH_v2(&sum, result, sizeof(double))); // waits for the two kernels
        return sum;
    }

    public void AdamW(Tensor parameters, Tensor? master, Tensor gradients, Tensor firstMoment, Tensor secondMoment, AdamWStep step)
    {
        var paramMemory = Memory(parameters, nameof(AdamW), nameof(parameters));
        if (parameters.DType is not (DType.F32 or DType.BF16))
            throw new ArgumentException($"AdamW: parameters are {parameters.DType}, expected BF16 or F32", nameof(parameters));
        const string what = "keeps gradients, moments and master weights in F32";
        ulong g = Pointer(gradients, DType.F32, nameof(AdamW), nameof(gradients), what);
        ulong m = Pointer(firstMoment, DType.F32, nameof(AdamW), nameof(firstMoment), what);
        ulong v = Pointer(secondMoment, DType.F32, nameof(AdamW), nameof(secondMoment), what);
        ulong masterPointer = master is null ? 0 : Pointer(master, DType.F32, nameof(AdamW), nameof(master), what);
        Check.SameShape(parameters, gradients, nameof(gradients));
        Check.SameShape(parameters, firstMoment, nameof(firstMoment));
        Check.SameShape(parameters, secondMoment, nameof(secondMoment));
        if (master is not null) Check.SameShape(parameters, master, nameof(master));
        if (step.Step < 1) throw new ArgumentOutOfRangeException(nameof(step), $"AdamW step {step.Step} must count from 1");
        long n = parameters.Length;
        if (n == 0) return;
        // bias corrections 1 − β^step: the powers in float64, as the CPU reference
        float c1 = (float)(1 - Math.Pow(step.Beta1, step.Step)), c2 = (float)(1 - Math.Pow(step.Beta2, step.Step));
        float lr = step.LearningRate, b1 = step.Beta1, b2 = step.Beta2, eps = step.Epsilon, wd = step.WeightDecay, gs = step.GradScale;
        ulong p = paramMemory.Pointer(parameters.Offset);
        var grid = (GridStride(n), 1u, 1u);
        if (master is not null && parameters.DType == DType.BF16)
        {
            Launch("adamw_step", grid, Block, 0, (IntPtr)(&masterPointer), (IntPtr)(&p), (IntPtr)(&g), (IntPtr)(&m), (IntPtr)(&v), (IntPtr)(&n),
                (IntPtr)(&lr), (IntPtr)(&b1), (IntPtr)(&b2), (IntPtr)(&eps), (IntPtr)(&wd), (IntPtr)(&c1), (IntPtr)(&c2), (IntPtr)(&gs));
        }
        else if (parameters.DType == DType.F32)
        {
            // plain fp32 update, on the master when there is one (then copied: F32 parameters receive it unchanged)
            ulong target = master is null ? p : masterPointer;
            Launch("adamw_step_f32", grid, Block, 0, (IntPtr)(&target), (IntPtr)(&g), (IntPtr)(&m), (IntPtr)(&v), (IntPtr)(&n),
                (IntPtr)(&lr), (IntPtr)(&b1), (IntPtr)(&b2), (IntPtr)(&eps), (IntPtr)(&wd), (IntPtr)(&c1), (IntPtr)(&c2), (IntPtr)(&gs));
            if (master is not null) Copy(parameters, master);
        }
        else
        {
            uint seed = step.Seed, stepNumber = (uint)step.Step;
            Launch("adamw_step_stochastic", grid, Block, 0, (IntPtr)(&p), (IntPtr)(&g), (IntPtr)(&m), (IntPtr)(&v), (IntPtr)(&n),
                (IntPtr)(&lr), (IntPtr)(&b1), (IntPtr)(&b2), (IntPtr)(&eps), (IntPtr)(&wd), (IntPtr)(&c1), (IntPtr)(&c2), (IntPtr)(&gs),
                (IntPtr)(&seed), (IntPtr)(&stepNumber));
        }
    }

    public void CopyRows(Tensor destination, Tensor source, ReadOnlySpan<int> destinationRows)
    {
        var d = Memory(destination, nameof(CopyRows), nameof(destination));
        var s = Memory(source, nameof(CopyRows), nameof(source));
        RowScatterChecks.Validate(nameof(CopyRows), destination, source, destinationRows);
        if (destination.DType is not (DType.F32 or DType.BF16))
            throw new ArgumentException($"CopyRows: {destination.DType} tensors are not stored on the CUDA backend", nameof(destination));
        int t = destinationRows.Length;
        long width = (long)source.Shape[1] * (destination.DType == DType.F32 ? 2 : 1); // in 16-bit units
        if (t == 0 || width == 0) return;
        ulong dst = d.Pointer(destination.Offset), src = s.Pointer(source.Offset);
        ulong rows = UploadInts(destinationRows);
        Launch("copy_rows", ((uint)t, (uint)Math.Clamp((width + Block - 1) / Block, 1, 65535), 1), Block, 0,
            (IntPtr)(&dst), (IntPtr)(&src), (IntPtr)(&rows), (IntPtr)(&width));
    }

    public void GroupAdvantage(Tensor advantages, Tensor rewards, int groupSize, AdvantageNormalization normalization, float epsilon)
    {
        ulong a = Pointer(advantages, DType.F32, nameof(GroupAdvantage), nameof(advantages), "keeps advantages in F32");
        ulong r = Pointer(rewards, DType.F32, nameof(GroupAdvantage), nameof(rewards), "keeps rewards in F32");
        AdvantageChecks.Validate(nameof(GroupAdvantage), advantages, rewards, groupSize);
        int n = rewards.Shape[0];
        if (n == 0) return;
        int mode = normalization switch
        {
            AdvantageNormalization.GroupStd => 0,
            AdvantageNormalization.None => 1,
            AdvantageNormalization.BatchStd => 2,
            _ => throw new ArgumentOutOfRangeException(nameof(normalization), normalization, "unknown advantage normalization"),
        };
        ulong batchStd = Scratch(sizeof(double));
        if (normalization == AdvantageNormalization.BatchStd)
            Launch("reward_std", (1, 1, 1), Block, 0, (IntPtr)(&batchStd), (IntPtr)(&r), (IntPtr)(&n));
        Launch("group_advantage", ((uint)(n / groupSize), 1, 1), 128, 0,
            (IntPtr)(&a), (IntPtr)(&r), (IntPtr)(&batchStd), (IntPtr)(&groupSize), (IntPtr)(&mode), (IntPtr)(&epsilon));
    }

    /// <summary>out[c] += Σ_p partials[p, c] in partition order: out F32 [cols], partials F32 [parts, cols].</summary>
    private void ColumnSumsAdd(ulong output, ulong partials, int parts, int cols) =>
        Launch("column_sums_add", ((uint)((cols + Block - 1) / Block), 1, 1), Block, 0,
            (IntPtr)(&output), (IntPtr)(&partials), (IntPtr)(&parts), (IntPtr)(&cols));

    /// <summary>
    /// A device buffer of at least <paramref name="bytes"/> reused by the reductions (partial sums, results). Safe
    /// without waiting: every use is a kernel on the legacy default stream, ordered after the kernels that used it before,
    /// and growing frees the old buffer with cuMemFree, which waits for the device.
    /// </summary>
    private ulong Scratch(long bytes)
    {
        if (_scratch is null || _scratchBytes < bytes)
        {
            _scratch?.Dispose();
            _scratch = null;
            _scratchBytes = Math.Max(bytes, Math.Max(1L << 20, _scratchBytes * 2));
            _scratch = _device.Allocate(_scratchBytes);
        }
        return _scratch.Pointer;
    }

    /// <summary>The exception of an op this backend does not implement yet (<see cref="Supports"/> says false for it).</summary>
    private static NotSupportedException Training(string op) =>
        new($"{op}: the CUDA backend does not implement it yet (Supports(OpKind.{op}) is false); run it on the CPU backend");
}
