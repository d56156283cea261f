using System.Runtime.Intrinsics;
using Spark.Native.Backends.Cpu;

namespace Spark.Native.Tests.Cpu;

// M rows of C, N columns of C, K inner dimension. A is [M,K] (stored [K,M] when transposed), B is [K,N]
// (stored [N,K] when transposed), C is [M,N], bias is [N].
public class CpuGemmTests
{
    private const int Guard = 16;
    private const float GuardValue = -12345.678f;

    // Shapes (M, N, K): degenerate ones and odd primes; the few-row path (M ≤ 8, and N = 1 turned into M = 1) and
    // its boundary (8 vs 9 rows); shapes that cross each block size of the packed path: K > 256 (KC; 600 is three
    // blocks), M > 4096 (packed-A chunk), N > 4096 (packed-B chunk), and several tiles per thread (parallel path
    // above 2^18 multiply-adds).
    public static readonly TheoryData<int, int, int> Shapes = new()
    {
        { 1, 1, 1 },
        { 1, 7, 13 },
        { 7, 1, 19 },
        { 3, 5, 7 },
        { 2, 2, 1 },
        { 8, 33, 17 },
        { 9, 33, 17 },
        { 17, 33, 65 },
        { 37, 129, 257 },
        { 130, 67, 300 },
        { 1, 1031, 300 },
        { 613, 1, 300 },
        { 5, 700, 300 },
        { 20, 40, 600 },
        { 9, 4100, 3 },
        { 4100, 2, 3 },
    };

    private static IEnumerable<CpuGemmKernel> Kernels()
    {
        if (Vector512.IsHardwareAccelerated)
            yield return CpuGemmKernel.Vector512;
        if (Vector256.IsHardwareAccelerated)
            yield return CpuGemmKernel.Vector256;
        yield return CpuGemmKernel.Scalar;
    }

