using System.Buffers;
using Spark.Native.Generation;
using Spark.Native.Interop;
using Spark.Native.Tensors;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Backends.Cuda;

// Fused causal attention: batched variable-length spans, GQA, prefill and decode against the KV cache.
internal sealed unsafe partial class CudaBackend
{
    private static (string File, string[] Functions)[] AttentionKernels => [("attention.cu", ["attention_forward_rows"])];

    private static OpKind[] AttentionOps => [OpKind.Attention];

    public void Attention(Tensor output, Tensor query, Tensor keys, Tensor values, ReadOnlySpan<AttentionSpan> spans, AttentionHeads heads)
    {
        ulong o = Activation(output, nameof(Attention), nameof(output));
        ulong q = Activation(query, nameof(Attention), nameof(query));
        ulong k = Activation(keys, nameof(Attention), nameof(keys));
        ulong v = Activation(values, nameof(Attention), nameof(values));
        AttentionChecks.Validate(nameof(Attention), query, keys, values, spans, heads, disjointKeys: false);
        Check.SameShape(query, output, nameof(output));
        int positions = 0;
        foreach (var s in spans) positions = Math.Max(positions, s.KeyCount);
        if (positions == 0) return;

        // attention_forward_rows keeps the scores of the longest row (start + T keys) in dynamic shared memory
        long shared = (long)positions * sizeof(float);
        var function = Function("attention_forward_rows");
        if (shared > _attentionSharedLimit)
        {
            // the kernel also has 32 floats of static scratch
            long available = _device.MaxSharedMemoryPerBlockOptin - 32 * sizeof(float);
            if (shared > available)
                throw new NotSupportedException($"Attention: {positions} positions need {shared} bytes of shared memory for the scores; " +
                    $"this GPU allows {available} per block (the flash-style kernel that lifts the limit comes later)");
            _device.MakeCurrent();
            CudaDevice.SetMaxDynamicSharedMemory(function, (int)available);
            _attentionSharedLimit = (int)available;
        }
        int nh = heads.QueryHeads, nkv = heads.KeyValueHeads, hd = heads.HeadDim;
        foreach (var span in spans)
        {
            if (span.Length == 0) continue;
            ulong os = o + (ulong)((long)span.QueryRow * heads.QueryWidth * 2), qs = q + (ulong)((long)span.QueryRow * heads.QueryWidth * 2);
            ulong ks = k + (ulong)((long)span.KeyRow * heads.KeyValueWidth * 2), vs = v + (ulong)((long)span.KeyRow * heads.KeyValueWidth * 2);
            int start = span.StartPosition;
            _device.Launch(function, ((uint)span.Length, (uint)nh, 1), (128, 1, 1), (uint)shared, null,
                [(IntPtr)(&os), (IntPtr)(&qs), (IntPtr)(&ks), (IntPtr)(&vs), (IntPtr)(&start), (IntPtr)(&nh), (IntPtr)(&nkv), (IntPtr)(&hd)]);
        }
    }

    public void AttentionBackward(Tensor queryGrad, Tensor keysGrad, Tensor valuesGrad, Tensor outputGrad,
        Tensor query, Tensor keys, Tensor values, ReadOnlySpan<AttentionSpan> spans, AttentionHeads heads) => throw Training(nameof(AttentionBackward));
}
