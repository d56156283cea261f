using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Spark.Native.Backends.Cuda;
using Spark.Native.Interop;

namespace Spark.Native.Benchmarks;

/// <summary>The GPU and host a benchmark ran on.</summary>
public sealed record GpuMachine(string Gpu, string ComputeCapability, long MemoryBytes, int Multiprocessors, int L2CacheBytes,
    string CudaDriverApi, string? NvidiaDriver, string Nvrtc, string CublasLt, string Host, int HostCores, string Dotnet)
{
    internal static GpuMachine Collect(CudaDevice device)
    {
        var (dMajor, dMinor) = device.DriverVersion;
        var (nMajor, nMinor) = Spark.Native.Interop.Nvrtc.Version();
        string cublas;
        try { var (a, b, c) = Spark.Native.Interop.CublasLt.Version(); cublas = $"{a}.{b}.{c}"; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { cublas = "unknown"; }
        return new GpuMachine(device.Name, $"{device.ComputeCapabilityMajor}.{device.ComputeCapabilityMinor}", device.TotalMemoryBytes,
            device.MultiprocessorCount, device.L2CacheBytes, $"{dMajor}.{dMinor}", NvidiaDriverVersion(), $"{nMajor}.{nMinor}", cublas,
            HostCpu(), Environment.ProcessorCount, RuntimeInformation.FrameworkDescription);
    }

    /// <summary>The kernel module's version from /proc/driver/nvidia/version (what nvidia-smi calls the driver version).</summary>
    private static string? NvidiaDriverVersion()
    {
        try
        {
            string text = File.ReadAllText("/proc/driver/nvidia/version");
            var match = System.Text.RegularExpressions.Regex.Match(text, @"Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)?)");
            return match.Success ? match.Groups[1].Value : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    private static string HostCpu()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal)) return line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return RuntimeInformation.ProcessArchitecture.ToString();
    }
}

/// <summary>Measured ceilings the kernels are judged against (null with an error when a measurement failed).</summary>
public sealed record Ceilings(double? CopyGbps, double? GemmTflops, string CopyModel, string GemmModel, string? CopyError, string? GemmError);

/// <summary>
/// One kernel's result. <c>Status</c> is ok, error (the op threw: <c>Error</c> says why; typically NotSupported while a
/// kernel is being written) or skipped (the run's time budget was spent). Achieved rates use the case's own FLOP and
/// byte models; <c>FractionOfCeiling</c> divides by the measured GEMM TFLOP/s (compute-bound) or copy GB/s (memory-bound).
/// <c>RetainedBytes</c>: device memory the op kept after its first call (cuMemGetInfo before and after).
/// <c>PeakExtraBytes</c>: the most device memory in use beyond the inputs during that first call, from cuMemGetInfo polled
/// by a second thread while it ran (an allocation shorter than one poll can be missed). Both count what the driver sees
/// (cuBLASLt workspaces and plans included), not a caching allocator's view as PyTorch's max_memory_allocated does.
/// </summary>
public sealed record KernelEntry(string Name, string Model, string Op, string Shape, string Bound, string Status,
    double? MedianMs, double? MinMs, double? MaxMs, int Runs, double Flops, double Bytes, string FlopModel, string ByteModel,
    double? Tflops, double? Gbps, double? FractionOfCeiling, long? RetainedBytes, long? PeakExtraBytes, string? Error);

/// <summary>The JSON of <c>spark bench kernels</c>.</summary>
public sealed record KernelBenchReport(string Suite, GpuMachine Machine, string Commit, DateTime TimestampUtc,
    IReadOnlyDictionary<string, object> Settings, Ceilings Ceilings, IReadOnlyList<KernelEntry> Entries);

/// <summary>JSON conventions of the benchmark reports (as benchmarks/Spark.Benchmarks: snake_case, indented, readable symbols).</summary>
public static class BenchJson
{
    /// <summary>snake_case names, indented, enums as strings, NaN and infinities as the strings "NaN", "Infinity".</summary>
    public static JsonSerializerOptions Options { get; } = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, // a NaN error of an invalid lab version is "NaN"
    };

    /// <summary>Writes <paramref name="report"/> to <paramref name="path"/> through a temporary file and a rename.</summary>
    public static void Write<T>(T report, string path)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temp = full + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(report, Options) + "\n");
        File.Move(temp, full, overwrite: true);
    }

    /// <summary>The commit to record: the given one, else $SPARK_COMMIT, else `git rev-parse HEAD` (+ "-dirty"), else "unknown".</summary>
    public static string Commit(string? given)
    {
        if (!string.IsNullOrWhiteSpace(given)) return given.Trim();
        if (Environment.GetEnvironmentVariable("SPARK_COMMIT") is { Length: > 0 } env) return env.Trim();
        string? head = Git("rev-parse HEAD");
        if (head is null) return "unknown";
        return string.IsNullOrEmpty(Git("status --porcelain --untracked-files=no")) ? head : head + "-dirty";
    }

    private static string? Git(string arguments)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("git", arguments)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            });
            if (process is null) return null;
            string output = process.StandardOutput.ReadToEnd().Trim();
            process.StandardError.ReadToEnd();
            process.WaitForExit();
            return process.ExitCode == 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }

    /// <summary>"12.3 ms" style formatting for the tables.</summary>
    internal static string Ms(double? ms) => ms switch
    {
        null => "-",
        < 0.1 => $"{ms * 1000:F1} us",
        < 100 => $"{ms:F3} ms",
        _ => $"{ms:F1} ms",
    };

    /// <summary>Opens the CUDA backend or throws the one-line reason this machine cannot run GPU benchmarks.</summary>
    internal static CudaBackend OpenBackend()
    {
        if (!CudaBackend.TryCreate(out var backend, out string reason))
            throw new SparkException($"no usable CUDA GPU: {reason}");
        return backend;
    }
}
