using Spark.Native.Interop;
using Spark.Native.Tensors;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Backends.Cuda;

// Fused log-prob gather: per-token log p(target) and entropy at a temperature, chunked over tokens and vocabulary
// (kernels/logprob.cu). Dimension legend: T tokens, H hidden, V vocabulary; Tc ≤ 1024 rows of a token chunk,
// Vc ≤ 8192 ids of a vocabulary chunk, stride = Vc rounded up to 8 (16-byte rows of z and dz for cuBLASLt).
//
// Forward, per (token chunk, vocabulary chunk): cuBLASLt z [Tc, Vc] fp32 = hidden · W_chunkᵀ with alpha = 1/τ, then
// logprob_chunk_forward folds z into per-row online state (max, Σexp, shifted Σexp·z, target logit; fp32 [4, T]);
// logprob_finalize writes logProbs, entropies, logSumExp (F32).
// Backward, per token chunk, per vocabulary chunk: z again (same GEMM), logprob_chunk_backward → dz/τ (bf16), then
//   dHidden [Tc, H] (fp32 scratch) (+)= dz · W_chunk      and      weightGrad chunk [Vc, H] (F32) += dzᵀ · hidden;
// after the last vocabulary chunk logprob_add_hidden_grad adds dHidden to the bf16 hiddenGrad once.
// Why fp32 for dHidden: hiddenGrad is bf16 (the activation type); accumulating V/Vc partial products into it would
// round to bf16 after every chunk (19 roundings for V = 151936). Summing them in fp32 and adding once rounds once,
// as the issue asks (dHidden and dW accumulated in fp32). dW needs no scratch: weightGrad is F32 and cuBLASLt adds
// into it (beta = 1) across token chunks.
//
// Memory bound (scratch, lazily grown, kept on the backend): z fp32 Tc·stride·4 ≤ 32 MiB, dz bf16 Tc·stride·2 ≤ 16 MiB
// (backward only), dHidden fp32 Tc·H·4 (backward only; 14 MiB at H = 3584), state 16 B per token: at most
// min(T, 1024)·(6·stride + 4·H) + 16·T bytes, 62 MiB at H = 3584. Torch's bf16 [T, V] logits plus an fp32 log_softmax
// take ≥ T·V·6 bytes (0.93 GB at T = 1024, V = 151936). Per token that is (6·8192 + 4·H) against 6·151936 bytes:
// ≤ 1/11 for V = 151936 at any T and H ≤ 8192, and the ratio falls further once T > 1024 (the scratch stops growing).
internal sealed unsafe partial class CudaBackend
{
    private const int LogProbTokenChunk = 1024;
    private const int LogProbVocabChunk = 8192;

    private static (string File, string[] Functions)[] LogProbKernels =>
        [("logprob.cu", ["logprob_chunk_forward", "logprob_finalize", "logprob_chunk_backward", "logprob_add_hidden_grad"])];

    private static OpKind[] LogProbOps => [OpKind.LogProbGather, OpKind.LogProbGatherBackward];

    private readonly ScratchBuffer _logProbLogits = new(), _logProbDz = new(), _logProbHiddenGrad = new(), _logProbState = new();

