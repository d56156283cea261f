using Spark.Native.IO;

namespace Spark.Native.Tests.IO;

public class GoldenFileTests
{
    [Fact]
    public void Qwen2TinyCheckpointLoadsWithBF16Weights()
    {
        string? folder = TestPaths.SharedGoldenDir is null ? null : Path.Combine(TestPaths.SharedGoldenDir, "golden", "qwen2-tiny");
        Assert.SkipUnless(folder is not null && File.Exists(Path.Combine(folder, "model.safetensors")),
            "../shared/golden/qwen2-tiny/model.safetensors is absent");

        using var checkpoint = SafeTensorsCheckpoint.Open(folder);
        var file = Assert.Single(checkpoint.Files);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.NotEmpty(file.Tensors);
        Assert.All(file.Tensors, t => Assert.Equal(DType.BF16, t.DType));
        var embed = file["model.embed_tokens.weight"];
        Assert.Equal(2, embed.Shape.Length);
        var values = new float[embed.ElementCount];
        checkpoint.ReadF32(embed.Name, values);
        Assert.All(values, v => Assert.True(float.IsFinite(v)));
        Assert.Contains(values, v => v != 0);
    }
}
