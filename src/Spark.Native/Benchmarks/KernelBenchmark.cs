using System.Diagnostics;
using Spark.Native.Backends.Cuda;
using Spark.Native.Interop;

namespace Spark.Native.Benchmarks;

/// <summary>Settings of <c>spark bench kernels</c>.</summary>
/// <param name="Plan">What to measure.</param>
/// <param name="Reps">Most timed runs per kernel (at least 3 are taken).</param>
/// <param name="Warmup">Untimed runs first (the first call also compiles plans and grows scratch).</param>
/// <param name="CaseSeconds">GPU time after which a kernel stops taking more runs (once it has 3).</param>
/// <param name="BudgetSeconds">Wall time after which the remaining kernels are skipped (0: none).</param>
/// <param name="Filter">Only cases whose name contains this text (null: all).</param>
/// <param name="JsonPath">Where the JSON goes; rewritten after every kernel so a killed run keeps what it measured.</param>
/// <param name="Commit">Commit to record (else $SPARK_COMMIT, else git).</param>
public sealed record KernelBenchSettings(KernelPlanSettings Plan, int Reps = 20, int Warmup = 2, double CaseSeconds = 2.0,
    double BudgetSeconds = 0, string? Filter = null, string? JsonPath = null, string? Commit = null);

/// <summary>
/// <c>spark bench kernels</c>: measures the ceilings (device-to-device copy GB/s, a bf16 8192³ GEMM through the
/// backend), then each case of <see cref="KernelPlan"/> through <see cref="Backends.IBackend"/> on the CUDA backend, timed
/// with CUDA events (see <see cref="GpuTimer"/>). An op that throws becomes an entry with its error; the run goes on.
/// </summary>
public static class KernelBenchmark
{
    private const long CopyBytes = 1L << 30;

    /// <summary>Runs the benchmark, logging progress to <paramref name="log"/>; throws <see cref="SparkException"/> without a usable GPU.</summary>
    public static KernelBenchReport Run(KernelBenchSettings settings, TextWriter log)
    {
        var cases = KernelPlan.Build(settings.Plan)
            .Where(c => settings.Filter is null || c.Name.Contains(settings.Filter, StringComparison.OrdinalIgnoreCase)).ToList();
        using var backend = BenchJson.OpenBackend();
        var device = backend.Device;
        using var context = new BenchContext(backend, device, new KernelCompiler());
        using var timer = new GpuTimer(device);
        var clock = Stopwatch.StartNew();
        var machine = GpuMachine.Collect(device);
        string commit = BenchJson.Commit(settings.Commit);
        log.WriteLine($"{machine.Gpu} (sm_{device.ComputeCapability}, {machine.Multiprocessors} SMs, {machine.MemoryBytes / (double)(1L << 30):F1} GiB), commit {commit}");

        var settingsJson = new Dictionary<string, object>
        {
            ["models"] = settings.Plan.Models.Select(m => m.Name).ToArray(),
            ["sequence_lengths"] = settings.Plan.SequenceLengths.ToArray(),
            ["tokens"] = settings.Plan.Tokens,
            ["attention_tokens"] = settings.Plan.AttentionTokens,
            ["decode_rows"] = settings.Plan.DecodeRows,
            ["reps"] = settings.Reps,
            ["warmup"] = settings.Warmup,
            ["case_seconds"] = settings.CaseSeconds,
            ["budget_seconds"] = settings.BudgetSeconds,
            ["filter"] = settings.Filter ?? "",
            ["timing"] = "CUDA events on the legacy default stream around one op call; median of the runs; before each run an " +
                $"untimed write of {timer.FlushBytes >> 20} MiB evicts L2; inputs uniform random (never zeros), filled on the device",
            ["backend"] = backend.Name,
        };

        var ceilings = MeasureCeilings(context, timer, settings, log);
        var entries = new List<KernelEntry>();
        void Save()
        {
            if (settings.JsonPath is { } path)
                BenchJson.Write(new KernelBenchReport("kernels", machine, commit, DateTime.UtcNow, settingsJson, ceilings, entries), path);
        }
        Save();

        foreach (var c in cases)
        {
            if (settings.BudgetSeconds > 0 && clock.Elapsed.TotalSeconds > settings.BudgetSeconds)
            {
                entries.Add(Entry(c, "skipped", null, default, ceilings, $"the run's budget of {settings.BudgetSeconds:F0} s was spent"));
                continue;
            }
            var entry = Measure(c, context, timer, settings, ceilings);
            entries.Add(entry);
            log.WriteLine(entry.Status == "ok"
                ? $"  {c.Name,-58} {BenchJson.Ms(entry.MedianMs),12}  {Rate(entry),14}"
                : $"  {c.Name,-58} {entry.Status}: {entry.Error}");
            Save();
        }
        var report = new KernelBenchReport("kernels", machine, commit, DateTime.UtcNow, settingsJson, ceilings, entries);
        Save();
        return report;
    }