    public void LogProbGather(Tensor logProbs, Tensor entropies, Tensor logSumExp, Tensor hidden, Tensor weight,
        ReadOnlySpan<int> targets, float temperature)
    {
        const string op = nameof(LogProbGather);
        ulong lp = Pointer(logProbs, DType.F32, op, nameof(logProbs), "writes F32 log-probs");
        ulong ent = Pointer(entropies, DType.F32, op, nameof(entropies), "writes F32 entropies");
        ulong lse = Pointer(logSumExp, DType.F32, op, nameof(logSumExp), "writes F32 log-sum-exps");
        ulong x = Activation(hidden, op, nameof(hidden));
        ulong w = Activation(weight, op, nameof(weight));
        var (t, h, v) = LogProbChecks.Forward(op, ActivationDType, logProbs, entropies, logSumExp, hidden, weight, targets, temperature);
        if (t == 0) return;
        var (tokenChunk, stride) = LogProbChunks(t, v);
        ulong z = _logProbLogits.Ensure(_device, (long)tokenChunk * stride * sizeof(float));
        // state [4, T]: row max, Σ exp(z − max), Σ exp(z − max)·(z − max), target logit; all 0 = "nothing seen yet"
        ulong state = _logProbState.Ensure(_device, 4L * t * sizeof(float));
        _device.Fill32(_logProbState.Handle!, 0, 4L * t);
        ulong ids = UploadInts(targets); // the op's only UploadInts: the buffer holds the targets until the end
        float invTemperature = 1f / temperature;
        for (int t0 = 0; t0 < t; t0 += tokenChunk)
        {
            int tc = Math.Min(tokenChunk, t - t0);
            ulong rowMax = state + (ulong)(4L * t0), rowSum = rowMax + (ulong)(4L * t), rowShifted = rowSum + (ulong)(4L * t),
                targetLogit = rowShifted + (ulong)(4L * t), rowIds = ids + (ulong)(4L * t0);
            for (int v0 = 0; v0 < v; v0 += LogProbVocabChunk)
            {
                int vc = Math.Min(LogProbVocabChunk, v - v0);
                ChunkLogits(z, stride, x, w, t0, tc, v0, vc, h, invTemperature);
                Launch("logprob_chunk_forward", ((uint)tc, 1, 1), Block, 0, (IntPtr)(&rowMax), (IntPtr)(&rowSum), (IntPtr)(&rowShifted),
                    (IntPtr)(&targetLogit), (IntPtr)(&z), (IntPtr)(&rowIds), (IntPtr)(&v0), (IntPtr)(&vc), (IntPtr)(&stride));
            }
        }
        ulong allMax = state, allSum = state + (ulong)(4L * t), allShifted = allSum + (ulong)(4L * t), allTarget = allShifted + (ulong)(4L * t);
        Launch("logprob_finalize", (GridStride(t), 1, 1), Block, 0, (IntPtr)(&lp), (IntPtr)(&ent), (IntPtr)(&lse), (IntPtr)(&allMax),
            (IntPtr)(&allSum), (IntPtr)(&allShifted), (IntPtr)(&allTarget), (IntPtr)(&ids), (IntPtr)(&t));
    }

    public void LogProbGatherBackward(Tensor hiddenGrad, Tensor weightGrad, Tensor logProbGrad, Tensor? entropyGrad,
        Tensor logSumExp, Tensor entropies, Tensor hidden, Tensor weight, ReadOnlySpan<int> targets, float temperature)
    {
        const string op = nameof(LogProbGatherBackward);
        ulong dx = Activation(hiddenGrad, op, nameof(hiddenGrad));
        ulong dw = Pointer(weightGrad, DType.F32, op, nameof(weightGrad), "accumulates F32 parameter gradients");
        ulong glp = Pointer(logProbGrad, DType.F32, op, nameof(logProbGrad), "expects F32 per-token gradients");
        ulong gh = entropyGrad is null ? 0 : Pointer(entropyGrad, DType.F32, op, nameof(entropyGrad), "expects F32 per-token gradients");
        ulong lse = Pointer(logSumExp, DType.F32, op, nameof(logSumExp), "expects the forward's F32 log-sum-exps");
        ulong ent = Pointer(entropies, DType.F32, op, nameof(entropies), "expects the forward's F32 entropies");
        ulong x = Activation(hidden, op, nameof(hidden));
        ulong w = Activation(weight, op, nameof(weight));
        var (t, h, v) = LogProbChecks.Backward(op, ActivationDType, hiddenGrad, weightGrad, logProbGrad, entropyGrad, logSumExp, entropies,
            hidden, weight, targets, temperature);
        if (t == 0) return;
        var (tokenChunk, stride) = LogProbChunks(t, v);
        ulong z = _logProbLogits.Ensure(_device, (long)tokenChunk * stride * sizeof(float));
        ulong dz = _logProbDz.Ensure(_device, (long)tokenChunk * stride * 2);
        ulong dHidden = _logProbHiddenGrad.Ensure(_device, (long)tokenChunk * h * sizeof(float));
        ulong ids = UploadInts(targets); // the op's only UploadInts: the buffer holds the targets until the end
        float invTemperature = 1f / temperature;
        for (int t0 = 0; t0 < t; t0 += tokenChunk)
        {
            int tc = Math.Min(tokenChunk, t - t0);
            ulong rowGlp = glp + (ulong)(4L * t0), rowGh = gh == 0 ? 0 : gh + (ulong)(4L * t0), rowLse = lse + (ulong)(4L * t0),
                rowEnt = ent + (ulong)(4L * t0), rowIds = ids + (ulong)(4L * t0);
            ulong hiddenRows = x + (ulong)(2L * t0 * h);
            for (int v0 = 0; v0 < v; v0 += LogProbVocabChunk)
            {
                int vc = Math.Min(LogProbVocabChunk, v - v0);
                ulong weightRows = w + (ulong)(2L * v0 * h);
                ChunkLogits(z, stride, x, w, t0, tc, v0, vc, h, invTemperature);
                Launch("logprob_chunk_backward", ((uint)tc, 1, 1), Block, 0, (IntPtr)(&dz), (IntPtr)(&z), (IntPtr)(&rowGlp), (IntPtr)(&rowGh),
                    (IntPtr)(&rowLse), (IntPtr)(&rowEnt), (IntPtr)(&rowIds), (IntPtr)(&v0), (IntPtr)(&vc), (IntPtr)(&stride),
                    (IntPtr)(&invTemperature));
                // dHidden [Tc, H] = (or +=) dz [Tc, Vc] · W_chunk [Vc, H]: the first chunk overwrites, so no zeroing
                Gemm(new GemmOutput(dHidden, DType.F32, h), new GemmOperand(dz, stride, Transposed: false),
                    new GemmOperand(weightRows, h, Transposed: false), tc, h, vc, alpha: 1f, accumulate: v0 > 0);
                // weightGrad[v0 …] [Vc, H] += dzᵀ · hidden[t0 …]: dz stored [Tc, Vc] = [k, m], transposed
                Gemm(new GemmOutput(dw + (ulong)(4L * v0 * h), DType.F32, h), new GemmOperand(dz, stride, Transposed: true),
                    new GemmOperand(hiddenRows, h, Transposed: false), vc, h, tc, alpha: 1f, accumulate: true);
            }
            ulong hiddenGradRows = dx + (ulong)(2L * t0 * h);
            long n = (long)tc * h;
            Launch("logprob_add_hidden_grad", (GridStride(n), 1, 1), Block, 0, (IntPtr)(&hiddenGradRows), (IntPtr)(&dHidden), (IntPtr)(&n));
        }
    }

