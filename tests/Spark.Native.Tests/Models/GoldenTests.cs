using Spark.Native.IO;
using Spark.Native.Tests.Fixtures;

namespace Spark.Native.Tests.Models;

/// <summary>
/// Logits of the tiny checkpoints in ../shared/golden against float64 PyTorch references. Our F32 forward must be
/// within 1e-4 relative error (‖a−b‖/‖b‖) for every sequence, as the golden README asks.
/// </summary>
public class GoldenTests
{
    [Theory]
    [InlineData("qwen2-tiny")]
    [InlineData("llama-tiny")]
    public void LogitsMatchTheFloat64Reference(string name)
    {
        Assert.SkipWhen(TestPaths.SharedGoldenDir is null, "../shared (golden references) is not present beside this clone");
        string dir = Path.Combine(TestPaths.SharedGoldenDir!, "golden", name);
        using var model = SparkModel.Load(dir);
        using var expected = SafeTensorsFile.Open(Path.Combine(dir, "expected.safetensors"));
        int sequences = 0;
        for (int n = 0; expected.TryGet($"ids.{n}", out _); n++, sequences++)
        {
            int[] ids = expected.ReadI64($"ids.{n}").Select(i => checked((int)i)).ToArray();
            float[] reference = expected.ReadF32($"logits.{n}");
            var logits = model.Forward(ids);
            Assert.Equal(reference.Length, logits.Values.Length);
            double err = Numerics.RelativeError(logits.Values, reference);
            Assert.True(err < 1e-4, $"{name} sequence {n} (T={ids.Length}): relative error {err:E2}");
        }
        Assert.True(sequences > 0, $"{name}: expected.safetensors holds no ids.N/logits.N pairs");
    }
}
