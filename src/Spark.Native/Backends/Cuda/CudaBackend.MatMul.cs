using System.Buffers;
using Spark.Native.Generation;
using Spark.Native.Interop;
using Spark.Native.Tensors;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Backends.Cuda;

// Matmuls through cuBLASLt: bf16 operands, fp32 compute (CUBLAS_COMPUTE_32F), plans cached per shape and alignment.
internal sealed unsafe partial class CudaBackend
{
    private static (string File, string[] Functions)[] MatMulKernels => [];

    private static OpKind[] MatMulOps => [OpKind.MatMul];

    public void MatMul(Tensor output, Tensor input, Tensor weight, Tensor? bias)
    {
        ulong y = Activation(output, nameof(MatMul), nameof(output));
        ulong x = Activation(input, nameof(MatMul), nameof(input));
        ulong w = Activation(weight, nameof(MatMul), nameof(weight));
        ulong b = bias is null ? 0 : Activation(bias, nameof(MatMul), nameof(bias));
        Check.Rank(input, 2, nameof(input));
        Check.Rank(weight, 2, nameof(weight));
        int m = input.Shape[0], k = input.Shape[1], n = weight.Shape[0];
        Check.Shape(weight, nameof(weight), n, k);
        Check.Shape(output, nameof(output), m, n);
        if (bias is not null) Check.Shape(bias, nameof(bias), n);
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            // cuBLASLt rejects k = 0; the product is empty, so y = bias (or 0)
            throw new NotSupportedException("MatMul: the CUDA backend does not multiply with an inner dimension of 0");
        }

