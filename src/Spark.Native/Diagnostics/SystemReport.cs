using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
        foreach (var (what, candidates) in NativeLibraries)
            lines.Add((what, Probe(candidates)));
        lines.Add(("cuda backend", "not in this build yet (CPU reference only)"));
        return lines;
    }

    private static readonly (string, string[])[] NativeLibraries =
    [
        ("cuda driver", ["libcuda.so.1", "nvcuda.dll"]),
        ("nvrtc", ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"]),
        ("cublasLt", ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11", "libcublasLt.so"]),
    ];

    /// <summary>Folders searched after the loader's default path: $CUDA_PATH/lib64, /usr/local/cuda/lib64, the driver's folder.</summary>
    private static IEnumerable<string> CudaFolders()
    {
        if (Environment.GetEnvironmentVariable("CUDA_PATH") is { Length: > 0 } cudaPath) yield return Path.Combine(cudaPath, "lib64");
        yield return "/usr/local/cuda/lib64";
        yield return "/usr/local/nvidia/lib64";
    }

    private static string Probe(string[] candidates)
    {
        foreach (string name in candidates)
        {
            foreach (string path in CudaFolders().Select(folder => Path.Combine(folder, name)).Prepend(name))
            {
                if (NativeLibrary.TryLoad(path, out var handle))
                {
                    NativeLibrary.Free(handle);
                    return $"found {path}";
                }
            }
        }
        return $"not found (tried {string.Join(", ", candidates)} on the default path, $CUDA_PATH/lib64, /usr/local/cuda/lib64)";
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
