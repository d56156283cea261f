using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Spark.Native.Interop;

namespace Spark.Native.Backends.Cuda;

/// <summary>A CUDA source file: its name relative to <c>kernels/</c> (also its include name) and its text.</summary>
public sealed record KernelSource(string Name, string Text);

/// <summary>Resources of one kernel entry point, as ptxas reports them (<c>--ptxas-options=-v</c>).</summary>
public readonly record struct KernelResourceUsage(string Function, int Registers, int StackFrameBytes, int SpillStoreBytes, int SpillLoadBytes);

/// <summary>A compiled kernel file: the cubin for one architecture, the compile log and what ptxas reported.</summary>
public sealed class CompiledKernel
{
    /// <summary>Source name, e.g. <c>smoke.cu</c>.</summary>
    public required string Name { get; init; }
    /// <summary>Target, e.g. <c>sm_80</c> or <c>sm_90a</c>.</summary>
    public required string Arch { get; init; }
    /// <summary>The ELF cubin, loadable with cuModuleLoadData on a device of that arch.</summary>
    public required byte[] Cubin { get; init; }
    /// <summary>The NVRTC program log (warnings and the ptxas resource report).</summary>
    public required string Log { get; init; }
    /// <summary>True when the cubin came from the disk cache and NVRTC did not run.</summary>
    public required bool FromCache { get; init; }
    /// <summary>Time spent compiling (or reading the cache).</summary>
    public required TimeSpan Elapsed { get; init; }
    /// <summary>Per-function registers and spills parsed from the log.</summary>
    public IReadOnlyList<KernelResourceUsage> Functions => KernelCompiler.ParseResourceUsage(Log);
    /// <summary>Spill stores plus spill loads over all functions, in bytes.</summary>
    public int SpillBytes => Functions.Sum(f => f.SpillStoreBytes + f.SpillLoadBytes);
    /// <summary>Most registers used by any function in the file.</summary>
    public int MaxRegisters => Functions.Select(f => f.Registers).DefaultIfEmpty(0).Max();
}

/// <summary>
/// Compiles the embedded <c>kernels/*.cu</c> files with NVRTC to a cubin for one architecture. Headers
/// (<c>kernels/*.cuh</c>) are handed to NVRTC by include name, so <c>#include "common.cuh"</c> needs no file system.
/// Cubins are cached on disk under <c>$XDG_CACHE_HOME/spark-native/kernels</c> (or <c>~/.cache/...</c>), keyed by the
/// SHA-256 of every source, the arch, the options and the NVRTC version, and written atomically (temp file, rename).
/// </summary>
public sealed partial class KernelCompiler
{
    private const string ResourcePrefix = "kernels/";
    private static readonly Lazy<(IReadOnlyList<KernelSource> Sources, IReadOnlyList<KernelSource> Headers)> Embedded = new(LoadEmbedded);

    private int _compilations;

    /// <summary>Folder of the cubin cache.</summary>
    public string CacheDirectory { get; }

    /// <summary>How many times this compiler ran NVRTC (cache hits do not count).</summary>
    public int Compilations => _compilations;

    /// <summary>Uses <paramref name="cacheDirectory"/>, or the default cache folder when null.</summary>
    public KernelCompiler(string? cacheDirectory = null) => CacheDirectory = cacheDirectory ?? DefaultCacheDirectory();

