using System.Text.Json;
using Spark.Native.IO;
using Spark.Native.Models;
using Spark.Native.Tests.Fixtures;
using Spark.Native.Tests.IO;
using Spark.Native.Training;

namespace Spark.Native.Tests.Training;

public class CheckpointExportTests
{
    private static readonly int[] Ids = [1, 5, 9, 0, 66, 3, 17, 42, 8, 30, 2];

    public static TheoryData<string, bool> Cases => new()
    {
        { "qwen2-tied", true }, { "qwen2-tied", false }, { "llama-untied-biases-llama3", true }, { "llama-untied-biases-llama3", false },
    };

    private static TinySpec Spec(string name) => name switch
    {
        "qwen2-tied" => new TinySpec { Architecture = ModelArchitecture.Qwen2 },
        "llama-untied-biases-llama3" => new TinySpec
        {
            Architecture = ModelArchitecture.Llama, Tied = false, AttentionBias = true, MlpBias = true, Llama3Rope = true,
            Heads = 4, KvHeads = 1, Hidden = 32, Seed = 2, Eos = [2, 7],
        },
        _ => throw new ArgumentException(name),
    };

    private static void Export(SparkModel model, string outDirectory, ExportOptions options) =>
        HfCheckpointExporter.Export(outDirectory, model.Layout, model.ReadParameter, options);

