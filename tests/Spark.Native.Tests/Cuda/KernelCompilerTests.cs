using Spark.Native.Backends.Cuda;
using Spark.Native.Interop;
using static Spark.Native.Tests.Cuda.CudaTestEnvironment;

namespace Spark.Native.Tests.Cuda;

/// <summary>The NVRTC toolchain: runs for real wherever NVRTC loads (no GPU needed).</summary>
public class KernelCompilerTests
{
    [Fact]
    public void KernelFilesAreEmbeddedWithTheirIncludeNames()
    {
        Assert.Contains(KernelCompiler.Sources, s => s.Name == "smoke.cu" && s.Text.Contains("fill_bf16", StringComparison.Ordinal));
        Assert.Contains(KernelCompiler.Headers, h => h.Name == "common.cuh" && h.Text.Contains("float_to_bf16", StringComparison.Ordinal));
        Assert.All(KernelCompiler.Sources, s => Assert.EndsWith(".cu", s.Name, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(80)]
    [InlineData(90)]
    public void EveryEmbeddedKernelCompilesToACubin(int computeCapability)
    {
        RequireNvrtc();
        using var cache = new TempFolder();
        var compiler = new KernelCompiler(cache.Path);
        var failures = new List<string>();
        foreach (var source in KernelCompiler.Sources)
        {
            try
            {
                var kernel = compiler.Compile(source, computeCapability);
                Assert.Equal(KernelCompiler.ArchName(computeCapability), kernel.Arch);
                Assert.True(kernel.Cubin.Length > 4 && kernel.Cubin[0] == 0x7F && kernel.Cubin[1] == (byte)'E', $"{source.Name}: cubin is not an ELF file");
            }
            catch (CudaException e)
            {
                failures.Add($"{source.Name} sm_{computeCapability}: {e.Message}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
    }

    [Fact]
    public void ASyntaxErrorThrowsWithTheProgramLog()
    {
        RequireNvrtc();
        using var cache = new TempFolder();
        var broken = new KernelSource("broken.cu", "#include \"common.cuh\"\nextern \"C\" __global__ void broken(float* p) { p[0] = ; }\n");
        var e = Assert.Throws<CudaException>(() => new KernelCompiler(cache.Path).Compile(broken, 80));
        Assert.Equal("nvrtc", e.Library);
        Assert.Equal("NVRTC_ERROR_COMPILATION", e.ErrorName);
        Assert.Contains("broken.cu(2)", e.Message, StringComparison.Ordinal);   // the log line: file(line): error: ...
        Assert.Contains("expected an expression", e.Message, StringComparison.Ordinal);
        Assert.Contains("nvrtcCompileProgram(broken.cu, sm_80)", e.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(cache.Path));
    }

    [Fact]
    public void TheDiskCacheReturnsTheSameCubinWithoutRecompiling()
    {
        RequireNvrtc();
        using var cache = new TempFolder();
        var first = new KernelCompiler(cache.Path);
        var compiled = first.Compile("smoke.cu", 80);
        Assert.False(compiled.FromCache);
        Assert.Equal(1, first.Compilations);
        Assert.Empty(Directory.GetFiles(cache.Path, "*.tmp"));

        var second = new KernelCompiler(cache.Path);
        var cached = second.Compile("smoke.cu", 80);
        Assert.True(cached.FromCache);
        Assert.Equal(0, second.Compilations);
        Assert.Equal(compiled.Cubin, cached.Cubin);
        Assert.Equal(compiled.Log, cached.Log);

        // any change to a header is a different key
        var headers = KernelCompiler.Headers.Select(h => h with { Text = h.Text + "\n// changed\n" }).ToList();
        var source = KernelCompiler.Sources.Single(s => s.Name == "smoke.cu");
        Assert.False(second.Compile(source, 80, headers).FromCache);
        Assert.Equal(1, second.Compilations);
    }

    [Fact]
    public void ThePtxasReportGivesRegistersAndSpills()
    {
        RequireNvrtc();
        using var cache = new TempFolder();
        var kernel = new KernelCompiler(cache.Path).Compile("smoke.cu", 80);
        var fill = Assert.Single(kernel.Functions, f => f.Function == "fill_bf16");
        Assert.InRange(fill.Registers, 1, 255);
        Assert.Equal(0, kernel.SpillBytes);
    }

    [Fact]
    public void ParsesSpillsFromAPtxasLog()
    {
        const string log = """
            ptxas info    : 0 bytes gmem
            ptxas info    : Compiling entry function 'big' for 'sm_90a'
            ptxas info    : Function properties for big
                48 bytes stack frame, 40 bytes spill stores, 36 bytes spill loads
            ptxas info    : Used 255 registers, 380 bytes cmem[0]
            ptxas info    : Compiling entry function 'small' for 'sm_90a'
            ptxas info    : Function properties for small
                0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
            ptxas info    : Used 12 registers, 364 bytes cmem[0]
            """;
        var usage = KernelCompiler.ParseResourceUsage(log);
        Assert.Equal([new("big", 255, 48, 40, 36), new("small", 12, 0, 0, 0)], usage);
    }

    [Theory]
    [InlineData("sm_80", 80)]
    [InlineData("sm_90a", 90)]
    [InlineData("8.6", 86)]
    [InlineData("100", 100)]
    public void ParsesArchNames(string text, int expected) => Assert.Equal(expected, KernelCompiler.ParseArch(text));

    [Fact]
    public void TheResolverReportsWhereNvrtcWasFound()
    {
        RequireNvrtc();
        string? path = NativeLibraries.PathOf(NativeLibraries.Nvrtc);
        Assert.NotNull(path);
        Assert.Contains("nvrtc", Path.GetFileName(path), StringComparison.Ordinal);
        var (major, _) = KernelCompiler.NvrtcVersion;
        Assert.InRange(major, 11, 99);
        Assert.Contains(80, KernelCompiler.SupportedArchs);
    }
}
