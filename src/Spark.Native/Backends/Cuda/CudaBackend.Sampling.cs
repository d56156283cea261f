using System.Buffers;
using System.Runtime.InteropServices;
using Spark.Native.Generation;
using Spark.Native.Interop;
using Spark.Native.Tensors;
using Tensor = Spark.Native.Tensors.Tensor;

namespace Spark.Native.Backends.Cuda;

// Sampling: greedy or temperature, top-k, top-p per row, on the GPU (kernels/sampling.cu); only the token ids come back.
internal sealed unsafe partial class CudaBackend
{
    private const uint SampleThreads = 1024;

    private static (string File, string[] Functions)[] SamplingKernels => [("sampling.cu", ["sample_rows"])];

    private static OpKind[] SamplingOps => [OpKind.Sample];

    /// <summary>The per-row settings of <c>sample_rows</c>, laid out as the kernel's <c>SampleSettings</c> (32 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct SampleSettings
    {
        public float Temperature;
        public int TopK;
        public float TopP;
        public int Unused;
        public double Uniform;
        public double InverseTemperature;
    }

    /// <summary>
    /// Draws each row of logits [R, V] with <see cref="SamplingRule"/>'s rule on the GPU: the same order, ties and
    /// boundaries, and the uniform the CPU would draw (<see cref="SamplingRow.Uniform"/>), so the tokens are the CPU
    /// backend's for the same stored logits except when that uniform lies within rounding (about 1e-9) of a CDF
    /// boundary. Throws, as the CPU does, when a sampled (not greedy) row holds a NaN.
    /// </summary>
    public void Sample(Span<int> tokens, Tensor logits, ReadOnlySpan<SamplingRow> rows)
    {
        ulong x = Activation(logits, nameof(Sample), nameof(logits));
        Check.Rank(logits, 2, nameof(logits));
        int r = logits.Shape[0], v = logits.Shape[1];
        if (tokens.Length != r || rows.Length != r)
            throw new ArgumentException($"Sample: {r} logit rows, {tokens.Length} token slots and {rows.Length} sampling rows");
        if (r == 0) return;
        if (v == 0) throw new ArgumentException("Sample: the logit rows are empty", nameof(logits));

        // one int upload: the settings of every row (8 ints each), then room for the tokens the kernel writes
        int settingsInts = r * (sizeof(SampleSettings) / sizeof(int));
        int[] staging = ArrayPool<int>.Shared.Rent(settingsInts + r);
        try
        {
            var settings = MemoryMarshal.Cast<int, SampleSettings>(staging.AsSpan(0, settingsInts));
            for (int i = 0; i < r; i++)
            {
                var row = rows[i];
                if (float.IsNaN(row.Temperature)) throw new ArgumentException($"Sample: row {i} has temperature NaN", nameof(rows));
                settings[i] = new SampleSettings
                {
                    Temperature = row.Temperature,
                    TopK = row.TopK,
                    TopP = row.TopP,
                    Uniform = row.Uniform,
                    InverseTemperature = 1.0 / row.Temperature,
                };
            }
            staging.AsSpan(settingsInts, r).Clear();
            ulong settingsPointer = UploadInts(staging.AsSpan(0, settingsInts + r));
            ulong output = settingsPointer + (ulong)settingsInts * sizeof(int);
            Launch("sample_rows", ((uint)r, 1, 1), SampleThreads, 0,
                (IntPtr)(&output), (IntPtr)(&x), (IntPtr)(&settingsPointer), (IntPtr)(&v));
            _device.MakeCurrent();
            fixed (int* p = tokens) CudaDriver.Check(CudaDriver.cuMemcpyDtoH_v2(p, output, (nuint)(r * sizeof(int))));
        }
        finally
        {
            ArrayPool<int>.Shared.Return(staging);
        }
        for (int i = 0; i < r; i++)
        {
            if (tokens[i] == -1) throw new InvalidOperationException("logits contain NaN; cannot sample");
            if ((uint)tokens[i] >= (uint)v) throw new InvalidOperationException($"Sample: sample_rows returned token {tokens[i]} for row {i} (vocabulary {v}); this is a kernel bug");
        }
    }
}