    private static float[] LogitsOf(string directory)
    {
        using var model = SparkModel.Load(directory);
        return model.Forward(Ids).Values;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ExportedFolderGivesIdenticalLogits(string spec, bool copySource)
    {
        using var ckpt = new TinyCheckpoint(Spec(spec));
        using var dir = new TempDir();
        string outDir = dir.File("export");
        using (var model = SparkModel.Load(ckpt.Directory))
            Export(model, outDir, new ExportOptions { SourceDirectory = copySource ? ckpt.Directory : null });

        Assert.Equal(LogitsOf(ckpt.Directory), LogitsOf(outDir));
        Assert.Equal(SparkModel.LoadConfig(ckpt.Directory).EosTokenIds, SparkModel.LoadConfig(outDir).EosTokenIds);
        using var exported = SafeTensorsCheckpoint.Open(outDir);
        Assert.Equal(ckpt.Spec.Tied, !exported.TryGet("lm_head.weight", out _)); // tied: transformers re-ties it
        Assert.Equal("pt", Assert.Single(exported.Files).Metadata["format"]);
        Assert.False(File.Exists(Path.Combine(outDir, SafeTensorsCheckpoint.IndexFileName)));
        Assert.True(File.Exists(Path.Combine(outDir, "generation_config.json")));
        Assert.Equal([outDir], Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public void GeneratedConfigNamesTheArchitecture()
    {
        using var ckpt = new TinyCheckpoint(Spec("llama-untied-biases-llama3"));
        var config = HfCheckpointExporter.GenerateConfig(ckpt.Config, "bfloat16");
        Assert.Equal("LlamaForCausalLM", config["architectures"]![0]!.GetValue<string>());
        Assert.Equal("llama", config["model_type"]!.GetValue<string>());
        Assert.Equal("llama3", config["rope_scaling"]!["rope_type"]!.GetValue<string>());
        Assert.False(config["tie_word_embeddings"]!.GetValue<bool>());
        var parsed = ModelConfig.Parse(config.ToJsonString());
        Assert.Equal([2, 7], parsed.EosTokenIds);
        Assert.Equal("bfloat16", parsed.TorchDtype);
        var noIds = Array.Empty<int>();
        Assert.Equal(ckpt.Config with { EosTokenIds = noIds, TorchDtype = null }, parsed with { EosTokenIds = noIds, TorchDtype = null });
    }

    [Fact]
    public void ShardedExportLoadsIdenticallyWithAWellFormedIndex()
    {
        using var ckpt = new TinyCheckpoint(Spec("llama-untied-biases-llama3"));
        using var dir = new TempDir();
        string outDir = dir.File("export");
        long totalBytes;
        using (var model = SparkModel.Load(ckpt.Directory))
        {
            totalBytes = model.Layout.TotalLength * 4;
            Export(model, outDir, new ExportOptions { SourceDirectory = ckpt.Directory, MaxShardBytes = 6000 });
        }
        Assert.Equal(LogitsOf(ckpt.Directory), LogitsOf(outDir));

        Assert.False(File.Exists(Path.Combine(outDir, "model.safetensors")));
        using var index = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(outDir, SafeTensorsCheckpoint.IndexFileName)));
        Assert.Equal(totalBytes, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
        var weightMap = index.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        var layout = new ParameterLayout(ckpt.Config);
        Assert.Equal(layout.Entries.Select(e => e.Name).Order(StringComparer.Ordinal), weightMap.Keys);
        var shardFiles = Directory.GetFiles(outDir, "model-*.safetensors").Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray();
        int n = shardFiles.Length;
        Assert.True(n > 2, $"expected several shards, got {n}");
        Assert.Equal(Enumerable.Range(1, n).Select(i => $"model-{i:D5}-of-{n:D5}.safetensors"), shardFiles);
        Assert.Equal(shardFiles, weightMap.Values.Distinct().Order(StringComparer.Ordinal));
        foreach (string file in shardFiles)
        {
            using var shard = SafeTensorsFile.Open(Path.Combine(outDir, file));
            long bytes = shard.Tensors.Sum(t => t.End - t.Begin);
            Assert.True(bytes <= 6000 || shard.Tensors.Count == 1, $"{file}: {bytes} bytes in {shard.Tensors.Count} tensors");
            Assert.All(shard.Tensors, t => Assert.Equal(file, weightMap[t.Name]));
        }
    }

    [Fact]
    public void ShardPlanFollowsHuggingFaceHub() =>
        // 10 > 6 gets its own shard at once; 3 + 3 fill one; the last 3 overflows into a new one
        Assert.Equal([[2], [0, 1], [3]], HfCheckpointExporter.PlanShards([3, 3, 10, 3], 6));

    [Fact]
    public void Bf16ExportRoundsToNearestEven()
    {
        using var ckpt = new TinyCheckpoint(Spec("qwen2-tied"));
        using var dir = new TempDir();
        string outDir = dir.File("export");
        using var model = SparkModel.Load(ckpt.Directory);
        float[] norm = model.ReadParameter("model.norm.weight");
        float Bits(uint b) => BitConverter.UInt32BitsToSingle(b);
        norm[0] = Bits(0x3F808000); // 1 + 2^-8, halfway between BF16 1.0 (even) and 1 + 2^-7: down
        norm[1] = Bits(0x3F818000); // halfway between 0x3F81 (odd) and 0x3F82 (even): up
        norm[2] = Bits(0x3F808001); // just above halfway: up
        norm[3] = Bits(0xBF817FFF); // just below halfway, negative: down in magnitude
        HfCheckpointExporter.Export(outDir, model.Layout, name => name == "model.norm.weight" ? norm : model.ReadParameter(name),
            new ExportOptions { DType = DType.BF16, SourceDirectory = ckpt.Directory });

        using var file = SafeTensorsFile.Open(Path.Combine(outDir, "model.safetensors"));
        Assert.All(file.Tensors, t => Assert.Equal(DType.BF16, t.DType));
        var stored = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(file.GetBytes("model.norm.weight")).ToArray();
        Assert.Equal([(ushort)0x3F80, (ushort)0x3F82, (ushort)0x3F81, (ushort)0xBF81], stored[..4]);
        foreach (var e in model.Layout.Entries.Where(e => e.Name != "model.norm.weight"))
        {
            var got = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(file.GetBytes(e.Name)).ToArray();
            Assert.Equal(model.ReadParameter(e.Name).Select(NumericConversions.ToBF16Bits), got);
        }
        using var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(outDir, "config.json")));
        Assert.Equal("bfloat16", config.RootElement.GetProperty("torch_dtype").GetString());
        using var reloaded = SparkModel.Load(outDir); // and it loads
        Assert.Equal(1.0f, reloaded.ReadParameter("model.norm.weight")[0]);
    }