    private static KernelEntry Measure(KernelCase c, BenchContext context, GpuTimer timer, KernelBenchSettings settings, Ceilings ceilings)
    {
        PreparedCase? prepared = null;
        try
        {
            prepared = c.Prepare!(context);
            context.Device.Synchronize();
            long before = context.Device.MemoryInfo().Free;
            long lowest;
            using (var poll = new MemoryPoll(context.Device, before))
            {
                prepared.Run();
                context.Device.Synchronize();
                lowest = poll.Stop();
            }
            long after = context.Device.MemoryInfo().Free;
            long retained = Math.Max(0, before - after), peak = Math.Max(retained, before - Math.Min(lowest, after));
            double[] ms = timer.Measure(prepared.Run, prepared.Reset, Math.Max(0, settings.Warmup - 1), settings.Reps, settings.CaseSeconds);
            return Entry(c, "ok", ms, (retained, peak), ceilings, null);
        }
        catch (Exception e)
        {
            // whatever one op throws (NotSupported while its kernel is being written, a CUDA error, a bad shape) is that
            // entry's result; the run goes on
            return Entry(c, "error", null, default, ceilings, $"{e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
        }
        finally
        {
            prepared?.Dispose();
        }
    }

    private static KernelEntry Entry(KernelCase c, string status, double[]? ms, (long Retained, long Peak)? memory, Ceilings ceilings, string? error)
    {
        double? median = ms is null ? null : GpuTimer.Median(ms);
        double? tflops = median is > 0 ? c.Flops / (median.Value * 1e-3) / 1e12 : null;
        double? gbps = median is > 0 ? c.Bytes / (median.Value * 1e-3) / 1e9 : null;
        double? fraction = c.Bound == KernelBound.Compute
            ? (tflops is not null && ceilings.GemmTflops is > 0 ? tflops / ceilings.GemmTflops : null)
            : (gbps is not null && ceilings.CopyGbps is > 0 ? gbps / ceilings.CopyGbps : null);
        return new KernelEntry(c.Name, c.Model, c.Op, c.Shape, c.Bound == KernelBound.Compute ? "compute" : "memory", status,
            median, ms?[0], ms?[^1], ms?.Length ?? 0, c.Flops, c.Bytes, c.FlopModel, c.ByteModel, tflops, gbps, fraction, memory?.Retained, memory?.Peak, error);
    }

    private static Ceilings MeasureCeilings(BenchContext context, GpuTimer timer, KernelBenchSettings settings, TextWriter log)
    {
        const string CopyModel = "cuMemcpyDtoD of 1 GiB; GB/s counts the read and the write (2 GiB moved)";
        const string GemmModel = "bf16 8192³ through the backend's MatMul (cuBLASLt, fp32 compute), 2·N³ FLOPs";
        double? copy = null, gemm = null;
        string? copyError = null, gemmError = null;
        try
        {
            var device = context.Device;
            using var a = device.Allocate(CopyBytes);
            using var b = device.Allocate(CopyBytes);
            device.Fill32(a, 0x3f800000, CopyBytes / 4);
            double[] ms = timer.Measure(() => device.CopyDeviceToDevice(b, a, CopyBytes), null, settings.Warmup, Math.Max(settings.Reps, 10), 1.0);
            copy = 2.0 * CopyBytes / (GpuTimer.Median(ms) * 1e-3) / 1e9;
        }
        catch (CudaException e) { copyError = e.Message; }
        var gemmCase = KernelPlan.GemmCeiling();
        var entry = Measure(gemmCase, context, timer, settings with { CaseSeconds = 1.0 }, new Ceilings(null, null, "", "", null, null));
        if (entry.Status == "ok") gemm = entry.Tflops; else gemmError = entry.Error;
        log.WriteLine($"ceilings: copy {(copy is null ? "failed: " + copyError : $"{copy:F0} GB/s")}, " +
            $"bf16 GEMM 8192³ {(gemm is null ? "failed: " + gemmError : $"{gemm:F0} TFLOP/s")}");
        return new Ceilings(copy, gemm, CopyModel, GemmModel, copyError, gemmError);
    }

    internal static string Rate(KernelEntry e) =>
        e.Bound == "compute" ? (e.Tflops is { } t ? $"{t:F1} TFLOP/s" : "-") : (e.Gbps is { } g ? $"{g:F0} GB/s" : "-");

    /// <summary>The short table printed last: one line per kernel.</summary>
    public static void PrintTable(KernelBenchReport report, TextWriter output)
    {
        output.WriteLine($"{report.Machine.Gpu}, driver {report.Machine.NvidiaDriver ?? "?"} (CUDA {report.Machine.CudaDriverApi}), commit {report.Commit}");
        output.WriteLine($"ceilings: copy {(report.Ceilings.CopyGbps is { } c ? $"{c:F0} GB/s" : "n/a")}, " +
            $"GEMM {(report.Ceilings.GemmTflops is { } g ? $"{g:F0} TFLOP/s" : "n/a")}");
        output.WriteLine($"{"kernel",-58} {"median",12} {"rate",14} {"of ceiling",10}");
        foreach (var e in report.Entries)
        {
            if (e.Status != "ok") { output.WriteLine($"{e.Name,-58} {e.Status,12}  {Truncate(e.Error, 60)}"); continue; }
            output.WriteLine($"{e.Name,-58} {BenchJson.Ms(e.MedianMs),12} {Rate(e),14} {(e.FractionOfCeiling is { } f ? $"{f:P0}" : "-"),10}");
        }
        int ok = report.Entries.Count(e => e.Status == "ok");
        output.WriteLine($"{ok} of {report.Entries.Count} kernels measured, {report.Entries.Count(e => e.Status == "error")} errors, " +
            $"{report.Entries.Count(e => e.Status == "skipped")} skipped");
    }

    internal static string Truncate(string? s, int length) => s is null ? "" : s.Length <= length ? s : s[..(length - 1)] + "…";

    /// <summary>Polls the device's free memory on a second thread until stopped; <see cref="Stop"/> returns the lowest seen.</summary>
    private sealed class MemoryPoll : IDisposable
    {
        private readonly Thread _thread;
        private volatile bool _stop;
        private long _lowest;

        public MemoryPoll(CudaDevice device, long start)
        {
            _lowest = start;
            _thread = new Thread(() =>
            {
                try
                {
                    while (!_stop)
                    {
                        long free = device.MemoryInfo().Free;
                        if (free < Interlocked.Read(ref _lowest)) Interlocked.Exchange(ref _lowest, free);
                        Thread.Sleep(0);
                    }
                }
                catch (CudaException) { } // a failing op breaks the context; its error is reported by the main thread
            }) { IsBackground = true, Name = "spark-bench-memory-poll" };
            _thread.Start();
        }

        public long Stop()
        {
            _stop = true;
            _thread.Join();
            return Interlocked.Read(ref _lowest);
        }

        public void Dispose()
        {
            if (!_stop) Stop();
        }
    }
}
