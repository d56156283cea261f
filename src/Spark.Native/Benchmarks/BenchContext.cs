using Spark.Native.Backends;
using Spark.Native.Backends.Cuda;
using Spark.Native.Interop;
using Spark.Native.Tensors;

namespace Spark.Native.Benchmarks;

/// <summary>
/// The GPU side of a benchmark run: the backend (every engine op is called through <see cref="IBackend"/>), its
/// device, the lab's fill kernel for inputs (hash-based uniform values on the device, never zeros), and loaded lab
/// modules. One per run; disposes what it loaded, not the backend.
/// </summary>
internal sealed unsafe class BenchContext : IDisposable
{
    private readonly List<CudaModuleHandle> _modules = [];
    private readonly Dictionary<string, CudaFunction> _functions = new(StringComparer.Ordinal);
    private readonly KernelCompiler _compiler;
    private uint _seed = 1;

    public BenchContext(IBackend backend, CudaDevice device, KernelCompiler compiler)
    {
        Backend = backend;
        Device = device;
        _compiler = compiler;
    }

    public IBackend Backend { get; }
    public CudaDevice Device { get; }

    /// <summary>Entry point <paramref name="function"/> of the embedded file <paramref name="file"/> (e.g. lab/fill.cu), compiled and loaded once.</summary>
    public CudaFunction Function(string file, string function)
    {
        string key = file + ":" + function;
        if (_functions.TryGetValue(key, out var f)) return f;
        var compiled = _compiler.Compile(file, Device.ComputeCapability);
        var module = Device.LoadModule(compiled.Cubin);
        _modules.Add(module);
        foreach (var usage in compiled.Functions)
            _functions[file + ":" + usage.Function] = Device.GetFunction(module, usage.Function);
        return _functions.TryGetValue(key, out f) ? f : throw new SparkException($"{file} has no entry point '{function}'");
    }

    /// <summary>
    /// Launches a loaded kernel on the backend's stream (the legacy default stream) with its arguments by value, so
    /// callers (closures timed many times) need no fixed locals.
    /// </summary>
    public void Launch(CudaFunction function, (uint X, uint Y, uint Z) grid, uint block, params ReadOnlySpan<KernelArg> args)
    {
        Span<ulong> values = stackalloc ulong[args.Length];
        Span<IntPtr> pointers = stackalloc IntPtr[args.Length];
        fixed (ulong* v = values)
        {
            for (int i = 0; i < args.Length; i++)
            {
                values[i] = args[i].Bits;
                pointers[i] = (IntPtr)(v + i);
            }
            Device.Launch(function, grid, (block, 1, 1), 0, null, pointers);
        }
    }

    /// <summary>A zero-filled tensor.</summary>
    public Tensor Zeros(DType dtype, params int[] shape) => Backend.Allocate(dtype, shape);

    /// <summary>A tensor of uniform values in [lo, hi), filled on the device; each call gets the next seed.</summary>
    public Tensor Random(DType dtype, float lo, float hi, params int[] shape)
    {
        var t = Backend.Allocate(dtype, shape);
        try { FillUniform(t, lo, hi, _seed++); }
        catch { t.Dispose(); throw; }
        return t;
    }

    /// <summary>Fills <paramref name="t"/> with lab/fill.cu's uniform values of <paramref name="seed"/>.</summary>
    public void FillUniform(Tensor t, float lo, float hi, uint seed)
    {
        long n = t.Length;
        if (n == 0) return;
        var f = Function("lab/fill.cu", t.DType == DType.BF16 ? "lab_fill_bf16" : "lab_fill_f32");
        uint blocks = (uint)Math.Clamp((n + 255) / 256, 1, 65535L * 16);
        Launch(f, (blocks, 1, 1), 256, PointerOf(t), n, seed, lo, hi);
    }

