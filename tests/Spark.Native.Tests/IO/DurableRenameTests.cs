namespace Spark.Native.Tests.IO;

public class DurableRenameTests
{
    [Fact]
    public void TheParentFolderOfARenameIsSyncedOnLinux()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "folder fsync is Linux-only");
        using var dir = new TempDir();
        File.WriteAllText(dir.File("a.txt"), "x");
        Assert.True(Native.Interop.FileSystem.SyncParentDirectory(dir.File("a.txt")));
    }
}
