using Spark.Native.Backends.Cpu;

namespace Spark.Benchmarks;

/// <summary>CPU GEMM throughput on transformer shapes (M×N×K: C [M,N] = op(A) [M,K] · op(B) [K,N]).</summary>
public static class GemmSuite
{
    /// <summary>One measured case in the JSON report.</summary>
    public sealed record GemmResult(string Name, int M, int N, int K, string TransA, string TransB, string Accumulate,
        double MedianMs, double MinMs, int Runs, double Gflops);

    private sealed record Shape(string Name, int M, int N, int K, Transpose TransA, Transpose TransB, GemmAccumulate Accumulate);

    // Keep in step with benchmarks/gemm_vs_numpy.sh.
    private static readonly Shape[] Shapes =
    [
        // Linear layer forward y = x·Wᵀ: A = x [M,K], B = W [N,K].
        new("linear", 1024, 1024, 1024, Transpose.No, Transpose.Yes, GemmAccumulate.Overwrite),
        new("linear", 512, 256, 768, Transpose.No, Transpose.Yes, GemmAccumulate.Overwrite),
        new("linear", 2048, 896, 4864, Transpose.No, Transpose.Yes, GemmAccumulate.Overwrite),
        // Decode (one token): Qwen2.5-0.5B MLP up (896 → 4864) and down (4864 → 896) projections. The weight (17 MB)
        // stays in a large L3 between runs, so on a server CPU this measures L3 rather than DRAM bandwidth.
        new("decode", 1, 4864, 896, Transpose.No, Transpose.Yes, GemmAccumulate.Overwrite),
        new("decode", 1, 896, 4864, Transpose.No, Transpose.Yes, GemmAccumulate.Overwrite),
        // Batched decode (8 sequences), the few-row path.
        new("decode_b8", 8, 4864, 896, Transpose.No, Transpose.Yes, GemmAccumulate.Overwrite),
        // Backward of y [2048,4864] = x [2048,896] · Wᵀ: dX = dY·W and dW += dYᵀ·X.
        new("backward_dx", 2048, 896, 4864, Transpose.No, Transpose.No, GemmAccumulate.Overwrite),
        new("backward_dw", 4864, 896, 2048, Transpose.Yes, Transpose.No, GemmAccumulate.AddToOutput),
    ];

    public static BenchSuiteResult Run(BenchOptions options)
    {
        var results = new List<object>();
        var rng = new Random(1234);
        Console.WriteLine($"CPU GEMM, {CpuGemm.Describe()}, threads {(options.Threads == -1 ? Environment.ProcessorCount : options.Threads)}");
        Console.WriteLine($"{"case",-12} {"M×N×K",-16} {"A",-3} {"B",-3} {"median ms",10} {"min ms",10} {"GFLOP/s",9}");
        foreach (Shape s in Shapes)
        {
            string label = $"{s.Name} {s.M}x{s.N}x{s.K}";
            if (options.Filter is { } filter && !label.Contains(filter, StringComparison.OrdinalIgnoreCase))
                continue;
            // Uniform [-1, 1): never zeros, and no denormals.
            float[] a = Random(rng, s.M * s.K), b = Random(rng, s.K * s.N), c = Random(rng, s.M * s.N);
            double[] times = Timing.Measure(
                () => CpuGemm.MatMul(c, a, b, [], s.M, s.N, s.K, s.TransA, s.TransB, s.Accumulate, CpuGemmKernel.Auto, options.Threads),
                options.Warmup, options.Reps);
            double median = Timing.Median(times);
            double gflops = 2.0 * s.M * s.N * s.K / (median * 1e-3) / 1e9;
            results.Add(new GemmResult(s.Name, s.M, s.N, s.K, s.TransA.ToString(), s.TransB.ToString(), s.Accumulate.ToString(),
                Math.Round(median, 4), Math.Round(times[0], 4), times.Length, Math.Round(gflops, 2)));
            Console.WriteLine($"{s.Name,-12} {$"{s.M}×{s.N}×{s.K}",-16} {Letter(s.TransA),-3} {Letter(s.TransB),-3} {median,10:F3} {times[0],10:F3} {gflops,9:F1}");
        }
        var settings = new Dictionary<string, object>
        {
            ["threads"] = options.Threads == -1 ? Environment.ProcessorCount : options.Threads,
            ["warmup"] = options.Warmup,
            ["min_reps"] = options.Reps,
            ["kernel"] = CpuGemm.Describe(),
            ["statistic"] = "median wall time of the timed runs; gflops = 2·M·N·K / median",
        };
        return new BenchSuiteResult(settings, results);
    }

    private static string Letter(Transpose t) => t == Transpose.No ? "N" : "T";

    private static float[] Random(Random rng, int length)
    {
        var values = new float[length];
        for (int i = 0; i < length; i++)
            values[i] = (float)(rng.NextDouble() * 2 - 1);
        return values;
    }
}
