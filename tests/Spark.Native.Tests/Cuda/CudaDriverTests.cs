using Spark.Native.Backends.Cuda;
using Spark.Native.Interop;
using static Spark.Native.Tests.Cuda.CudaTestEnvironment;

namespace Spark.Native.Tests.Cuda;

/// <summary>The driver API on a real GPU; every test skips with a reason when libcuda.so.1 is absent.</summary>
public class CudaDriverTests
{
    [Fact]
    public void QueriesTheDevice()
    {
        using var device = OpenDevice();
        Assert.False(string.IsNullOrWhiteSpace(device.Name));
        Assert.InRange(device.ComputeCapabilityMajor, 5, 20);
        Assert.True(device.TotalMemoryBytes > 1L << 30);
        Assert.True(device.MultiprocessorCount > 0);
        Assert.True(device.DriverVersion.Major >= 11);
    }

    [Fact]
    public void CopiesARoundTripThroughDeviceMemory()
    {
        using var device = OpenDevice();
        float[] host = Enumerable.Range(0, 1000).Select(i => i * 0.5f - 7f).ToArray();
        using var a = device.Allocate(host.Length * sizeof(float));
        using var b = device.Allocate(host.Length * sizeof(float));
        device.CopyToDevice<float>(a, host);
        device.CopyDeviceToDevice(b, a, host.Length * sizeof(float));
        var back = new float[host.Length];
        device.CopyToHost<float>(back, b);
        Assert.Equal(host, back);

        device.Fill32(a, 0x3F800000u, host.Length); // 1.0f
        device.CopyToHost<float>(back, a);
        Assert.All(back, v => Assert.Equal(1f, v));
    }

    [Fact]
    public unsafe void LaunchesTheSmokeKernel()
    {
        RequireNvrtc();
        using var device = OpenDevice();
        using var cache = new TempFolder();
        var kernel = new KernelCompiler(cache.Path).Compile("smoke.cu", device.ComputeCapability);
        using var module = device.LoadModule(kernel.Cubin);
        var fill = device.GetFunction(module, "fill_bf16");
        Assert.True(CudaDevice.GetAttribute(fill, CuFunctionAttribute.NumRegs) > 0);

        const int n = 1000;
        using var output = device.Allocate(n * sizeof(ushort));
        device.Fill32(output, 0, n / 2);
        ulong pointer = output.Pointer;
        float value = 1.5f;
        int count = n - 1; // the last element must stay untouched
        IntPtr[] args = [(IntPtr)(&pointer), (IntPtr)(&value), (IntPtr)(&count)];
        using var stream = device.CreateStream();
        device.Launch(fill, ((n + 255) / 256, 1, 1), (256, 1, 1), 0, stream, args);
        device.Synchronize(stream);

        var back = new ushort[n];
        device.CopyToHost<ushort>(back, output);
        Assert.All(back[..^1], v => Assert.Equal((ushort)0x3FC0, v)); // bf16(1.5)
        Assert.Equal((ushort)0, back[^1]);
    }
}