        // y[T, N] = x[T, K] · W[N, K]ᵀ (+ bias[N] on every row)
        Gemm(new GemmOutput(y, DType.BF16, n), new GemmOperand(x, k, Transposed: false), new GemmOperand(w, k, Transposed: true),
            m, n, k, alpha: 1f, accumulate: false, bias: b);
    }

    /// <summary>A bf16 matrix operand of <see cref="Gemm"/>: device address, row stride in elements, and whether op(X) = Xᵀ.</summary>
    private readonly record struct GemmOperand(ulong Pointer, int RowStride, bool Transposed);

    /// <summary>The output of <see cref="Gemm"/>: device address, element type (BF16 or F32) and row stride in elements.</summary>
    private readonly record struct GemmOutput(ulong Pointer, DType DType, int RowStride);

    /// <summary>
    /// Row-major C[m, n] = alpha · op(A) · op(B) (+ C when accumulating) (+ bias[n] on every row, bf16 bias, only
    /// without accumulation), op(A) [m, k] and op(B) [k, n]. A stored row-major as [m, k], or [k, m] when transposed;
    /// B as [k, n], or [n, k] when transposed. A and B bf16, C bf16 or F32, fp32 compute. Every matmul of this backend
    /// (forward, both backward products, the log-prob chunks) goes through here.
    /// </summary>
    private void Gemm(GemmOutput c, GemmOperand a, GemmOperand b, int m, int n, int k, float alpha, bool accumulate, ulong bias = 0)
    {
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            // cuBLASLt rejects k = 0; the product is empty
            if (!accumulate && bias == 0)
            {
                FillRows(c, m, n, 0f);
                return;
            }
            throw new NotSupportedException("a matmul with an inner dimension of 0 and a bias or accumulation is not supported on the CUDA backend");
        }
        if (accumulate && bias != 0) throw new ArgumentException("Gemm: a bias epilogue with accumulation is not supported");
        // cuBLASLt is column-major: row-major C[m, n] is column-major Cᵀ [n, m] (ld = C's row stride), and
        // Cᵀ = op(B)ᵀ · op(A)ᵀ. A row-major X [r, c] viewed column-major is Xᵀ [c, r] with the same leading dimension,
        // so cuBLAS's first operand is B: stored [k, n] → column-major [n, k] = op(B)ᵀ as is (N); stored [n, k] →
        // column-major [k, n], transposed (T). Its second operand is A: stored [m, k] → column-major [k, m] = op(A)ᵀ
        // (N); stored [k, m] → column-major [m, k], transposed (T). The bias epilogue adds bias[row of Cᵀ] = bias[n].
        var key = new GemmKey(m, n, k, a.Transposed, b.Transposed, a.RowStride, b.RowStride, c.RowStride, c.DType, bias != 0,
            Alignment(a.Pointer, (long)a.RowStride * 2), Alignment(b.Pointer, (long)b.RowStride * 2),
            Alignment(c.Pointer, (long)c.RowStride * (c.DType == DType.F32 ? 4 : 2)), bias == 0 ? 16 : Alignment(bias, 16));
        var plan = Plan(key, bias);
        _device.MakeCurrent();
        if (bias != 0) CublasLt.SetAttribute(plan.Desc, CublasLtMatmulDescAttribute.BiasPointer, bias);
        float beta = accumulate ? 1f : 0f;
        var algo = plan.Algo;
        CublasLt.Check(CublasLt.cublasLtMatmul(_cublas.DangerousGetHandle(), plan.Desc.DangerousGetHandle(), &alpha,
            b.Pointer, plan.A.DangerousGetHandle(), a.Pointer, plan.B.DangerousGetHandle(), &beta,
            c.Pointer, plan.C.DangerousGetHandle(), c.Pointer, plan.C.DangerousGetHandle(), &algo, _workspace.Pointer, (nuint)plan.WorkspaceBytes, IntPtr.Zero));
    }

    /// <summary>Largest power of two ≤ 16 dividing both the address and the row stride in bytes (cuBLASLt's minimum alignment).</summary>
    private static uint Alignment(ulong pointer, long strideBytes)
    {
        uint a = 16;
        while (a > 1 && (pointer % a != 0 || strideBytes % a != 0)) a >>= 1;
        return a;
    }

    private readonly record struct GemmKey(int M, int N, int K, bool TransA, bool TransB, int StrideA, int StrideB, int StrideC,
        DType OutputType, bool Bias, uint AlignA, uint AlignB, uint AlignC, uint AlignBias);

    private sealed class MatMulPlan : IDisposable
    {
        public required CublasLtMatmulDescHandle Desc { get; init; }
        public required CublasLtMatrixLayoutHandle A { get; init; }
        public required CublasLtMatrixLayoutHandle B { get; init; }
        public required CublasLtMatrixLayoutHandle C { get; init; }
        public required CublasLtMatmulAlgo Algo { get; init; }
        public required long WorkspaceBytes { get; init; }

    public void Dispose()
        {
            Desc.Dispose();
            A.Dispose();
            B.Dispose();
            C.Dispose();
        }
    }

    /// <summary>
    /// Descriptors, layouts and the heuristic's first algorithm for one shape, built once and cached. With a bias the
    /// first call's bias pointer is set before the heuristic runs: cuBLASLt derives the bias alignment it may assume
    /// from that pointer's value (a null pointer looks perfectly aligned), and the key's AlignBias makes every later
    /// call with this plan at least as aligned.
    /// </summary>
    private MatMulPlan Plan(GemmKey key, ulong bias)
    {
        if (_plans.TryGetValue(key, out var cached)) return cached;
        _device.MakeCurrent();
        var desc = CublasLt.CreateMatmulDesc(CublasComputeType.Compute32F, CudaDataType.R32F);
        CublasLtMatrixLayoutHandle? a = null, b = null, c = null;
        try
        {
            // cuBLAS's first operand is our B, its second our A (see Gemm)
            CublasLt.SetAttribute(desc, CublasLtMatmulDescAttribute.TransA, (int)(key.TransB ? CublasOperation.Transpose : CublasOperation.None));
            CublasLt.SetAttribute(desc, CublasLtMatmulDescAttribute.TransB, (int)(key.TransA ? CublasOperation.Transpose : CublasOperation.None));
            if (key.Bias)
            {
                CublasLt.SetAttribute(desc, CublasLtMatmulDescAttribute.Epilogue, (uint)CublasLtEpilogue.Bias);
                CublasLt.SetAttribute(desc, CublasLtMatmulDescAttribute.BiasDataType, (int)CudaDataType.R16BF);
                CublasLt.SetAttribute(desc, CublasLtMatmulDescAttribute.BiasPointer, bias);
            }
            // column-major shapes as stored: B is [n, k] (N) or [k, n] (T); A is [k, m] (N) or [m, k] (T); C is [n, m]
            a = key.TransB ? CublasLt.CreateLayout(CudaDataType.R16BF, key.K, key.N, key.StrideB) : CublasLt.CreateLayout(CudaDataType.R16BF, key.N, key.K, key.StrideB);
            b = key.TransA ? CublasLt.CreateLayout(CudaDataType.R16BF, key.M, key.K, key.StrideA) : CublasLt.CreateLayout(CudaDataType.R16BF, key.K, key.M, key.StrideA);
            var outputType = key.OutputType == DType.F32 ? CudaDataType.R32F : CudaDataType.R16BF;
            c = CublasLt.CreateLayout(outputType, key.N, key.M, key.StrideC);
            using var preference = CublasLt.CreatePreference(WorkspaceBytes);
            CublasLt.SetAttribute(preference, CublasLtMatmulPreferenceAttribute.MinAlignmentABytes, key.AlignB);
            CublasLt.SetAttribute(preference, CublasLtMatmulPreferenceAttribute.MinAlignmentBBytes, key.AlignA);
            CublasLt.SetAttribute(preference, CublasLtMatmulPreferenceAttribute.MinAlignmentCBytes, key.AlignC);
            CublasLt.SetAttribute(preference, CublasLtMatmulPreferenceAttribute.MinAlignmentDBytes, key.AlignC);
            CublasLtMatmulHeuristicResult result;
            int returned = 0;
            CublasLt.Check(CublasLt.cublasLtMatmulAlgoGetHeuristic(_cublas.DangerousGetHandle(), desc.DangerousGetHandle(),
                a.DangerousGetHandle(), b.DangerousGetHandle(), c.DangerousGetHandle(), c.DangerousGetHandle(),
                preference.DangerousGetHandle(), 1, &result, &returned));
            if (returned == 0)
                throw new NotSupportedException($"cuBLASLt has no algorithm for a bf16 matmul [{key.M}, {key.K}]{(key.TransA ? "ᵀ" : "")} · [{key.K}, {key.N}]{(key.TransB ? "ᵀ" : "")} " +
                    $"→ {key.OutputType} (alignments {key.AlignA}/{key.AlignB}/{key.AlignC} bytes, bias {key.Bias})");
            var plan = new MatMulPlan { Desc = desc, A = a, B = b, C = c, Algo = result.Algo, WorkspaceBytes = (long)result.WorkspaceSize };
            _plans.Add(key, plan);
            return plan;
        }
        catch
        {
            desc.Dispose();
            a?.Dispose();
            b?.Dispose();
            c?.Dispose();
            throw;
        }
    }

    /// <summary>Sets the [m, n] block of a Gemm output (row stride RowStride elements) to a value.</summary>
    private void FillRows(GemmOutput c, int m, int n, float value) => FillStrided(c.Pointer, c.DType, m, n, c.RowStride, value);
}
