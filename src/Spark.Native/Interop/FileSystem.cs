using System.Runtime.InteropServices;

namespace Spark.Native.Interop;

/// <summary>
/// Makes renames durable: after a file or folder is renamed into place, its parent folder's entry must reach the disk
/// too (fsync of the folder), or a power loss can undo the rename. POSIX only; elsewhere the rename is left to the OS.
/// </summary>
internal static partial class FileSystem
{
    private const int ReadOnly = 0;          // O_RDONLY
    private const int Directory = 0x10000;   // O_DIRECTORY on Linux x86-64 and arm64

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    /// <summary>
    /// Flushes the folder holding <paramref name="path"/>; returns whether it was synced (best effort: failing to sync
    /// is not an error, the rename itself has happened).
    /// </summary>
    public static bool SyncParentDirectory(string path)
    {
        if (!OperatingSystem.IsLinux()) return false;
        string? parent = Path.GetDirectoryName(Path.GetFullPath(path));
        if (parent is null) return false;
        try
        {
            int fd = Open(parent, ReadOnly | Directory);
            if (fd < 0) return false;
            int result = Fsync(fd);
            Close(fd);
            return result == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }
}
