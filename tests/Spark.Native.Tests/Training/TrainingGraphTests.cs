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
    public void TheLogProbHeadMatchesTheCrossEntropyHead()
    {
        using var ckpt = new TinyCheckpoint(new TinySpec { Seed = 43, Tied = true });
        using var model = SparkModel.Load(ckpt.Directory);
        var tf = model.Transformer;
        var tokens = Sequences.SelectMany(s => s).ToArray();
        var targets = Sequences.SelectMany(s => s.Skip(1).Append(-1)).ToArray();
        var segments = Sequences.Select(s => new Segment(0, 0, s.Length)).ToArray();
        int counted = targets.Count(t => t >= 0);

        // log-probs at temperatures 1 and 0.7 equal the log-softmax of the model's logits / T
        using var graph = new TrainingGraph(tf, tokens.Length, head: TrainingHead.LogProbs);
        foreach (float temperature in (float[])[1f, 0.7f])
        {
            var (logProbs, entropies) = graph.ForwardLogProbs(tokens, targets, segments, temperature);
            for (int s = 0, row = 0; s < Sequences.Length; row += Sequences[s].Length, s++)
            {
                var logits = model.Forward(Sequences[s]);
                int v = logits.Values.Length / Sequences[s].Length;
                for (int t = 0; t < Sequences[s].Length; t++)
                {
                    var z = logits.Values.Skip(t * v).Take(v).Select(x => x / (double)temperature).ToArray();
                    double max = z.Max(), lse = max + Math.Log(z.Sum(x => Math.Exp(x - max)));
                    double entropy = -z.Sum(x => Math.Exp(x - lse) * (x - lse));
                    double expected = targets[row + t] < 0 ? 0 : z[targets[row + t]] - lse;
                    Assert.True(Math.Abs(logProbs[row + t] - expected) < 1e-4, $"T={temperature} row {row + t}: {logProbs[row + t]} vs {expected}");
                    Assert.True(Math.Abs(entropies[row + t] - entropy) < 1e-4, $"T={temperature} row {row + t}: entropy {entropies[row + t]} vs {entropy}");
                }
            }
        }

        // at T = 1, ∂(−mean log p)/∂θ through the log-prob head equals the cross-entropy head's gradient
        graph.ForwardLogProbs(tokens, targets, segments, 1f);
        using var viaLogProbs = new ParameterArena(tf.Backend, tf.Parameters.Layout);
        graph.BackwardFromLogProbs(targets.Select(t => t < 0 ? 0f : -1f / counted).ToArray(), [], viaLogProbs);
        var a = new float[viaLogProbs.Buffer.Length];
        tf.Backend.Download(a, viaLogProbs.Buffer);
        var b = Gradients(model, [Sequences], ActivationRecompute.Nothing);
        Assert.True(Numerics.RelativeError(a, b) < 1e-5, $"relative error {Numerics.RelativeError(a, b):E2}");
        Assert.Throws<InvalidOperationException>(() => graph.ForwardBackward(tokens, targets, segments, viaLogProbs, counted));
    }

    [Fact]
    public void TheLogProbHeadGradientHoldsOnALargePackedBatch()
    {
        // what GRPO trains through: 150 packed sequences (1 350 rows: several 256-row blocks of the fused log-prob op),
        // targets on the completion part only, a signed weight per row; the analytic gradient of f = Σ w·logp must match
        // central differences of f along the gradient and along a random direction
        using var ckpt = new TinyCheckpoint(new TinySpec { Seed = 44, Vocab = 300, Hidden = 32, Intermediate = 48, Heads = 4, KvHeads = 2 });
        using var model = SparkModel.Load(ckpt.Directory);
        var tf = model.Transformer;
        var rng = new Random(5);
        var sequences = Enumerable.Range(0, 150).Select(_ => Enumerable.Range(0, 9).Select(_ => rng.Next(300)).ToArray()).ToArray();
        var tokens = sequences.SelectMany(s => s).ToArray();
        var targets = sequences.SelectMany(s => s.Select((_, t) => t >= 5 && t + 1 < s.Length ? s[t + 1] : -1)).ToArray();
        var weights = targets.Select(t => t < 0 ? 0f : (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var segments = sequences.Select(s => new Segment(0, 0, s.Length)).ToArray();
        using var graph = new TrainingGraph(tf, tokens.Length, head: TrainingHead.LogProbs);
        double F()
        {
            var (lp, _) = graph.ForwardLogProbs(tokens, targets, segments, 0.8f);
            return lp.Select((x, r) => (double)x * weights[r]).Sum();
        }
        F();
        using var grads = new ParameterArena(tf.Backend, tf.Parameters.Layout);
        graph.BackwardFromLogProbs(weights, [], grads);
        var g = new float[grads.Buffer.Length];
        tf.Backend.Download(g, grads.Buffer);
        var theta = new float[g.Length];
        tf.Backend.Download(theta, tf.Parameters.Buffer);
        double norm = Math.Sqrt(g.Sum(x => (double)x * x));
        var random = Enumerable.Range(0, g.Length).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        double randomNorm = Math.Sqrt(random.Sum(x => x * x));
        foreach (var direction in new[] { g.Select(x => x / norm).ToArray(), random.Select(x => x / randomNorm).ToArray() })
        {
            double analytic = direction.Select((d, i) => d * g[i]).Sum();
            const double h = 2e-3;
            double At(double step)
            {
                tf.Backend.Upload(tf.Parameters.Buffer, theta.Select((x, i) => (float)(x + step * direction[i])).ToArray());
                return F();
            }
            double numeric = (At(h) - At(-h)) / (2 * h);
            tf.Backend.Upload(tf.Parameters.Buffer, theta);
            Assert.True(Math.Abs(numeric - analytic) <= 2e-2 * Math.Max(Math.Abs(analytic), 0.05 * norm),
                $"directional derivative: analytic {analytic}, central differences {numeric} (|grad| {norm})");
        }
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