    /// <summary>Rows of a token chunk, and the row stride (elements) of z and dz: the vocabulary chunk rounded up to 8.</summary>
    private static (int TokenChunk, int Stride) LogProbChunks(int t, int v) =>
        (Math.Min(t, LogProbTokenChunk), (Math.Min(v, LogProbVocabChunk) + 7) / 8 * 8);

    /// <summary>z [tc, vc] (fp32, row stride <paramref name="stride"/>) = hidden[t0 …] · weight[v0 …]ᵀ · invTemperature.</summary>
    private void ChunkLogits(ulong z, int stride, ulong hidden, ulong weight, int t0, int tc, int v0, int vc, int h, float invTemperature) =>
        Gemm(new GemmOutput(z, DType.F32, stride), new GemmOperand(hidden + (ulong)(2L * t0 * h), h, Transposed: false),
            new GemmOperand(weight + (ulong)(2L * v0 * h), h, Transposed: true), tc, vc, h, alpha: invTemperature, accumulate: false);

    /// <summary>Frees the log-prob scratch (called from DisposeResources).</summary>
    private void DisposeLogProbScratch()
    {
        _logProbLogits.Dispose();
        _logProbDz.Dispose();
        _logProbHiddenGrad.Dispose();
        _logProbState.Dispose();
    }

    /// <summary>A device buffer that grows (without keeping its contents) and is otherwise reused across calls.</summary>
    private sealed class ScratchBuffer : IDisposable
    {
        private long _bytes;

        public CudaMemoryHandle? Handle { get; private set; }

        /// <summary>The buffer's address, reallocated first when it holds fewer than <paramref name="bytes"/>.</summary>
        public ulong Ensure(CudaDevice device, long bytes)
        {
            if (Handle is null || _bytes < bytes)
            {
                Handle?.Dispose();
                Handle = null;
                _bytes = Math.Max(bytes, 256);
                Handle = device.Allocate(_bytes);
            }
            return Handle.Pointer;
        }

        public void Dispose()
        {
            Handle?.Dispose();
            Handle = null;
            _bytes = 0;
        }
    }
}
