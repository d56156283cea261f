using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Spark.Native.Backends.Cuda;
using Spark.Native.Interop;

namespace Spark.Native.Diagnostics;

/// <summary>What the engine sees of the machine: processor, SIMD features, runtime, and GPU libraries.</summary>
public static class SystemReport
{
    /// <summary>One (name, value) pair per line of the report.</summary>
    public static IReadOnlyList<(string Name, string Value)> Collect()
    {
        var lines = new List<(string, string)>
        {
            ("os", RuntimeInformation.OSDescription),
            ("runtime", RuntimeInformation.FrameworkDescription),
            ("processor", $"{CpuModel()} ({RuntimeInformation.ProcessArchitecture}), {Environment.ProcessorCount} logical cores"),
            ("simd", SimdFeatures()),
            ("cpu backend", $"F32, {(Vector512.IsHardwareAccelerated ? "Vector512" : Vector256.IsHardwareAccelerated ? "Vector256" : "Vector128")} kernels, {Environment.ProcessorCount} threads"),
        };
        lines.AddRange(GpuLibraries());
        lines.Add(("cuda backend", CudaBackendStatus()));
        return lines;
    }

    /// <summary>Opens the CUDA backend (compiling or loading every kernel) and says whether it is usable, or why not.</summary>
    private static string CudaBackendStatus()
    {
        try
        {
            if (!CudaBackend.TryCreate(out var backend, out string reason)) return $"unavailable: {reason}";
            using (backend)
            {
                var d = backend.Device;
                return $"ready on {d.Name} (sm_{d.ComputeCapability}, kernels for {KernelCompiler.ArchName(d.ComputeCapability)}), " +
                    $"{CudaBackend.KernelFiles.Length} kernel files loaded, bf16 activations, fp32 accumulation";
            }
        }
        catch (SparkException e)
        {
            return $"failed to start: {e.Message}";
        }
    }

    /// <summary>Each CUDA library: where the resolver found it and its version; the driver also lists its devices.</summary>
    private static IEnumerable<(string, string)> GpuLibraries()
    {
        yield return ("cuda driver", Describe(NativeLibraries.Cuda, () =>
        {
            var (major, minor) = CudaDriver.DriverVersion();
            return $"CUDA {major}.{minor}";
        }));
        if (NativeLibraries.IsAvailable(NativeLibraries.Cuda))
        {
            var devices = new List<(string, string)>();
            try
            {
                int count = CudaDevice.Count();
                if (count == 0) devices.Add(("gpu", "none (the driver reports no device)"));
                for (int i = 0; i < count; i++)
                {
                    using var device = CudaDevice.Open(i);
                    devices.Add(($"gpu {i}", $"{device.Name}, sm_{device.ComputeCapability}, {device.MultiprocessorCount} SMs, " +
                        $"{device.TotalMemoryBytes / (double)(1L << 30):F1} GiB, {device.MaxSharedMemoryPerBlockOptin / 1024} KiB shared memory per block"));
                }
            }
            catch (CudaException e) { devices.Add(("gpu", $"unusable: {e.Message}")); }
            foreach (var d in devices) yield return d;
        }
        yield return ("nvrtc", Describe(NativeLibraries.Nvrtc, () =>
        {
            var (major, minor) = Nvrtc.Version();
            var archs = Nvrtc.SupportedArchs();
            return $"NVRTC {major}.{minor}" + (archs.Length > 0 ? $", sm_{archs.Min()}..sm_{archs.Max()}" : "");
        }));
        yield return ("cublasLt", Describe(NativeLibraries.CublasLt, () =>
        {
            var (major, minor, patch) = CublasLt.Version();
            return $"cuBLASLt {major}.{minor}.{patch}";
        }));
        yield return ("kernel cache", KernelCompiler.DefaultCacheDirectory());
    }

    private static string Describe(string library, Func<string> version)
    {
        if (NativeLibraries.PathOf(library) is not { } path)
            return $"not found (tried {string.Join(", ", NativeLibraries.CandidatesOf(library))} on the loader path, $CUDA_PATH/lib64, " +
                "/usr/local/cuda/lib64, /usr/local/nvidia/lib64 and pip NVIDIA wheels)";
        try { return $"{version()} ({path})"; }
        catch (Exception e) when (e is CudaException or EntryPointNotFoundException) { return $"found {path}, but {e.Message}"; }
    }

    private static string SimdFeatures()
    {
        var f = new List<string>();
        if (Avx512F.IsSupported) f.Add("avx512f");
        if (Avx512BW.IsSupported) f.Add("avx512bw");
        if (Avx512Vbmi.IsSupported) f.Add("avx512vbmi");
        if (Avx2.IsSupported) f.Add("avx2");
        if (Fma.IsSupported) f.Add("fma");
        if (System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported) f.Add("neon");
        return f.Count == 0 ? "none detected" : string.Join(" ", f);
    }

    private static string CpuModel()
    {
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                foreach (string line in File.ReadLines("/proc/cpuinfo"))
                    if (line.StartsWith("model name", StringComparison.Ordinal))
                        return line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { }
        return "unknown processor";
    }
}
