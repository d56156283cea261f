using Spark.Native.Tests.Cli;
using static Spark.Native.Tests.Cuda.CudaTestEnvironment;

namespace Spark.Native.Tests.Cuda;

/// <summary><c>spark kernels compile</c> and the GPU lines of <c>spark doctor</c>, run as a user runs them.</summary>
public class KernelsCliTests
{
    [Fact]
    public void KernelsCompileReportsEveryFileAndArchAndUsesTheCacheTheSecondTime()
    {
        RequireNvrtc();
        using var cache = new TempFolder();
        var env = new Dictionary<string, string> { ["XDG_CACHE_HOME"] = cache.Path };
        var (code, stdout, stderr) = CliTests.Spark(env, "kernels", "compile", "--arch", "sm_80,sm_90");
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("smoke.cu", stdout, StringComparison.Ordinal);
        Assert.Contains("sm_80", stdout, StringComparison.Ordinal);
        Assert.Contains("registers", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("(cached)", stdout, StringComparison.Ordinal);

        var again = CliTests.Spark(env, "kernels", "compile", "--arch", "sm_80");
        Assert.Equal(0, again.Code);
        Assert.Contains("(cached)", again.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void KernelsCompileRejectsAnUnknownArch()
    {
        var (code, _, stderr) = CliTests.Spark("kernels", "compile", "--arch", "volta");
        Assert.Equal(1, code);
        Assert.Contains("'volta' is not a GPU architecture", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void DoctorReportsEachCudaLibrary()
    {
        var (code, stdout, _) = CliTests.Spark("doctor");
        Assert.Equal(0, code);
        foreach (string name in new[] { "cuda driver", "nvrtc", "cublasLt", "kernel cache" })
            Assert.Contains(name, stdout, StringComparison.Ordinal);
        if (Spark.Native.Backends.Cuda.KernelCompiler.IsNvrtcAvailable)
            Assert.Matches(@"nvrtc\s+NVRTC \d+\.\d+", stdout);
    }
}
