using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Spark.Benchmarks;

/// <summary>Command-line settings shared by all suites.</summary>
/// <param name="JsonPath">Where to write the JSON report, or null for none.</param>
/// <param name="Threads">Largest number of threads a suite may use; -1 for all processors.</param>
/// <param name="Reps">Least number of timed runs per case (more are taken until about a second has passed).</param>
/// <param name="Warmup">Untimed runs before timing.</param>
/// <param name="Filter">Only cases whose label contains this text (null for all).</param>
/// <param name="Tokenizer">Tokenizer folder, for the tokenize suite.</param>
/// <param name="Input">Input file (a text corpus), for the tokenize suite.</param>
public sealed record BenchOptions(string? JsonPath, int Threads, int Reps, int Warmup, string? Filter, string? Tokenizer = null, string? Input = null)
{
    public static BenchOptions Parse(string[] args)
    {
        var options = new BenchOptions(null, -1, 7, 3, null);
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value.");
            int Positive() => int.TryParse(Value(), out int v) && v > 0 ? v : throw new ArgumentException($"{name} needs a positive integer.");
            options = name switch
            {
                "--json" => options with { JsonPath = Value() },
                "--filter" => options with { Filter = Value() },
                "--tokenizer" => options with { Tokenizer = Value() },
                "--input" => options with { Input = Value() },
                "--threads" => options with { Threads = Positive() },
                "--reps" => options with { Reps = Positive() },
                "--warmup" => options with { Warmup = int.TryParse(Value(), out int w) && w >= 0 ? w : throw new ArgumentException("--warmup needs an integer ≥ 0.") },
                _ => throw new ArgumentException($"Unknown option '{name}'. Options: --json PATH, --threads N, --reps N, --warmup N, --filter TEXT, --tokenizer DIR, --input FILE."),
            };
        }
        return options;
    }
}

/// <summary>What a suite returns: its settings and one record per measured case (any JSON-serializable objects).</summary>
public sealed record BenchSuiteResult(IReadOnlyDictionary<string, object> Settings, IReadOnlyList<object> Results);

/// <summary>The machine a benchmark ran on.</summary>
public sealed record MachineInfo(string CpuModel, int LogicalCores, string Os, string Dotnet, bool Vector512Accelerated,
    bool Vector256Accelerated)
{
    public static MachineInfo Collect() => new(ReadCpuModel(), Environment.ProcessorCount, RuntimeInformation.OSDescription,
        RuntimeInformation.FrameworkDescription, Vector512.IsHardwareAccelerated, Vector256.IsHardwareAccelerated);

    private static string ReadCpuModel()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
            {
                if (line.StartsWith("model name", StringComparison.Ordinal))
                    return line[(line.IndexOf(':') + 1)..].Trim();
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return RuntimeInformation.ProcessArchitecture.ToString();
    }
}

/// <summary>One JSON file: machine, commit, time, the suite's settings and results.</summary>
public sealed record BenchReport(string Suite, MachineInfo Machine, string GitCommit, DateTime TimestampUtc,
    IReadOnlyDictionary<string, object> Settings, IReadOnlyList<object> Results)
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // keep ≤, ·, × readable
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter() },
    };

    public static BenchReport Create(string suite, BenchSuiteResult result)
        => new(suite, MachineInfo.Collect(), ReadGitCommit(), DateTime.UtcNow, result.Settings, result.Results);

    public static void Write(BenchReport report, string path)
    {
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
            Directory.CreateDirectory(directory);
        File.WriteAllText(path, JsonSerializer.Serialize(report, JsonOptions) + "\n");
    }

    /// <summary>`git rev-parse HEAD` (with "-dirty" when the tree has changes), or "unknown".</summary>
    private static string ReadGitCommit()
    {
        string? head = Git("rev-parse HEAD");
        if (head is null)
            return "unknown";
        string? status = Git("status --porcelain --untracked-files=no");
        return string.IsNullOrEmpty(status) ? head : head + "-dirty";
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
            if (process is null)
                return null;
            string output = process.StandardOutput.ReadToEnd().Trim();
            process.WaitForExit();
            return process.ExitCode == 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}

/// <summary>Wall-clock timing: warm-up runs, then at least <c>reps</c> timed runs and until ~1 s has passed.</summary>
public static class Timing
{
    /// <summary>Times <paramref name="body"/>; returns the run times in milliseconds, sorted.</summary>
    public static double[] Measure(Action body, int warmup, int reps, double minSeconds = 1.0, int maxReps = 200)
    {
        for (int i = 0; i < warmup; i++)
            body();
        var times = new List<double>();
        var total = Stopwatch.StartNew();
        while (times.Count < reps || (total.Elapsed.TotalSeconds < minSeconds && times.Count < maxReps))
        {
            long start = Stopwatch.GetTimestamp();
            body();
            times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        times.Sort();
        return [.. times];
    }

    public static double Median(double[] sorted)
        => sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : 0.5 * (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]);
}
