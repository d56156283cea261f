using Spark.Native.IO;
using Spark.Native.Models;
using Spark.Native.Tests.Fixtures;

namespace Spark.Native.Tests.Models;

public class GradientTests
{
    /// <summary>
    /// Whole-model gradients against the float64 reference forward: for random directions d, the directional
    /// derivative ⟨∇L, d⟩ of each weight must match the central difference (L(θ+εd) − L(θ−εd)) / 2ε computed in float64.
    /// </summary>
    [Theory]
    [InlineData(ModelArchitecture.Qwen2, true)]
    [InlineData(ModelArchitecture.Llama, false)]
    public void GradientsMatchFloat64DirectionalDerivatives(ModelArchitecture arch, bool tied)
    {
        using var ckpt = new TinyCheckpoint(new TinySpec
        {
            Architecture = arch, Tied = tied, AttentionBias = !tied, MlpBias = !tied, Llama3Rope = !tied, Seed = 31,
        });
        using var model = SparkModel.Load(ckpt.Directory);
        int[][] batch = [[3, 14, 15, 9, 26, 5, 35], [8, 9, 7, 9, 3, 2, 38]];
        var result = model.LossAndGradients(batch);

        var weights = ckpt.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.Data.Select(x => (double)x).ToArray());
        double loss = new ReferenceModel(ckpt.Config, n => weights.GetValueOrDefault(n)).Loss(batch);
        Assert.True(Math.Abs(result.Loss - loss) < 1e-5 * Math.Abs(loss), $"loss {result.Loss} vs float64 {loss}");

        var rng = new Random(5);
        const double eps = 1e-4;
        foreach (string name in result.Gradients.Keys)
        {
            var direction = weights[name].Select(_ => rng.NextDouble() * 2 - 1).ToArray();
            double Perturbed(double sign)
            {
                var w = weights[name].Select((x, i) => x + sign * eps * direction[i]).ToArray();
                return new ReferenceModel(ckpt.Config, n => n == name ? w : weights.GetValueOrDefault(n)).Loss(batch);
            }
            double numeric = (Perturbed(+1) - Perturbed(-1)) / (2 * eps);
            double analytic = result.Gradients[name].Select((g, i) => g * direction[i]).Sum();
            double scale = Math.Sqrt(result.Gradients[name].Sum(g => (double)g * g) * direction.Sum(d => d * d));
            // F32 gradients of an O(1) loss: the projection agrees to ~1e-6 of |∇L|·|d|
            Assert.True(Math.Abs(numeric - analytic) <= 1e-4 * scale + 1e-9, $"{name}: analytic {analytic:E6} vs numeric {numeric:E6}");
        }
    }

    [Theory]
    [InlineData("qwen2-tiny", Device.Cpu)]
    [InlineData("llama-tiny", Device.Cpu)]
    [InlineData("qwen2-tiny", Device.Cuda)]
    [InlineData("llama-tiny", Device.Cuda)]
    public void LossAndGradientsMatchTheGoldenReference(string name, Device device)
    {
        Assert.SkipWhen(TestPaths.SharedGoldenDir is null, "../shared (golden references) is not present beside this clone");
        if (device == Device.Cuda) Cuda.CudaTestEnvironment.RequireCudaBackend();
        // F32 on the CPU: 1e-4 as the golden README asks. On CUDA weights, activations and activation gradients are
        // bf16 (2^-9 relative rounding per stored value) while parameter gradients accumulate in F32: the loss is a
        // mean over many tokens (errors average out: 1e-2), each gradient tensor collects a bf16-rounded chain through
        // every layer above it (5e-2; an indexing or formula bug gives errors of order 1).
        (double lossTolerance, double gradTolerance) = device == Device.Cpu ? (1e-4, 1e-4) : (1e-2, 5e-2);
        string dir = Path.Combine(TestPaths.SharedGoldenDir!, "golden", name);
        using var model = SparkModel.Load(dir, new ModelLoadOptions { Device = device });
        using var expected = SafeTensorsFile.Open(Path.Combine(dir, "expected.safetensors"));
        var batchIds = expected.ReadI64("batch_ids");
        var shape = expected["batch_ids"].Shape;
        int b = (int)shape[0], t = (int)shape[1];
        var batch = Enumerable.Range(0, b).Select(i => (IReadOnlyList<int>)batchIds.Skip(i * t).Take(t).Select(x => (int)x).ToArray()).ToArray();

        var result = model.LossAndGradients(batch);
        float loss = expected.ReadF32("loss")[0];
        Assert.True(Math.Abs(result.Loss - loss) <= lossTolerance * Math.Abs(loss), $"{device}: loss {result.Loss} vs {loss}");
        int checkedCount = 0;
        foreach (var info in expected.Tensors.Where(i => i.Name.StartsWith("grad.", StringComparison.Ordinal)))
        {
            string weight = info.Name["grad.".Length..];
            Assert.True(result.Gradients.ContainsKey(weight), $"no gradient for {weight}");
            double err = Numerics.RelativeError(result.Gradients[weight], expected.ReadF32(info.Name));
            Assert.True(err < gradTolerance, $"{name} on {device}, {weight}: relative error {err:E2}");
            checkedCount++;
        }
        Assert.Equal(result.Gradients.Count, checkedCount);
    }
}