    /// <summary>
    /// Every layout × accumulate mode × bias, against a float64 reference, on every micro-kernel this machine
    /// accelerates. Error bound: a float32 sum of K products computed in any order, with or without FMA, is off by
    /// at most γ_K·Σ|a·b| where γ_K = K·u/(1 − K·u) and u = 2⁻²⁴ (Higham, Accuracy and Stability of Numerical
    /// Algorithms, §3.1); adding the previous C and the bias costs two more roundings, so
    /// |C − C_ref| ≤ γ_{K+2}·(Σ|a·b| + |C₀| + |bias|). The float64 reference itself is exact to ~K·2⁻⁵³, far below.
    /// The bound is rigorous, so the test cannot flake; a missing or doubled term (error ≈ |a·b| ≈ 0.25) still
    /// exceeds it by orders of magnitude for these K.
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void MatchesFloat64ReferenceForEveryLayout(int m, int n, int k)
    {
        var rng = new Random(m * 1_000_003 + n * 1009 + k);
        float[] bias = RandomArray(rng, n);
        float[] c0 = RandomArray(rng, m * n);
        foreach (Transpose transA in Enum.GetValues<Transpose>())
        {
            foreach (Transpose transB in Enum.GetValues<Transpose>())
            {
                float[] a = RandomArray(rng, m * k);
                float[] b = RandomArray(rng, k * n);
                (double[] product, double[] magnitude) = Reference(a, b, m, n, k, transA, transB);
                foreach (CpuGemmKernel kernel in Kernels())
                {
                    foreach (GemmAccumulate accumulate in Enum.GetValues<GemmAccumulate>())
                    {
                        foreach (bool withBias in new[] { false, true })
                        {
                            string what = $"{m}x{n}x{k} A:{transA} B:{transB} {accumulate} bias:{withBias} kernel:{kernel}";
                            float[] buffer = GuardedOutput(m * n, accumulate == GemmAccumulate.AddToOutput ? c0 : null);
                            CpuGemm.MatMul(buffer.AsSpan(Guard, m * n), a, b, withBias ? bias : [], m, n, k,
                                transA, transB, accumulate, kernel, maxThreads: -1);

                            AssertGuardsIntact(buffer, m * n, what);
                            double gamma = (k + 2) * Math.Pow(2, -24) / (1 - (k + 2) * Math.Pow(2, -24));
                            for (int i = 0; i < m; i++)
                            {
                                for (int j = 0; j < n; j++)
                                {
                                    int e = i * n + j;
                                    double expected = product[e], scale = magnitude[e];
                                    if (accumulate == GemmAccumulate.AddToOutput)
                                    {
                                        expected += c0[e];
                                        scale += Math.Abs(c0[e]);
                                    }
                                    if (withBias)
                                    {
                                        expected += bias[j];
                                        scale += Math.Abs(bias[j]);
                                    }
                                    double error = Math.Abs(buffer[Guard + e] - expected);
                                    if (!(error <= gamma * scale))
                                        Assert.Fail($"{what}: C[{i},{j}] = {buffer[Guard + e]}, expected {expected} ± {gamma * scale:G3}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ThreadCountDoesNotChangeTheResult(int threads)
    {
        const int m = 150, n = 170, k = 290;
        var rng = new Random(7);
        float[] a = RandomArray(rng, m * k), b = RandomArray(rng, n * k);
        float[] single = new float[m * n], multi = new float[m * n];
        CpuGemm.MatMul(single, a, b, [], m, n, k, Transpose.No, Transpose.Yes, GemmAccumulate.Overwrite, CpuGemmKernel.Auto, maxThreads: 1);
        CpuGemm.MatMul(multi, a, b, [], m, n, k, Transpose.No, Transpose.Yes, GemmAccumulate.Overwrite, CpuGemmKernel.Auto, threads);
        // Each element is summed in the same order whatever thread computes it, so the results are bitwise equal.
        Assert.Equal(single, multi);
    }

    [Theory]
    [InlineData(3, 1025)]
    [InlineData(2, 1299)]
    [InlineData(7, 4099)]
    public void FewRowsGiveTheSameResultWhateverTheThreadCount(int m, int n)
    {
        // the few-row path splits columns into per-thread chunks; a chunk narrower than its 4-column blocks must
        // still sum each element as the other chunks do
        const int k = 300;
        var rng = new Random(11);
        float[] a = RandomArray(rng, m * k), b = RandomArray(rng, n * k);
        float[] one = new float[m * n];
        CpuGemm.MatMul(one, a, b, [], m, n, k, Transpose.No, Transpose.Yes, GemmAccumulate.Overwrite, CpuGemmKernel.Auto, maxThreads: 1);
        foreach (int threads in new[] { 2, 3, 5 })
        {
            float[] many = new float[m * n];
            CpuGemm.MatMul(many, a, b, [], m, n, k, Transpose.No, Transpose.Yes, GemmAccumulate.Overwrite, CpuGemmKernel.Auto, threads);
            Assert.Equal(one, many);
        }
    }

    [Fact]
    public void DoesNotWriteOutsideC()
    {
        // The guard checks run in every reference case too; this names the property on its own.
        const int m = 13, n = 35, k = 40;
        var rng = new Random(3);
        float[] a = RandomArray(rng, m * k), b = RandomArray(rng, k * n);
        foreach (CpuGemmKernel kernel in Kernels())
        {
            float[] buffer = GuardedOutput(m * n, null);
            CpuGemm.MatMul(buffer.AsSpan(Guard, m * n), a, b, RandomArray(rng, n), m, n, k,
                Transpose.No, Transpose.No, GemmAccumulate.AddToOutput, kernel, maxThreads: -1);
            AssertGuardsIntact(buffer, m * n, kernel.ToString());
        }
    }

    [Theory]
    [InlineData(9, 37, 21)]
    [InlineData(1, 37, 21)]
    [InlineData(9, 1, 21)]
    public void NaNInputsPropagate(int m, int n, int k)
    {
        // A NaN in row i of A poisons row i of C; a NaN in column j of op(B) poisons column j; nothing else.
        var rng = new Random(11);
        int nanRow = m / 2, nanCol = n - 1;
        foreach (CpuGemmKernel kernel in Kernels())
        {
            foreach (Transpose transA in Enum.GetValues<Transpose>())
            {
                foreach (Transpose transB in Enum.GetValues<Transpose>())
                {
                    float[] a = RandomArray(rng, m * k), b = RandomArray(rng, k * n);
                    int p = k / 3;
                    a[transA == Transpose.No ? nanRow * k + p : p * m + nanRow] = float.NaN;
                    b[transB == Transpose.No ? p * n + nanCol : nanCol * k + p] = float.NaN;
                    float[] c = new float[m * n];
                    CpuGemm.MatMul(c, a, b, [], m, n, k, transA, transB, GemmAccumulate.Overwrite, kernel, maxThreads: -1);
                    for (int i = 0; i < m; i++)
                    {
                        for (int j = 0; j < n; j++)
                        {
                            bool poisoned = i == nanRow || j == nanCol;
                            Assert.True(poisoned == float.IsNaN(c[i * n + j]),
                                $"{kernel} A:{transA} B:{transB}: C[{i},{j}] = {c[i * n + j]}");
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public void OverwriteIgnoresPreviousNaNsInC()
    {
        const int m = 20, n = 40, k = 8;
        var rng = new Random(5);
        float[] a = RandomArray(rng, m * k), b = RandomArray(rng, k * n);
        foreach (CpuGemmKernel kernel in Kernels())
        {
            float[] c = Enumerable.Repeat(float.NaN, m * n).ToArray();
            CpuGemm.MatMul(c, a, b, [], m, n, k, Transpose.No, Transpose.No, GemmAccumulate.Overwrite, kernel, maxThreads: -1);
            Assert.All(c, value => Assert.True(float.IsFinite(value)));
        }
    }

    [Fact]
    public void WrongLengthsThrowNamingTheOperand()
    {
        float[] c = new float[6], a = new float[8], b = new float[12];
        var e = Assert.Throws<ArgumentException>(() => CpuGemm.MatMul(c, a.AsSpan(1), b, [], 2, 3, 4,
            Transpose.No, Transpose.Yes, GemmAccumulate.Overwrite));
        Assert.Equal("a", e.ParamName);
        Assert.Contains("A [2,4] = 8", e.Message);
        e = Assert.Throws<ArgumentException>(() => CpuGemm.MatMul(c, a, b.AsSpan(1), [], 2, 3, 4,
            Transpose.No, Transpose.Yes, GemmAccumulate.Overwrite));
        Assert.Equal("b", e.ParamName);
        Assert.Contains("B stored [3,4] = 12", e.Message);
        e = Assert.Throws<ArgumentException>(() => CpuGemm.MatMul(c.AsSpan(1), a, b, [], 2, 3, 4,
            Transpose.No, Transpose.Yes, GemmAccumulate.Overwrite));
        Assert.Equal("c", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => CpuGemm.MatMul(c, a, b, new float[2], 2, 3, 4,
            Transpose.No, Transpose.Yes, GemmAccumulate.Overwrite));
        Assert.Equal("bias", e.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => CpuGemm.MatMul([], [], [], [], 0, 3, 4,
            Transpose.No, Transpose.Yes, GemmAccumulate.Overwrite));
    }

    private static float[] RandomArray(Random rng, int length)
    {
        var values = new float[length];
        for (int i = 0; i < length; i++)
            values[i] = (float)(rng.NextDouble() * 2 - 1);
        return values;
    }

    /// <summary>Σ_p op(A)[i,p]·op(B)[p,j] and Σ_p |op(A)[i,p]·op(B)[p,j]| in float64, each [M,N].</summary>
    private static (double[] Product, double[] Magnitude) Reference(float[] a, float[] b, int m, int n, int k,
        Transpose transA, Transpose transB)
    {
        var product = new double[m * n];
        var magnitude = new double[m * n];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0, abs = 0;
                for (int p = 0; p < k; p++)
                {
                    double x = transA == Transpose.No ? a[i * k + p] : a[p * m + i];
                    double y = transB == Transpose.No ? b[p * n + j] : b[j * k + p];
                    sum += x * y;
                    abs += Math.Abs(x * y);
                }
                product[i * n + j] = sum;
                magnitude[i * n + j] = abs;
            }
        }
        return (product, magnitude);
    }

    /// <summary>[Guard | C (NaN, or a copy of <paramref name="initial"/>) | Guard], the guards holding <see cref="GuardValue"/>.</summary>
    private static float[] GuardedOutput(int length, float[]? initial)
    {
        var buffer = new float[length + 2 * Guard];
        buffer.AsSpan().Fill(GuardValue);
        if (initial is null)
            buffer.AsSpan(Guard, length).Fill(float.NaN);
        else
            initial.CopyTo(buffer, Guard);
        return buffer;
    }

    private static void AssertGuardsIntact(float[] buffer, int length, string what)
    {
        for (int i = 0; i < Guard; i++)
        {
            Assert.True(buffer[i] == GuardValue, $"{what}: guard before C overwritten at {i - Guard}");
            Assert.True(buffer[Guard + length + i] == GuardValue, $"{what}: guard after C overwritten at +{i}");
        }
    }
}
