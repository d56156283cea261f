using Spark.Native.IO;
using Spark.Native.Models;
using Spark.Native.Tests.Cli;
using Spark.Native.Tests.Fixtures;
using Spark.Native.Training;

namespace Spark.Native.Tests.Training;

public class TrainingGraphTests
{
    private static readonly int[][] Sequences = [[3, 1, 4, 1, 5, 9, 2], [6, 5, 3], [5, 8, 9, 7, 9], [3, 2, 3, 8, 4, 6]];

    private static float[] Gradients(SparkModel model, int[][][] microBatches, ActivationRecompute recompute)
    {
        var tf = model.Transformer;
        int divisor = microBatches.Sum(mb => mb.Sum(s => s.Length - 1));
        using var graph = new TrainingGraph(tf, microBatches.Max(mb => mb.Sum(s => s.Length)), recompute);
        using var grads = new ParameterArena(tf.Backend, tf.Parameters.Layout);
        foreach (var mb in microBatches)
        {
            var tokens = mb.SelectMany(s => s).ToArray();
            var targets = mb.SelectMany(s => s.Skip(1).Append(-1)).ToArray();
            graph.ForwardBackward(tokens, targets, mb.Select(s => new Segment(0, 0, s.Length)).ToArray(), grads, divisor);
        }
        var values = new float[grads.Buffer.Length];
        tf.Backend.Download(values, grads.Buffer);
        return values;
    }

    [Fact]
    public void RecomputingNormsGivesTheSameGradientsBitForBit()
    {
        using var ckpt = new TinyCheckpoint(new TinySpec { Seed = 41 });
        using var model = SparkModel.Load(ckpt.Directory);
        Assert.Equal(Gradients(model, [Sequences], ActivationRecompute.Nothing), Gradients(model, [Sequences], ActivationRecompute.Norms));
    }

    [Fact]
    public void AccumulatedMicroBatchesEqualOneBatch()
    {
        using var ckpt = new TinyCheckpoint(new TinySpec { Architecture = ModelArchitecture.Llama, Seed = 42 });
        using var model = SparkModel.Load(ckpt.Directory);
        var whole = Gradients(model, [Sequences], ActivationRecompute.Nothing);
        var split = Gradients(model, [Sequences[..2], Sequences[2..]], ActivationRecompute.Nothing);
        // the same sums in another order: equal to fp32 rounding
        Assert.True(Numerics.RelativeError(split, whole) < 1e-6, $"relative error {Numerics.RelativeError(split, whole):E2}");
        Assert.Contains(whole, g => g != 0);
    }

    [Fact]
    public void NonFiniteStepsAreSkippedThenStopTheRun()
    {
        using var ckpt = new TinyCheckpoint(new TinySpec
        {
            Vocab = 257, Eos = [256], Seed = 43,
            EditTensors = t => t["model.norm.weight"].Data[0] = float.NaN,
        });
        ByteTokenizer.Write(ckpt.Directory);
        string data = Path.Combine(ckpt.Directory, "data.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 8).Select(i => $"{{\"prompt\": \"q{i}\", \"completion\": \"a{i}\"}}"));
        var dataset = SftDataset.Load(data, Native.Text.Tokenizer.Load(ckpt.Directory), null, new SftFields.PromptCompletion(), 32);
        using var model = SparkModel.Load(ckpt.Directory);
        var skipped = new List<bool>();
        var e = Assert.Throws<SparkException>(() => SftTrainer.Train(model, dataset,
            new SftOptions { Epochs = 5, BatchSize = 2, MaxNonFiniteSteps = 3, Optimizer = new OptimizerSettings { LearningRate = 1e-3 } },
            Path.Combine(ckpt.Directory, "run"), onStep: p => skipped.Add(p.Skipped)));
        Assert.Contains("not finite for 3 steps in a row", e.Message);
        Assert.Equal([true, true], skipped); // the third non-finite step stops before reporting
    }

    [Fact]
    public void SparkGradWritesTheLossAndEveryGradient()
    {
        using var ckpt = new TinyCheckpoint(new TinySpec { Seed = 44 });
        string output = Path.Combine(ckpt.Directory, "grads.safetensors");
        var (code, _, err) = CliTests.Spark("grad", "--model", ckpt.Directory, "--ids", "1,2,3,4", "--ids", "9,8,7,6", "--out", output);
        Assert.True(code == 0, err);
        using var model = SparkModel.Load(ckpt.Directory);
        var expected = model.LossAndGradients([[1, 2, 3, 4], [9, 8, 7, 6]]);
        using var file = SafeTensorsFile.Open(output);
        Assert.Equal([expected.Loss], file.ReadF32("loss"));
        Assert.Equal(expected.Gradients.Count + 1, file.Tensors.Count);
        foreach (var (name, values) in expected.Gradients)
        {
            Assert.Equal(model.ParameterShape(name), file[$"grad.{name}"].Shape);
            Assert.Equal(values, file.ReadF32($"grad.{name}"));
        }
        var unequal = CliTests.Spark("grad", "--model", ckpt.Directory, "--ids", "1,2,3", "--ids", "4,5", "--out", output);
        Assert.Equal(1, unequal.Code);
        Assert.Contains("equal lengths", unequal.Err);
    }
}
