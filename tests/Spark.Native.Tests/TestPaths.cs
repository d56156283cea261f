namespace Spark.Native.Tests;

/// <summary>Locations shared by tests: the repository root (folder holding Spark.Native.sln) and ../shared next to it.</summary>
internal static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The shared folder beside the repository (golden files, data), or null when absent.</summary>
    public static string? SharedDir { get; } =
        Directory.Exists(Path.Combine(RepoRoot, "..", "shared")) ? Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared")) : null;

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Spark.Native.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no Spark.Native.sln above {AppContext.BaseDirectory}");
    }
}
