namespace Spark.Native.Backends.Cpu;

internal enum Transpose { No, Yes }

internal enum GemmAccumulate { Overwrite, AddToOutput }

/// <summary>Placeholder GEMM (to be replaced by the blocked kernel).</summary>
internal static class CpuGemm
{
    public static void MatMul(Span<float> c, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> bias,
        int m, int n, int k, Transpose transA, Transpose transB, GemmAccumulate accumulate)
    {
        if (transA != Transpose.No || transB != Transpose.Yes) throw new NotSupportedException();
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float s = System.Numerics.Tensors.TensorPrimitives.Dot(a.Slice(i * k, k), b.Slice(j * k, k));
                if (!bias.IsEmpty) s += bias[j];
                c[i * n + j] = accumulate == GemmAccumulate.AddToOutput ? c[i * n + j] + s : s;
            }
    }
}