    /// <summary>$XDG_CACHE_HOME/spark-native/kernels, else ~/.cache/spark-native/kernels.</summary>
    public static string DefaultCacheDirectory()
    {
        string root = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "spark-native", "kernels");
    }

    /// <summary>Whether NVRTC loads on this machine.</summary>
    public static bool IsNvrtcAvailable => NativeLibraries.IsAvailable(NativeLibraries.Nvrtc);

    /// <summary>Where NVRTC was found, or null.</summary>
    public static string? NvrtcPath => NativeLibraries.PathOf(NativeLibraries.Nvrtc);

    /// <summary>The NVRTC version, e.g. (12, 8). Throws when NVRTC is absent.</summary>
    public static (int Major, int Minor) NvrtcVersion => Nvrtc.Version();

    /// <summary>The sm_XX numbers this NVRTC can target (empty when it cannot say).</summary>
    public static IReadOnlyList<int> SupportedArchs => Nvrtc.SupportedArchs();

    /// <summary>The embedded kernel files (<c>*.cu</c>), by name.</summary>
    public static IReadOnlyList<KernelSource> Sources => Embedded.Value.Sources;

    /// <summary>The embedded headers (<c>*.cuh</c>), by include name.</summary>
    public static IReadOnlyList<KernelSource> Headers => Embedded.Value.Headers;

    /// <summary>The arch string for a compute capability (e.g. 90): <c>sm_90a</c> on Hopper with NVRTC 12+, else <c>sm_XX</c>.</summary>
    public static string ArchName(int computeCapability) =>
        computeCapability == 90 && NvrtcVersion.Major >= 12 ? "sm_90a" : $"sm_{computeCapability}";

    /// <summary>Parses "sm_80", "sm_90a", "80" or "8.0" into a compute capability number.</summary>
    public static int ParseArch(string text)
    {
        string t = text.Trim().ToLowerInvariant();
        if (t.StartsWith("sm_", StringComparison.Ordinal)) t = t[3..];
        t = t.TrimEnd('a', 'f').Replace(".", "", StringComparison.Ordinal);
        if (int.TryParse(t, out int cc) && cc is >= 30 and < 1000) return cc;
        throw new SparkException($"'{text}' is not a GPU architecture (expected sm_XX, e.g. sm_80 or sm_90)");
    }

    /// <summary>The NVRTC options for an arch: real-arch cubin, device code by default, C++17, line info, ptxas report.</summary>
    public static IReadOnlyList<string> Options(string arch) =>
        [$"--gpu-architecture={arch}", "-default-device", "--std=c++17", "-lineinfo", "--ptxas-options=-v"];

    /// <summary>Compiles the embedded file <paramref name="name"/> (e.g. <c>smoke.cu</c>) for a compute capability.</summary>
    public CompiledKernel Compile(string name, int computeCapability)
    {
        var source = Sources.FirstOrDefault(s => s.Name == name)
            ?? throw new SparkException($"no embedded kernel '{name}' (have: {string.Join(", ", Sources.Select(s => s.Name))})");
        return Compile(source, computeCapability);
    }

    /// <summary>
    /// Compiles <paramref name="source"/> with <paramref name="headers"/> (default: the embedded ones) for a compute
    /// capability, from the disk cache when the same inputs were compiled before. Throws <see cref="CudaException"/>
    /// with the program log when the source does not compile.
    /// </summary>
    public CompiledKernel Compile(KernelSource source, int computeCapability, IReadOnlyList<KernelSource>? headers = null)
    {
        headers ??= Headers;
        var clock = Stopwatch.StartNew();
        var version = NvrtcVersion;
        string arch = ArchName(computeCapability);
        var options = Options(arch);
        string key = CacheKey(source, headers, arch, options, version);
        string stem = Path.Combine(CacheDirectory, $"{Path.GetFileNameWithoutExtension(source.Name)}-{arch}-{key}");

        if (TryReadCache(stem, out var cached, out string cachedLog))
            return new CompiledKernel { Name = source.Name, Arch = arch, Cubin = cached, Log = cachedLog, FromCache = true, Elapsed = clock.Elapsed };

        Interlocked.Increment(ref _compilations);
        using var program = Nvrtc.CreateProgram(source.Text, source.Name, headers.Select(h => (h.Name, h.Text)).ToList());
        bool ok = Nvrtc.Compile(program, options);
        string log = Nvrtc.ProgramLog(program);
        if (!ok)
            throw Nvrtc.Error(NvrtcResult.Compilation, $"nvrtcCompileProgram({source.Name}, {arch})", log);
        byte[] cubin = Nvrtc.Cubin(program);
        WriteCache(stem, cubin, log);
        return new CompiledKernel { Name = source.Name, Arch = arch, Cubin = cubin, Log = log, FromCache = false, Elapsed = clock.Elapsed };
    }

    private static string CacheKey(KernelSource source, IReadOnlyList<KernelSource> headers, string arch, IReadOnlyList<string> options, (int, int) version)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string s)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(s);
            hash.AppendData(BitConverter.GetBytes(bytes.Length)); // length-prefixed: no two inputs share a byte stream
            hash.AppendData(bytes);
        }
        Add("spark-native kernel cache v1");
        Add($"nvrtc {version.Item1}.{version.Item2}");
        Add(arch);
        foreach (string o in options) Add(o);
        Add(source.Name);
        Add(source.Text);
        foreach (var h in headers.OrderBy(h => h.Name, StringComparer.Ordinal))
        {
            Add(h.Name);
            Add(h.Text);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static bool TryReadCache(string stem, out byte[] cubin, out string log)
    {
        cubin = [];
        log = "";
        try
        {
            if (!File.Exists(stem + ".cubin")) return false;
            cubin = File.ReadAllBytes(stem + ".cubin");
            log = File.Exists(stem + ".log") ? File.ReadAllText(stem + ".log") : "";
            return cubin.Length > 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Log first, cubin last: a cubin in the cache means both are complete. A read-only cache is not an error.</summary>
    private static void WriteCache(string stem, byte[] cubin, string log)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(stem)!);
            WriteAtomically(stem + ".log", Encoding.UTF8.GetBytes(log));
            WriteAtomically(stem + ".cubin", cubin);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private static void WriteAtomically(string path, byte[] bytes)
    {
        string temp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            File.WriteAllBytes(temp, bytes);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>
    /// Reads ptxas's verbose report from a compile log:
    /// <c>Compiling entry function 'f' for 'sm_80'</c> / <c>Function properties for f</c> /
    /// <c>N bytes stack frame, N bytes spill stores, N bytes spill loads</c> / <c>Used N registers, ...</c>.
    /// </summary>
    public static IReadOnlyList<KernelResourceUsage> ParseResourceUsage(string log)
    {
        var functions = new Dictionary<string, KernelResourceUsage>(StringComparer.Ordinal);
        var order = new List<string>();
        string? current = null;
        KernelResourceUsage Get(string f)
        {
            if (!functions.TryGetValue(f, out var u)) { u = new KernelResourceUsage(f, 0, 0, 0, 0); order.Add(f); }
            return u;
        }
        foreach (string line in log.Split('\n'))
        {
            if (EntryRegex().Match(line) is { Success: true } entry) { current = entry.Groups[1].Value; functions[current] = Get(current); }
            else if (PropertiesRegex().Match(line) is { Success: true } props) { current = props.Groups[1].Value; functions[current] = Get(current); }
            else if (current is not null && SpillRegex().Match(line) is { Success: true } spill)
                functions[current] = Get(current) with
                {
                    StackFrameBytes = int.Parse(spill.Groups[1].Value),
                    SpillStoreBytes = int.Parse(spill.Groups[2].Value),
                    SpillLoadBytes = int.Parse(spill.Groups[3].Value),
                };
            else if (current is not null && RegistersRegex().Match(line) is { Success: true } regs)
                functions[current] = Get(current) with { Registers = int.Parse(regs.Groups[1].Value) };
        }
        return order.Select(f => functions[f]).ToList();
    }

    [GeneratedRegex(@"Compiling entry function '([^']+)'")] private static partial Regex EntryRegex();
    [GeneratedRegex(@"Function properties for (\S+)")] private static partial Regex PropertiesRegex();
    [GeneratedRegex(@"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")] private static partial Regex SpillRegex();
    [GeneratedRegex(@"Used (\d+) registers")] private static partial Regex RegistersRegex();

    private static (IReadOnlyList<KernelSource>, IReadOnlyList<KernelSource>) LoadEmbedded()
    {
        var assembly = typeof(KernelCompiler).Assembly;
        var sources = new List<KernelSource>();
        var headers = new List<KernelSource>();
        foreach (string resource in assembly.GetManifestResourceNames().Order(StringComparer.Ordinal))
        {
            string name = resource.Replace('\\', '/');
            if (!name.StartsWith(ResourcePrefix, StringComparison.Ordinal)) continue;
            name = name[ResourcePrefix.Length..];
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream, Encoding.UTF8);
            var source = new KernelSource(name, reader.ReadToEnd());
            if (name.EndsWith(".cuh", StringComparison.Ordinal)) headers.Add(source);
            else if (name.EndsWith(".cu", StringComparison.Ordinal)) sources.Add(source);
        }
        return (sources, headers);
    }
}