    [Fact]
    public void TokenizerAndGenerationFilesAreCopied()
    {
        using var ckpt = new TinyCheckpoint(Spec("qwen2-tied"));
        var present = new[] { "tokenizer.json", "tokenizer_config.json", "merges.txt", "chat_template.jinja", "generation_config.json" };
        foreach (string name in present) File.WriteAllText(Path.Combine(ckpt.Directory, name), $"{{\"file\": \"{name}\", \"text\": \"<|im_start|>é\"}}\n");
        using var dir = new TempDir();
        string outDir = dir.File("export");
        using (var model = SparkModel.Load(ckpt.Directory))
            Export(model, outDir, new ExportOptions { SourceDirectory = ckpt.Directory });
        foreach (string name in present)
            Assert.Equal(File.ReadAllBytes(Path.Combine(ckpt.Directory, name)), File.ReadAllBytes(Path.Combine(outDir, name)));
        foreach (string name in HfCheckpointExporter.TokenizerFiles.Except(present))
            Assert.False(File.Exists(Path.Combine(outDir, name)), name);
    }

    [Fact]
    public void FailureMidExportLeavesThePreviousCheckpointUntouched()
    {
        using var first = new TinyCheckpoint(Spec("qwen2-tied"));
        using var second = new TinyCheckpoint(Spec("qwen2-tied") with { Seed = 9 });
        using var dir = new TempDir();
        string outDir = dir.File("export");
        using (var model = SparkModel.Load(first.Directory))
            Export(model, outDir, new ExportOptions { SourceDirectory = first.Directory, MaxShardBytes = 6000 });
        var before = Snapshot(outDir);

        int written = 0;
        using (var model = SparkModel.Load(second.Directory))
        {
            var failing = new ExportOptions
            {
                SourceDirectory = second.Directory, MaxShardBytes = 6000,
                OnWeightFileWritten = _ => { if (++written == 1) throw new IOException("No space left on device"); },
            };
            Assert.Equal("No space left on device", Assert.Throws<IOException>(() => Export(model, outDir, failing)).Message);
            Assert.Equal(before, Snapshot(outDir));
            Assert.Equal([outDir], Directory.GetFileSystemEntries(dir.Path)); // no .tmp-* or .old-* left

            Export(model, outDir, new ExportOptions { SourceDirectory = second.Directory });
        }
        Assert.Equal(LogitsOf(second.Directory), LogitsOf(outDir)); // a later good export replaces it
        Assert.False(File.Exists(Path.Combine(outDir, SafeTensorsCheckpoint.IndexFileName)));
        Assert.Equal([outDir], Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public void RefusesToReplaceAFolderThatIsNotACheckpoint()
    {
        using var ckpt = new TinyCheckpoint(Spec("qwen2-tied"));
        using var dir = new TempDir();
        File.WriteAllText(dir.File("notes.txt"), "keep me");
        using var model = SparkModel.Load(ckpt.Directory);
        var e = Assert.Throws<SparkException>(() => Export(model, dir.Path, new ExportOptions()));
        Assert.Contains("no config.json", e.Message);
        Assert.True(File.Exists(dir.File("notes.txt")));
        Assert.Contains("F16", Assert.Throws<SparkException>(() => Export(model, dir.File("x"), new ExportOptions { DType = DType.F16 })).Message);
    }

    [Fact]
    public void ExtraFilesLandInTheSwappedFolder()
    {
        using var ckpt = new TinyCheckpoint(Spec("qwen2-tied"));
        using var dir = new TempDir();
        string outDir = dir.File("export");
        using (var model = SparkModel.Load(ckpt.Directory))
            Export(model, outDir, new ExportOptions { WriteExtraFiles = d => File.WriteAllText(Path.Combine(d, "trainer_note.txt"), "step 3") });
        Assert.Equal("step 3", File.ReadAllText(Path.Combine(outDir, "trainer_note.txt")));
    }

    private static SortedDictionary<string, string> Snapshot(string directory) =>
        new(Directory.GetFiles(directory).ToDictionary(f => Path.GetFileName(f), f => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f)))),
            StringComparer.Ordinal);
}
