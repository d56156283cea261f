using Spark.Native.Backends.Cuda;
using Spark.Native.Benchmarks;
using Spark.Native.Interop;
using Spark.Native.Tests.Cli;

namespace Spark.Native.Tests.Benchmarks;

/// <summary><c>spark bench kernels</c> and <c>spark bench lab</c> as a user runs them, on a machine with or without a GPU.</summary>
public class BenchCommandTests
{
    private static bool HasGpu()
    {
        if (!NativeLibraries.IsAvailable(NativeLibraries.Cuda)) return false;
        try { return CudaDevice.Count() > 0; }
        catch (CudaException) { return false; }
    }

    [Theory]
    [InlineData("kernels")]
    [InlineData("lab")]
    public void WithoutAGpuTheBenchmarksStopWithOneErrorLine(string command)
    {
        if (HasGpu()) Assert.Skip("this machine has a GPU: the benchmarks would run");
        var (code, stdout, stderr) = CliTests.Spark("bench", command);
        Assert.Equal(1, code);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: no usable CUDA GPU: ", lines[0], StringComparison.Ordinal);
        Assert.Equal("", stdout);
    }

    [Theory]
    [InlineData("--model", "qwen2.5-3b", "--model: unknown model 'qwen2.5-3b' (expected qwen2.5-1.5b, qwen2.5-7b or all)")]
    [InlineData("--seq", "512,abc", "--seq: 'abc' in \"512,abc\" is not a sequence length")]
    [InlineData("--seq", "8", "--seq: '8' in \"8\" is not a sequence length")]
    [InlineData("--reps", "0", "--reps: 0 is not a positive integer")]
    [InlineData("--case-seconds", "-1", "--case-seconds: -1 is not a positive number of seconds")]
    public void KernelsRejectsBadArgumentsBeforeLookingForAGpu(string option, string value, string message)
    {
        var (code, _, stderr) = CliTests.Spark("bench", "kernels", option, value);
        Assert.Equal(1, code);
        Assert.StartsWith("error: ", stderr, StringComparison.Ordinal);
        Assert.Contains(message, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void LabRejectsAnUnknownFamily()
    {
        var (code, _, stderr) = CliTests.Spark("bench", "lab", "--family", "softmax");
        Assert.Equal(1, code);
        Assert.Contains("--family: unknown kernel family 'softmax' (expected rmsnorm, attention, logprob or all)", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void KernelsListPrintsThePlanWithoutAGpu()
    {
        var (code, stdout, stderr) = CliTests.Spark("bench", "kernels", "--list", "--model", "qwen2.5-1.5b", "--seq", "2048");
        Assert.True(code == 0, stderr);
        var names = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')[0]).ToList();
        Assert.Contains("qwen2.5-1.5b:matmul.lm_head:T4096xN151936xK1536", names);
        Assert.Contains("qwen2.5-1.5b:attention.fwd:B8xS2048", names);
        Assert.Contains("qwen2.5-1.5b:attention.decode:B64xS2048", names);
        Assert.Contains("qwen2.5-1.5b:logprob.fwd+bwd:T4096xH1536xV151936", names);
        Assert.Contains("qwen2.5-1.5b:adamw.master:P1543714304", names);
        Assert.Contains("2·T·N·K", stdout, StringComparison.Ordinal);

        var filtered = CliTests.Spark("bench", "kernels", "--list", "--filter", "attention.bwd");
        Assert.Equal(0, filtered.Code);
        Assert.Equal(6, filtered.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // 2 models × 3 lengths
    }

    [Fact]
    public void LabListNamesEveryVersion()
    {
        var (code, stdout, stderr) = CliTests.Spark("bench", "lab", "--list", "--family", "attention");
        Assert.True(code == 0, stderr);
        Assert.Equal(4, stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("lab/attention/v3_tiled_shared.cu", stdout, StringComparison.Ordinal);
        Assert.Contains("(engine op)", stdout, StringComparison.Ordinal);
    }
}
