using Spark.Native.Backends.Cuda;
using Spark.Native.Interop;

namespace Spark.Native.Tests.Cuda;

/// <summary>
/// Gates for CUDA tests. NVRTC tests skip with a reason when NVRTC does not load, except under CI=true, where the
/// compile checks are part of the contract (CI installs libnvrtc) and a missing NVRTC fails. Driver tests skip when
/// libcuda.so.1 is absent or reports no device.
/// </summary>
internal static class CudaTestEnvironment
{
    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public static void RequireNvrtc()
    {
        if (KernelCompiler.IsNvrtcAvailable) return;
        string reason = $"NVRTC not found (tried {string.Join(", ", NativeLibraries.CandidatesOf(NativeLibraries.Nvrtc))} on the loader path, " +
            "$CUDA_PATH/lib64, /usr/local/cuda/lib64 and pip NVIDIA wheels); on Debian: apt-get install libnvrtc11.2 (non-free)";
        if (IsCi) Assert.Fail($"CI=true requires the kernel compile checks: {reason}");
        Assert.Skip(reason);
    }

    /// <summary>Whether the CUDA backend starts here (the reason when not): the probe tests of models on the cuda device use.</summary>
    public static bool CudaBackendAvailable(out string reason)
    {
        bool available = CudaBackend.TryCreate(out var probe, out reason);
        probe?.Dispose();
        return available;
    }

    /// <summary>Skips the test, with the reason, when the CUDA backend cannot start on this machine.</summary>
    public static void RequireCudaBackend()
    {
        if (!CudaBackendAvailable(out string reason)) Assert.Skip($"no CUDA: {reason}");
    }

    public static CudaDevice OpenDevice()
    {
        if (!NativeLibraries.IsAvailable(NativeLibraries.Cuda))
            Assert.Skip("no CUDA driver: libcuda.so.1 not found (this machine has no NVIDIA GPU)");
        int count;
        try { count = CudaDevice.Count(); }
        catch (CudaException e) { Assert.Skip($"CUDA driver present but unusable: {e.Message}"); throw; }
        if (count == 0) Assert.Skip("CUDA driver present but reports no device");
        return CudaDevice.Open(0);
    }

    /// <summary>A fresh empty folder under the temp directory, deleted on dispose.</summary>
    public sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("spark-cuda-test-").FullName;
        public void Dispose()
        {
            try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
        }
    }
}