    /// <summary>The device address of a CUDA tensor's first element.</summary>
    public static ulong PointerOf(Tensor t) =>
        t.Memory is CudaMemory memory ? memory.Pointer(t.Offset) : throw new ArgumentException($"{t} is not a CUDA tensor");

    /// <summary>Uniform ints in [0, bound) from a fixed seed (token ids, targets).</summary>
    public static int[] Ids(int count, int bound, int seed)
    {
        var random = new Random(seed);
        var ids = new int[count];
        for (int i = 0; i < ids.Length; i++) ids[i] = random.Next(bound);
        return ids;
    }

    public void Dispose()
    {
        foreach (var m in _modules) m.Dispose();
        _modules.Clear();
        _functions.Clear();
    }
}

/// <summary>A kernel argument by value: 64-bit pointers and integers, 32-bit ints, uints and floats (little-endian, low bytes first).</summary>
internal readonly struct KernelArg
{
    private KernelArg(ulong bits) => Bits = bits;
    public ulong Bits { get; }
    public static implicit operator KernelArg(ulong pointer) => new(pointer);
    public static implicit operator KernelArg(long value) => new((ulong)value);
    public static implicit operator KernelArg(int value) => new((uint)value);
    public static implicit operator KernelArg(uint value) => new(value);
    public static implicit operator KernelArg(float value) => new(BitConverter.SingleToUInt32Bits(value));
}

/// <summary>
/// A benchmark case made ready on the GPU: the region to time, an optional untimed reset before each run (e.g. restoring
/// an input the region overwrites), and the tensors it owns.
/// </summary>
internal sealed class PreparedCase(Action run, params IDisposable?[] owned) : IDisposable
{
    public Action Run { get; } = run;
    public Action? Reset { get; init; }
    /// <summary>Bytes of scratch the runner itself allocated for this version (lab versions that materialise tensors).</summary>
    public long? OwnScratchBytes { get; init; }

    public void Dispose()
    {
        foreach (var o in owned) o?.Dispose();
    }
}

/// <summary>
/// Times a region with CUDA events on the legacy default stream (the backend's): warm-up runs first, then up to
/// <c>reps</c> timed runs (at least 3, fewer than reps once <c>maxSeconds</c> of GPU time is spent), each preceded by an
/// untimed overwrite of a buffer several times the L2 size so no input sits in L2. Returns sorted milliseconds.
/// </summary>
internal sealed class GpuTimer : IDisposable
{
    private readonly CudaDevice _device;
    private readonly CudaEventHandle _start, _end;
    private readonly CudaMemoryHandle _flush;
    private readonly long _flushWords;

    public GpuTimer(CudaDevice device)
    {
        _device = device;
        _start = device.CreateEvent();
        _end = device.CreateEvent();
        long bytes = Math.Max(4L * device.L2CacheBytes, 256L << 20);
        _flushWords = bytes / 4;
        _flush = device.Allocate(bytes);
    }

    /// <summary>Bytes of the L2-flush buffer.</summary>
    public long FlushBytes => _flushWords * 4;

    public double[] Measure(Action run, Action? reset, int warmup, int reps, double maxSeconds)
    {
        for (int i = 0; i < warmup; i++)
        {
            reset?.Invoke();
            run();
        }
        _device.Synchronize();
        var times = new List<double>();
        double total = 0;
        uint word = 0x3f800000;
        while (times.Count < Math.Max(1, reps))
        {
            reset?.Invoke();
            _device.Fill32(_flush, word++, _flushWords);
            _device.Record(_start);
            run();
            _device.Record(_end);
            double ms = _device.ElapsedMilliseconds(_start, _end);
            times.Add(ms);
            total += ms / 1000.0;
            if (times.Count >= 3 && total > maxSeconds) break;
        }
        times.Sort();
        return [.. times];
    }

    public static double Median(IReadOnlyList<double> sorted) =>
        sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : 0.5 * (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]);

    public void Dispose()
    {
        _flush.Dispose();
        _start.Dispose();
        _end.Dispose();
    }
}
