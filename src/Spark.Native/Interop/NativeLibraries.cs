using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Spark.Native.Interop;

/// <summary>
/// Finds the CUDA driver, NVRTC and cuBLASLt at run time. The bindings name logical libraries ("cuda", "nvrtc",
/// "cublasLt"); one <see cref="NativeLibrary.SetDllImportResolver"/> for this assembly maps each to the first
/// loadable candidate: newest soname first, each tried by plain name (the loader's path, LD_LIBRARY_PATH), then in
/// $CUDA_PATH/lib64, /usr/local/cuda/lib64, /usr/local/cuda/targets/x86_64-linux/lib, the driver folders, and the
/// lib folders of pip-installed NVIDIA wheels (site-packages/nvidia/*/lib).
/// </summary>
internal static class NativeLibraries
{
    public const string Cuda = "cuda";
    public const string Nvrtc = "nvrtc";
    public const string CublasLt = "cublasLt";

    private static readonly Dictionary<string, string[]> Candidates = new(StringComparer.Ordinal)
    {
        [Cuda] = OperatingSystem.IsWindows() ? ["nvcuda.dll"] : ["libcuda.so.1"],
        [Nvrtc] = OperatingSystem.IsWindows()
            ? ["nvrtc64_130_0.dll", "nvrtc64_120_0.dll", "nvrtc64_112_0.dll"]
            : ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"],
        [CublasLt] = OperatingSystem.IsWindows()
            ? ["cublasLt64_13.dll", "cublasLt64_12.dll", "cublasLt64_11.dll"]
            : ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11"],
    };

    private sealed record Loaded(IntPtr Handle, string? Path);

    private static readonly ConcurrentDictionary<string, Lazy<Loaded>> Cache = new(StringComparer.Ordinal);

    static NativeLibraries() =>
        NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);

    /// <summary>Registers the resolver (runs the static constructor once); the binding classes call it from theirs.</summary>
    public static void EnsureRegistered() { }

    /// <summary>The logical names the resolver knows.</summary>
    public static IReadOnlyCollection<string> LogicalNames => Candidates.Keys;

    /// <summary>The sonames tried for a logical name, newest first.</summary>
    public static IReadOnlyList<string> CandidatesOf(string logicalName) => Candidates[logicalName];

    /// <summary>Full path of the file the logical library resolved to, or null when none loads.</summary>
    public static string? PathOf(string logicalName) => Load(logicalName).Path;

    /// <summary>Whether the logical library loads on this machine.</summary>
    public static bool IsAvailable(string logicalName) => Load(logicalName).Handle != IntPtr.Zero;

    /// <summary>Address of an optional export (an entry point newer than the oldest supported version).</summary>
    public static bool TryGetExport(string logicalName, string symbol, out IntPtr address)
    {
        address = IntPtr.Zero;
        var handle = Load(logicalName).Handle;
        return handle != IntPtr.Zero && NativeLibrary.TryGetExport(handle, symbol, out address);
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath) =>
        Candidates.ContainsKey(libraryName) ? Load(libraryName).Handle : IntPtr.Zero;

    private static Loaded Load(string logicalName)
    {
        if (!Candidates.ContainsKey(logicalName))
            throw new ArgumentException($"unknown native library '{logicalName}' (known: {string.Join(", ", Candidates.Keys)})", nameof(logicalName));
        return Cache.GetOrAdd(logicalName, name => new Lazy<Loaded>(() => Probe(Candidates[name]))).Value;
    }

    private static Loaded Probe(string[] names)
    {
        var folders = SearchFolders().Distinct(StringComparer.Ordinal).ToArray();
        foreach (string name in names)
        {
            if (NativeLibrary.TryLoad(name, out var handle))
                return new Loaded(handle, MappedPath(name) ?? name);
            foreach (string folder in folders)
            {
                string path = Path.Combine(folder, name);
                if (File.Exists(path) && NativeLibrary.TryLoad(path, out handle))
                    return new Loaded(handle, path);
            }
        }
        return new Loaded(IntPtr.Zero, null);
    }

    /// <summary>Folders searched after the loader's own path, in order.</summary>
    public static IEnumerable<string> SearchFolders()
    {
        if (Environment.GetEnvironmentVariable("CUDA_PATH") is { Length: > 0 } cudaPath)
        {
            yield return Path.Combine(cudaPath, "lib64");
            yield return Path.Combine(cudaPath, "bin");
        }
        yield return "/usr/local/cuda/lib64";
        yield return "/usr/local/cuda/targets/x86_64-linux/lib";
        yield return "/usr/local/nvidia/lib64";
        yield return "/usr/lib/x86_64-linux-gnu";
        foreach (string folder in PipNvidiaFolders()) yield return folder;
    }

    /// <summary>lib folders of pip-installed NVIDIA wheels: {python}/{dist,site}-packages/nvidia/*/lib.</summary>
    private static IEnumerable<string> PipNvidiaFolders()
    {
        var roots = new List<string>();
        foreach (string parent in new[] { "/usr/lib", "/usr/local/lib" })
            roots.AddRange(SafeDirectories(parent, "python3*"));
        if (Environment.GetEnvironmentVariable("VIRTUAL_ENV") is { Length: > 0 } venv)
            roots.AddRange(SafeDirectories(Path.Combine(venv, "lib"), "python3*"));
        if (Environment.GetEnvironmentVariable("HOME") is { Length: > 0 } home)
            roots.AddRange(SafeDirectories(Path.Combine(home, ".local", "lib"), "python3*"));
        foreach (string root in roots.Order(StringComparer.Ordinal).Reverse()) // newest python first
            foreach (string packages in new[] { "dist-packages", "site-packages" })
                foreach (string package in SafeDirectories(Path.Combine(root, packages, "nvidia"), "*").Order(StringComparer.Ordinal))
                    yield return Path.Combine(package, "lib");
    }

    private static IEnumerable<string> SafeDirectories(string parent, string pattern)
    {
        try { return Directory.Exists(parent) ? Directory.GetDirectories(parent, pattern) : []; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    /// <summary>
    /// The file a library loaded by plain name came from, read from /proc/self/maps (Linux only). The soname
    /// (libnvrtc.so.11.2) is usually a link to a longer versioned file (libnvrtc.so.11.8.89), so the match is on the
    /// stem up to ".so".
    /// </summary>
    private static string? MappedPath(string fileName)
    {
        int so = fileName.IndexOf(".so", StringComparison.Ordinal);
        if (so < 0) return null;
        string stem = fileName[..(so + 3)];
        try
        {
            if (!File.Exists("/proc/self/maps")) return null;
            foreach (string line in File.ReadLines("/proc/self/maps"))
            {
                int slash = line.IndexOf('/');
                if (slash < 0) continue;
                string path = line[slash..].Trim();
                string file = Path.GetFileName(path);
                if (file == stem || file.StartsWith(stem + ".", StringComparison.Ordinal)) return path;
            }
        }
        catch (IOException) { }
        return null;
    }
}
