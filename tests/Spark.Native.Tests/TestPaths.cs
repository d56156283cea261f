namespace Spark.Native.Tests;

/// <summary>
/// Locations shared by tests: the repository root (the folder holding Spark.Native.sln, null when the tests run from a
/// published copy) and the read-only ../shared folder beside it (golden files, data), or $SPARK_SHARED_DIR when set.
/// </summary>
internal static class TestPaths
{
    public static string? RepoRoot { get; } = FindRepoRoot();

    /// <summary>The shared folder (golden references, tokenizer data), or null when absent.</summary>
    public static string? SharedDir { get; } = FindShared();

    /// <summary>The shared folder when it holds <c>data/</c> (real tokenizers and configs), else null.</summary>
    public static string? SharedDataDir { get; } = SharedDir is not null && Directory.Exists(Path.Combine(SharedDir, "data")) ? SharedDir : null;

    /// <summary>The shared folder when it holds <c>golden/</c> (reference checkpoints and outputs), else null.</summary>
    public static string? SharedGoldenDir { get; } = SharedDir is not null && Directory.Exists(Path.Combine(SharedDir, "golden")) ? SharedDir : null;

    private static string? FindShared()
    {
        string? fromEnv = Environment.GetEnvironmentVariable("SPARK_SHARED_DIR");
        if (!string.IsNullOrEmpty(fromEnv)) return Directory.Exists(fromEnv) ? Path.GetFullPath(fromEnv) : null;
        if (RepoRoot is null) return null;
        string candidate = Path.Combine(RepoRoot, "..", "shared");
        return Directory.Exists(candidate) ? Path.GetFullPath(candidate) : null;
    }

    private static string? FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Spark.Native.sln"))) return dir.FullName;
        return null;
    }
}
