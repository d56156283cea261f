using Spark.Native.Training.Grpo;

namespace Spark.Native.Tests.Training.Grpo;

/// <summary>
/// The production functions against a plain-loop reference written straight from TRL's formulas, and the analytic
/// gradient against central finite differences, on random inputs for every loss type × IS level × β.
/// </summary>
public class GrpoPropertyTests
{
    public static TheoryData<LossType, ImportanceSampling, double> AllVariants()
    {
        var data = new TheoryData<LossType, ImportanceSampling, double>();
        foreach (var type in Enum.GetValues<LossType>())
            foreach (var level in Enum.GetValues<ImportanceSampling>())
                foreach (double beta in new[] { 0.0, 0.04 })
                    data.Add(type, level, beta);
        return data;
    }

    private sealed record Batch(double[] Rewards, double[] Mask, double[] Logp, double[] OldLogp, double[] RefLogp, int Rows, int Length, int GroupSize);

    // groups of 4, rows of 7 with 0–7 completion tokens (one empty row), padding holding garbage (NaN / −∞);
    // log-ratios spread over ±0.9 so that both clip sides are hit
    private static Batch RandomBatch(int seed)
    {
        var rng = new Random(seed);
        const int groups = 3, g = 4, length = 7, rows = groups * g;
        var rewards = new double[rows];
        var mask = new double[rows * length];
        var logp = new double[rows * length];
        var old = new double[rows * length];
        var reference = new double[rows * length];
        for (int i = 0; i < rows; i++)
        {
            rewards[i] = i < g ? 1 : rng.Next(2) + 0.1 * rng.NextDouble();
            int n = i == 5 ? 0 : rng.Next(1, length + 1);
            double rowShift = 0.8 * (rng.NextDouble() - 0.5); // moves whole sequences past the clip range (GSPO)
            for (int t = 0; t < length; t++)
            {
                int k = i * length + t;
                if (t >= n) { logp[k] = double.NaN; old[k] = double.NegativeInfinity; reference[k] = double.NaN; continue; }
                mask[k] = 1;
                logp[k] = -3 * rng.NextDouble();
                old[k] = logp[k] + rowShift + (rng.NextDouble() - 0.5);
                reference[k] = logp[k] + (rng.NextDouble() - 0.5);
            }
        }
        return new Batch(rewards, mask, logp, old, reference, rows, length, g);
    }

    // ---- plain-loop reference, one scalar at a time, as TRL's GRPOTrainer writes it ----

    private static double[] LoopAdvantages(double[] r, int g, RewardScaling scaling, double eps)
    {
        double Std(IEnumerable<double> xs)
        {
            var a = xs.ToArray();
            double m = a.Average();
            return Math.Sqrt(a.Sum(x => (x - m) * (x - m)) / (a.Length - 1));
        }
        var result = new double[r.Length];
        for (int i = 0; i < r.Length; i++)
        {
            var group = r.Skip(i / g * g).Take(g).ToArray();
            double centred = r[i] - group.Average();
            result[i] = scaling switch
            {
                RewardScaling.Group => centred / (Std(group) + eps),
                RewardScaling.Batch => centred / (Std(r) + eps),
                _ => centred,
            };
        }
        return result;
    }

    private static (double Loss, double Kl, double Low, double High, double[] Grad) LoopLoss(GrpoLoss o, double[] adv, Batch b, double? normalizer)
    {
        int rows = b.Rows, length = b.Length;
        double M(int i, int t) => b.Mask[i * length + t];
        double RowTokens(int i) => Math.Max(1, Enumerable.Range(0, length).Sum(t => M(i, t)));
        double allTokens = Math.Max(1, b.Mask.Sum());
        double loss = 0, kl = 0, low = 0, high = 0;
        var grad = new double[rows * length];
        for (int i = 0; i < rows; i++)
        {
            double seqLogRatio = 0;
            for (int t = 0; t < length; t++) if (M(i, t) == 1) seqLogRatio += b.Logp[i * length + t] - b.OldLogp[i * length + t];
            seqLogRatio /= RowTokens(i);
            double rowUpstream = 0; // Σ_t ∂loss/∂log ρ_i,t for the sequence level
            for (int t = 0; t < length; t++)
            {
                int k = i * length + t;
                if (M(i, t) == 0) continue;
                double weight = o.LossType switch
                {
                    LossType.Grpo => 1 / RowTokens(i) / rows,
                    LossType.Bnpo => 1 / allTokens,
                    LossType.Dapo => 1 / (normalizer ?? allTokens),
                    _ => 1.0 / (rows * o.MaxCompletionLength),
                };
                double logRatio = o.ImportanceSampling == ImportanceSampling.Sequence ? seqLogRatio : b.Logp[k] - b.OldLogp[k];
                double ratio = Math.Exp(logRatio), a = adv[i];
                double unclipped = ratio * a, clipped = Math.Clamp(ratio, 1 - o.EpsilonLow, 1 + o.EpsilonHigh) * a;
                double d = b.RefLogp[k] - b.Logp[k];
                double k3 = Math.Exp(d) - d - 1;
                loss += weight * (-Math.Min(unclipped, clipped) + o.Beta * k3);
                kl += k3;
                if (ratio < 1 - o.EpsilonLow && a < 0) low++;
                if (ratio > 1 + o.EpsilonHigh && a > 0) high++;
                // the minimum's branch: the unclipped one carries ∂ρ/∂log ρ = ρ; the clipped one is flat where it is smaller
                double dLogRatio = unclipped <= clipped ? -weight * a * ratio : 0;
                if (o.ImportanceSampling == ImportanceSampling.Sequence) rowUpstream += dLogRatio;
                else grad[k] += dLogRatio;
                grad[k] += weight * o.Beta * (1 - Math.Exp(d));
            }
            if (o.ImportanceSampling == ImportanceSampling.Sequence)
                for (int t = 0; t < length; t++) grad[i * length + t] += M(i, t) * rowUpstream / RowTokens(i);
        }
        return (loss, kl / allTokens, low / allTokens, high / allTokens, grad);
    }

