namespace Spark.Native.IO;

/// <summary>
/// Replaces a file all at once: the content goes to a temporary file beside it, is flushed to disk, then renamed over
/// the target and the rename made durable (fsync of the folder). A failure removes the temporary file and leaves the
/// previous file as it was.
/// </summary>
internal static class AtomicFile
{
    public static void Write(string path, Action<FileStream> writeContent)
    {
        path = Path.GetFullPath(path);
        string temp = $"{path}.tmp-{Path.GetRandomFileName()}";
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                writeContent(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
            Interop.FileSystem.SyncParentDirectory(path);
        }
        catch
        {
            try { File.Delete(temp); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
            throw;
        }
    }
}
