using System.Text.Json;

namespace Spark.Native.IO;

/// <summary>
/// A checkpoint folder: either <c>model.safetensors.index.json</c> plus the shards its <c>weight_map</c> names,
/// or a single <c>model.safetensors</c>. Exposes the union of the tensors; each shard is mapped once.
/// </summary>
public sealed class SafeTensorsCheckpoint : IDisposable
{
    /// <summary>File name of a sharded checkpoint's index.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>File name of a single-file checkpoint.</summary>
    public const string SingleFileName = "model.safetensors";

    private readonly Dictionary<string, SafeTensorsFile> _fileOf;

    private SafeTensorsCheckpoint(string directory, List<SafeTensorsFile> files, Dictionary<string, SafeTensorsFile> fileOf, List<string> names)
    {
        Directory = directory;
        Files = files.AsReadOnly();
        _fileOf = fileOf;
        Names = names.AsReadOnly();
    }

    /// <summary>Full path of the checkpoint folder.</summary>
    public string Directory { get; }

    /// <summary>The opened files: the shards in order of first mention in the index, or the single file.</summary>
    public IReadOnlyList<SafeTensorsFile> Files { get; }

    /// <summary>Every tensor name, file by file in data order.</summary>
    public IReadOnlyCollection<string> Names { get; }

    /// <summary>
    /// Opens the checkpoint in <paramref name="directory"/>. With an index, every tensor of the weight_map must be in
    /// the shard it names and every shard tensor must be in the weight_map under that shard; a tensor found in two
    /// shards is an error. Throws <see cref="SafeTensorsException"/> naming the file and tensor, or
    /// <see cref="FileNotFoundException"/> when neither the index nor <c>model.safetensors</c> exists.
    /// </summary>
    public static SafeTensorsCheckpoint Open(string directory)
    {
        directory = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        string indexPath = Path.Combine(directory, IndexFileName);
        string singlePath = Path.Combine(directory, SingleFileName);
        if (File.Exists(indexPath)) return OpenSharded(directory, indexPath);
        if (File.Exists(singlePath))
        {
            var file = SafeTensorsFile.Open(singlePath);
            return new SafeTensorsCheckpoint(directory, [file], file.Tensors.ToDictionary(t => t.Name, _ => file), file.Tensors.Select(t => t.Name).ToList());
        }
        throw new FileNotFoundException($"{directory}: neither {IndexFileName} nor {SingleFileName} exists");
    }

    /// <summary>Looks up tensor <paramref name="name"/> in whichever file holds it.</summary>
    public bool TryGet(string name, out SafeTensorInfo info)
    {
        info = null!;
        return _fileOf.TryGetValue(name, out var file) && file.TryGet(name, out info);
    }

    /// <summary>The file holding tensor <paramref name="name"/>; throws <see cref="KeyNotFoundException"/> naming the folder and tensor.</summary>
    public SafeTensorsFile FileOf(string name) =>
        _fileOf.TryGetValue(name, out var file) ? file
        : throw new KeyNotFoundException($"{Directory}: no tensor named '{name}' in the checkpoint");

    /// <summary>Converts tensor <paramref name="name"/> into <paramref name="dst"/>; see <see cref="SafeTensorsFile.ReadF32(string, Span{float})"/>.</summary>
    public void ReadF32(string name, Span<float> dst) => FileOf(name).ReadF32(name, dst);

    /// <summary>Releases every file.</summary>
    public void Dispose()
    {
        foreach (var file in Files) file.Dispose();
    }

    private static SafeTensorsCheckpoint OpenSharded(string directory, string indexPath)
    {
        var weightMap = ReadWeightMap(indexPath);
        var files = new List<SafeTensorsFile>();
        try
        {
            var shards = new List<(string Name, SafeTensorsFile File)>();
            foreach (var (tensor, shard) in weightMap)
            {
                if (shards.Exists(s => s.Name == shard)) continue;
                string shardPath = Path.GetFullPath(Path.Combine(directory, shard));
                if (!shardPath.StartsWith(directory + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                    throw new SafeTensorsException(indexPath, $"tensor '{tensor}' is mapped to '{shard}', which is outside the checkpoint folder");
                if (!File.Exists(shardPath))
                    throw new SafeTensorsException(indexPath, $"tensor '{tensor}' is mapped to shard '{shard}', which does not exist");
                var file = SafeTensorsFile.Open(shardPath);
                files.Add(file);
                shards.Add((shard, file));
            }

            var fileOf = new Dictionary<string, SafeTensorsFile>();
            var shardOf = new Dictionary<string, string>();
            var names = new List<string>();
            foreach (var (shard, file) in shards)
            {
                foreach (var t in file.Tensors)
                {
                    if (fileOf.TryGetValue(t.Name, out var other))
                        throw new SafeTensorsException(indexPath, $"tensor '{t.Name}' is in both {other.Path} and {file.Path}");
                    if (!weightMap.ContainsKey(t.Name))
                        throw new SafeTensorsException(indexPath, $"tensor '{t.Name}' is in {file.Path} but not in the weight_map");
                    fileOf.Add(t.Name, file);
                    shardOf.Add(t.Name, shard);
                    names.Add(t.Name);
                }
            }
            foreach (var (tensor, shard) in weightMap)
            {
                if (!shardOf.TryGetValue(tensor, out var actual))
                    throw new SafeTensorsException(indexPath, $"tensor '{tensor}' is mapped to '{shard}' but that shard does not contain it");
                if (actual != shard)
                    throw new SafeTensorsException(indexPath, $"tensor '{tensor}' is mapped to '{shard}' but it is in '{actual}'");
            }
            return new SafeTensorsCheckpoint(directory, files, fileOf, names);
        }
        catch
        {
            foreach (var file in files) file.Dispose();
            throw;
        }
    }

    private static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(indexPath)); }
        catch (JsonException e) { throw new SafeTensorsException(indexPath, $"not valid JSON: {e.Message}", e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsException(indexPath, "expected an object with a \"weight_map\" object");
            var weightMap = new Dictionary<string, string>();
            foreach (var item in map.EnumerateObject())
            {
                if (item.Value.ValueKind != JsonValueKind.String)
                    throw new SafeTensorsException(indexPath, $"weight_map entry for '{item.Name}' is a JSON {item.Value.ValueKind}, expected a shard file name");
                if (!weightMap.TryAdd(item.Name, item.Value.GetString()!))
                    throw new SafeTensorsException(indexPath, $"weight_map lists tensor '{item.Name}' twice");
            }
            return weightMap;
        }
    }
}