    [Theory]
    [InlineData(RewardScaling.Group)]
    [InlineData(RewardScaling.Batch)]
    [InlineData(RewardScaling.None)]
    public void AdvantagesMatchTheLoop(RewardScaling scaling)
    {
        for (int seed = 0; seed < 20; seed++)
        {
            var rng = new Random(seed);
            var rewards = Enumerable.Range(0, 24).Select(_ => rng.NextDouble() * 2 - 0.5).ToArray();
            Close.Equal(LoopAdvantages(rewards, 6, scaling, 1e-4), GrpoMath.Advantages(rewards, 6, scaling, 1e-4), 1e-13);
        }
    }

    [Theory]
    [MemberData(nameof(AllVariants))]
    public void LossMatchesTheLoop(LossType type, ImportanceSampling level, double beta)
    {
        var o = new GrpoLoss(type, RewardScaling.Group, level, beta, 0.2, 0.28, 9);
        double lowSeen = 0, highSeen = 0;
        for (int seed = 0; seed < 10; seed++)
        {
            var b = RandomBatch(seed);
            var adv = GrpoMath.Advantages(b.Rewards, b.GroupSize, o.RewardScaling, o.AdvantageEpsilon);
            double? normalizer = type == LossType.Dapo && seed % 2 == 1 ? 3 * b.Mask.Sum() : null;
            var expected = LoopLoss(o, adv, b, normalizer);
            var r = GrpoMath.Loss(o, adv, b.Logp, b.OldLogp, b.RefLogp, b.Mask, normalizer);
            Assert.Equal(expected.Loss, r.Loss, 1e-13);
            Assert.Equal(expected.Kl, r.KlMean!.Value, 1e-13);
            Assert.Equal(expected.Low, r.ClipLowFraction, 1e-15);
            Assert.Equal(expected.High, r.ClipHighFraction, 1e-15);
            Close.Equal(expected.Grad, r.GradLogp, 1e-13);
            (lowSeen, highSeen) = (lowSeen + r.ClipLowFraction, highSeen + r.ClipHighFraction);
        }
        Assert.True(lowSeen > 0 && highSeen > 0, "the random batches should hit both clip sides");
    }

    [Theory]
    [MemberData(nameof(AllVariants))]
    public void GradientMatchesCentralDifferences(LossType type, ImportanceSampling level, double beta)
    {
        var o = new GrpoLoss(type, RewardScaling.Group, level, beta, 0.2, 0.28, 9);
        const double h = 1e-6;
        for (int seed = 100; seed < 104; seed++)
        {
            var b = RandomBatch(seed);
            var adv = GrpoMath.Advantages(b.Rewards, b.GroupSize, o.RewardScaling, o.AdvantageEpsilon);
            double LossAt(double[] logp) => GrpoMath.Loss(o, adv, logp, b.OldLogp, b.RefLogp, b.Mask).Loss;
            var grad = GrpoMath.Loss(o, adv, b.Logp, b.OldLogp, b.RefLogp, b.Mask).GradLogp;
            double scale = grad.Max(Math.Abs);
            for (int k = 0; k < grad.Length; k++)
            {
                if (b.Mask[k] == 0) { Assert.Equal(0.0, grad[k]); continue; }
                var plus = (double[])b.Logp.Clone();
                var minus = (double[])b.Logp.Clone();
                plus[k] += h;
                minus[k] -= h;
                double numeric = (LossAt(plus) - LossAt(minus)) / (2 * h);
                Assert.True(Math.Abs(numeric - grad[k]) <= 1e-7 * scale + 1e-12,
                    $"{type} {level} β {beta} seed {seed}, row {k / b.Length} token {k % b.Length}: analytic {grad[k]:E6}, numeric {numeric:E6}");
            }
        }
    }

    [Fact]
    public void OneStepPerBatchMeansRatioOneButAGradient()
    {
        // π_old = π_θ: loss = −mean(A) per token, gradient −A·w (not zero)
        var b = RandomBatch(7);
        var o = GrpoLoss.Grpo(9) with { Beta = 0 };
        var adv = GrpoMath.Advantages(b.Rewards, b.GroupSize, o.RewardScaling, o.AdvantageEpsilon);
        var same = GrpoMath.Loss(o, adv, b.Logp, [], [], b.Mask);
        var explicitOld = GrpoMath.Loss(o, adv, b.Logp, b.Logp, [], b.Mask);
        Assert.Equal(explicitOld.GradLogp, same.GradLogp);
        Assert.Contains(same.GradLogp, g => g != 0);
        Assert.Equal(0.0, same.ClipLowFraction + same.ClipHighFraction);
    }
}
