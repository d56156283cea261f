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

        // Row-major y[T, N] = x[T, K] · W[N, K]ᵀ is column-major yᵀ[N, T] = W · xᵀ: a column-major view of row-major
        // W [N, K] is [K, N] (ld K), transposed gives [N, K]; of x [T, K] is [K, T] (ld K), as is; of y is [N, T] (ld N).
        // So A = W with transa = T, B = x with transb = N, m = N, n = T, k = K; the bias epilogue adds bias[row of D],
        // i.e. bias[N], to every column of D (every token).
        var key = new MatMulKey(m, n, k, bias is not null,
            Alignment(w, (long)k * 2), Alignment(x, (long)k * 2), Alignment(y, (long)n * 2), bias is null ? 16 : Alignment(b, 16));
        var plan = Plan(key);
        _device.MakeCurrent();
        if (bias is not null) CublasLt.SetAttribute(plan.Desc, CublasLtMatmulDescAttribute.BiasPointer, b);
        float alpha = 1f, beta = 0f;
        var algo = plan.Algo;
        CublasLt.Check(CublasLt.cublasLtMatmul(_cublas.DangerousGetHandle(), plan.Desc.DangerousGetHandle(), &alpha,
            w, plan.A.DangerousGetHandle(), x, plan.B.DangerousGetHandle(), &beta,
            y, plan.C.DangerousGetHandle(), y, plan.C.DangerousGetHandle(), &algo, _workspace.Pointer, (nuint)plan.WorkspaceBytes, IntPtr.Zero));
    }

    /// <summary>Largest power of two ≤ 16 dividing both the address and the row stride in bytes (cuBLASLt's minimum alignment).</summary>
    private static uint Alignment(ulong pointer, long strideBytes)
    {
        uint a = 16;
        while (a > 1 && (pointer % a != 0 || strideBytes % a != 0)) a >>= 1;
        return a;
    }

    private readonly record struct MatMulKey(int M, int N, int K, bool Bias, uint AlignW, uint AlignX, uint AlignY, uint AlignBias);

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

    /// <summary>Descriptors, layouts and the heuristic's first algorithm for one shape, built once and cached.</summary>
    private MatMulPlan Plan(MatMulKey key)
    {
        if (_plans.TryGetValue(key, out var cached)) return cached;
        _device.MakeCurrent();
        var desc = CublasLt.CreateMatmulDesc(CublasComputeType.Compute32F, CudaDataType.R32F);
        CublasLtMatrixLayoutHandle? a = null, b = null, c = null;
        try
        {
            CublasLt.SetAttribute(desc, CublasLtMatmulDescAttribute.TransA, (int)CublasOperation.Transpose);
            CublasLt.SetAttribute(desc, CublasLtMatmulDescAttribute.TransB, (int)CublasOperation.None);
            if (key.Bias)
            {
                CublasLt.SetAttribute(desc, CublasLtMatmulDescAttribute.Epilogue, (uint)CublasLtEpilogue.Bias);
                CublasLt.SetAttribute(desc, CublasLtMatmulDescAttribute.BiasDataType, (int)CudaDataType.R16BF);
            }
            a = CublasLt.CreateLayout(CudaDataType.R16BF, key.K, key.N, key.K); // W: column-major [K, N]
            b = CublasLt.CreateLayout(CudaDataType.R16BF, key.K, key.M, key.K); // x: column-major [K, T]
            c = CublasLt.CreateLayout(CudaDataType.R16BF, key.N, key.M, key.N); // y: column-major [N, T]
            using var preference = CublasLt.CreatePreference(WorkspaceBytes);
            CublasLt.SetAttribute(preference, CublasLtMatmulPreferenceAttribute.MinAlignmentABytes, key.AlignW);
            CublasLt.SetAttribute(preference, CublasLtMatmulPreferenceAttribute.MinAlignmentBBytes, key.AlignX);
            CublasLt.SetAttribute(preference, CublasLtMatmulPreferenceAttribute.MinAlignmentCBytes, key.AlignY);
            CublasLt.SetAttribute(preference, CublasLtMatmulPreferenceAttribute.MinAlignmentDBytes, key.AlignY);
            CublasLtMatmulHeuristicResult result;
            int returned = 0;
            CublasLt.Check(CublasLt.cublasLtMatmulAlgoGetHeuristic(_cublas.DangerousGetHandle(), desc.DangerousGetHandle(),
                a.DangerousGetHandle(), b.DangerousGetHandle(), c.DangerousGetHandle(), c.DangerousGetHandle(),
                preference.DangerousGetHandle(), 1, &result, &returned));
            if (returned == 0)
                throw new NotSupportedException($"MatMul: cuBLASLt has no algorithm for [{key.M}, {key.K}] · [{key.N}, {key.K}]ᵀ in bf16 " +
                    $"(alignments {key.AlignX}/{key.AlignW}/{key.AlignY} bytes, bias {key.Bias})");
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

}
