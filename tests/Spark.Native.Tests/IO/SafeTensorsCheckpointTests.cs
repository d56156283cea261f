using System.Text.Json;
using Spark.Native.IO;

namespace Spark.Native.Tests.IO;

public class SafeTensorsCheckpointTests
{
    private const string Shard1 = "model-00001-of-00002.safetensors";
    private const string Shard2 = "model-00002-of-00002.safetensors";

    private static void WriteIndex(TempDir dir, Dictionary<string, string> weightMap) =>
        File.WriteAllText(dir.File(SafeTensorsCheckpoint.IndexFileName),
            JsonSerializer.Serialize(new { metadata = new { total_size = 40 }, weight_map = weightMap }));

    private static void WriteShards(TempDir dir)
    {
        SafeTensorsWriter.Write(dir.File(Shard1), [SafeTensorWriteEntry.FromF32("a", [2], [1f, 2f]), SafeTensorWriteEntry.FromF32("b", [1], [3f], DType.BF16)]);
        SafeTensorsWriter.Write(dir.File(Shard2), [SafeTensorWriteEntry.FromF32("c", [2, 2], [4f, 5f, 6f, 7f])]);
    }

    [Fact]
    public void ShardedCheckpointExposesTheUnion()
    {
        using var dir = new TempDir();
        WriteShards(dir);
        WriteIndex(dir, new() { ["a"] = Shard1, ["b"] = Shard1, ["c"] = Shard2 });

        using var checkpoint = SafeTensorsCheckpoint.Open(dir.Path);
        Assert.Equal(["a", "b", "c"], checkpoint.Names);
        Assert.Equal(2, checkpoint.Files.Count);
        Assert.Equal(dir.File(Shard2), checkpoint.FileOf("c").Path);
        Assert.True(checkpoint.TryGet("c", out var c) && c.Shape.SequenceEqual([2L, 2L]));
        Assert.False(checkpoint.TryGet("d", out _));
        var dst = new float[4];
        checkpoint.ReadF32("c", dst);
        Assert.Equal([4f, 5f, 6f, 7f], dst);
        var b = new float[1];
        checkpoint.ReadF32("b", b);
        Assert.Equal([3f], b);
        Assert.Contains("'d'", Assert.Throws<KeyNotFoundException>(() => checkpoint.FileOf("d")).Message);
    }

    [Fact]
    public void IndexNamingATensorAbsentFromItsShard()
    {
        using var dir = new TempDir();
        WriteShards(dir);
        WriteIndex(dir, new() { ["a"] = Shard1, ["b"] = Shard1, ["c"] = Shard2, ["ghost"] = Shard2 });
        var e = Assert.Throws<SafeTensorsException>(() => SafeTensorsCheckpoint.Open(dir.Path));
        Assert.Contains("'ghost'", e.Message);
        Assert.Contains(Shard2, e.Message);
    }

    [Fact]
    public void ShardTensorMissingFromTheIndex()
    {
        using var dir = new TempDir();
        WriteShards(dir);
        WriteIndex(dir, new() { ["a"] = Shard1, ["c"] = Shard2 });
        var e = Assert.Throws<SafeTensorsException>(() => SafeTensorsCheckpoint.Open(dir.Path));
        Assert.Contains("'b'", e.Message);
        Assert.Contains(Shard1, e.Message);
    }

    [Fact]
    public void TensorInTwoShards()
    {
        using var dir = new TempDir();
        WriteShards(dir);
        SafeTensorsWriter.Write(dir.File(Shard2), [SafeTensorWriteEntry.FromF32("c", [1], [4f]), SafeTensorWriteEntry.FromF32("a", [1], [0f])]);
        WriteIndex(dir, new() { ["a"] = Shard1, ["b"] = Shard1, ["c"] = Shard2 });
        var e = Assert.Throws<SafeTensorsException>(() => SafeTensorsCheckpoint.Open(dir.Path));
        Assert.Contains("'a'", e.Message);
        Assert.Contains("both", e.Message);
    }

    [Fact]
    public void MissingShardFile()
    {
        using var dir = new TempDir();
        WriteShards(dir);
        WriteIndex(dir, new() { ["a"] = Shard1, ["b"] = Shard1, ["c"] = "model-00003.safetensors" });
        var e = Assert.Throws<SafeTensorsException>(() => SafeTensorsCheckpoint.Open(dir.Path));
        Assert.Contains("model-00003.safetensors", e.Message);
    }

    [Fact]
    public void SingleFileCheckpoint()
    {
        using var dir = new TempDir();
        SafeTensorsWriter.Write(dir.File(SafeTensorsCheckpoint.SingleFileName), [SafeTensorWriteEntry.FromF32("w", [1], [9f])]);
        using var checkpoint = SafeTensorsCheckpoint.Open(dir.Path + Path.DirectorySeparatorChar);
        Assert.Equal(["w"], checkpoint.Names);
        var dst = new float[1];
        checkpoint.ReadF32("w", dst);
        Assert.Equal(9f, dst[0]);
    }

    [Fact]
    public void EmptyFolderNamesTheFolder()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<FileNotFoundException>(() => SafeTensorsCheckpoint.Open(dir.Path));
        Assert.Contains(dir.Path, e.Message);
        Assert.Contains("neither", e.Message);
    }
}
