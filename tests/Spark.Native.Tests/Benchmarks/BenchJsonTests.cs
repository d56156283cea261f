using System.Text.Json;
using Spark.Native.Benchmarks;

namespace Spark.Native.Tests.Benchmarks;

/// <summary>The JSON field names benchmarks/kernel_ratios.py reads (the C# half of the join's contract).</summary>
public class BenchJsonTests
{
    private static readonly GpuMachine Machine = new("NVIDIA H200", "9.0", 150_000_000_000, 132, 50 << 20, "13.0", "580.0", "13.0", "13.0.0",
        "host", 16, ".NET 10");

    [Fact]
    public void KernelReportsUseTheNamesTheJoinReads()
    {
        var entry = new KernelEntry("qwen2.5-1.5b:logprob.fwd+bwd:T4096xH1536xV151936", "qwen2.5-1.5b", "logprob.fwd+bwd", "T4096xH1536xV151936",
            "compute", "ok", 12.5, 12.0, 13.0, 20, 7.6e12, 2.8e9, "8·T·V·H", "bytes", 611.0, 224.0, 0.77, 1 << 20, 3 << 20, null);
        var failed = entry with { Name = "x:attention.bwd:B8xS2048", Op = "attention.bwd", Status = "error", MedianMs = null, Error = "NotSupportedException: later" };
        var report = new KernelBenchReport("kernels", Machine, "abc", DateTime.UnixEpoch, new Dictionary<string, object> { ["models"] = new[] { "qwen2.5-1.5b" } },
            new Ceilings(4300, 790, "copy", "gemm", null, null), [entry, failed]);
        using var json = Write(report);
        var root = json.RootElement;
        Assert.Equal(4300, root.GetProperty("ceilings").GetProperty("copy_gbps").GetDouble());
        Assert.Equal(790, root.GetProperty("ceilings").GetProperty("gemm_tflops").GetDouble());
        Assert.Equal("NVIDIA H200", root.GetProperty("machine").GetProperty("gpu").GetString());
        var first = root.GetProperty("entries")[0];
        foreach (string field in new[] { "name", "op", "status", "bound", "median_ms", "tflops", "gbps", "fraction_of_ceiling", "peak_extra_bytes", "retained_bytes", "flop_model", "byte_model" })
            Assert.True(first.TryGetProperty(field, out _), field);
        Assert.Equal(3 << 20, first.GetProperty("peak_extra_bytes").GetInt64());
        var second = root.GetProperty("entries")[1];
        Assert.Equal(JsonValueKind.Null, second.GetProperty("median_ms").ValueKind);
        Assert.Equal("NotSupportedException: later", second.GetProperty("error").GetString());
    }

    [Fact]
    public void ANaNErrorOfAnInvalidLabVersionIsWritten()
    {
        var entry = new LabEntry("attention", 2, "row", "lab/attention/v2_row_online_softmax.cu", "small", "big", "invalid",
            new Dictionary<string, double> { ["out"] = double.NaN }, 1e-4, null, null, 0, 1, 1, null, null, null, null, "over the tolerance");
        using var json = Write(new LabReport("lab", Machine, "abc", DateTime.UnixEpoch, new Dictionary<string, object>(), [entry]));
        Assert.Equal("NaN", json.RootElement.GetProperty("entries")[0].GetProperty("nmse").GetProperty("out").GetString());
    }

    private static JsonDocument Write<T>(T report)
    {
        string path = Path.Combine(Path.GetTempPath(), $"spark-bench-{Guid.NewGuid():N}.json");
        try
        {
            BenchJson.Write(report, path);
            return JsonDocument.Parse(File.ReadAllText(path));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
