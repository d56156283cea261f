using Spark.Native.Training.Grpo;

namespace Spark.Native.Tests.Training.Grpo;

public class RolloutShapingTests
{
    [Theory]
    // L_max 20, L_cache 4: free up to 16, linear to −1 at 20, −1 beyond
    [InlineData(0, 0.0)]
    [InlineData(16, 0.0)]
    [InlineData(17, -0.25)]
    [InlineData(18, -0.5)]
    [InlineData(20, -1.0)]
    [InlineData(21, -1.0)]
    public void OverlongPenaltyFollowsDapoEquation13(int length, double expected) =>
        Assert.Equal(expected, RolloutShaping.OverlongPenalty(length, 20, 4));

    [Fact]
    public void OverlongPenaltyWithoutCacheIsAStep()
    {
        Assert.Equal(0.0, RolloutShaping.OverlongPenalty(20, 20, 0));
        Assert.Equal(-1.0, RolloutShaping.OverlongPenalty(21, 20, 0));
        Assert.Throws<SparkException>(() => RolloutShaping.OverlongPenalty(5, 20, 21));
        Assert.Throws<SparkException>(() => RolloutShaping.OverlongPenalty(-1, 20, 4));
    }

    [Fact]
    public void MaskTruncatedZeroesWholeRowsAndCopies()
    {
        double[] mask = [1, 1, 1, 1, 1, 0, 1, 1, 1];
        var masked = RolloutShaping.MaskTruncated(mask, [true, false, true]);
        Assert.Equal([0, 0, 0, 1, 1, 0, 0, 0, 0], masked);
        Assert.Equal(1.0, mask[0]); // the input is untouched
        Assert.Throws<SparkException>(() => RolloutShaping.MaskTruncated(mask, [true, false]));
    }

    [Fact]
    public void MaskedTruncatedRowsAddNothingButStillCountAsRows()
    {
        // grpo: row 1 masked out → loss = ½ · (mean of row 0), as TRL's mean over all B sequences
        var options = new GrpoLoss(LossType.Grpo, RewardScaling.Group, ImportanceSampling.Token, 0, 0.2, 0.2, 2);
        var mask = RolloutShaping.MaskTruncated([1, 1, 1, 1], [false, true]);
        var r = GrpoMath.Loss(options, [1, -1], [-1, -1, -1, -1], [], [], mask);
        Assert.Equal(-0.5, r.Loss, 1e-15);
        Assert.Equal([-0.25, -0.25, 0, 0], r.GradLogp);
    }

    [Fact]
    public void DapoMiniBatchesWithTheRolloutNormaliserAddUpToTheFullBatch()
    {
        // several optimizer steps per rollout batch: each mini-batch passes the rollout batch's token count, so the
        // mini-batch losses sum to the full-batch loss and their gradients are the full-batch rows
        var rng = new Random(3);
        const int rows = 8, length = 5;
        var mask = Enumerable.Range(0, rows * length).Select(k => k % length < 1 + k / length % length ? 1.0 : 0.0).ToArray();
        var logp = Enumerable.Range(0, rows * length).Select(_ => -2 * rng.NextDouble()).ToArray();
        var old = logp.Select(x => x + 0.4 * (rng.NextDouble() - 0.5)).ToArray();
        var adv = GrpoMath.Advantages(Enumerable.Range(0, rows).Select(_ => (double)rng.Next(2)).ToArray(), 4, RewardScaling.Group, 1e-4);
        var options = GrpoLoss.Dapo(length, 0);
        var full = GrpoMath.Loss(options, adv, logp, old, [], mask);
        double total = mask.Sum(), sum = 0;
        for (int start = 0; start < rows; start += 2)
        {
            var slice = new Range(start * length, (start + 2) * length);
            var part = GrpoMath.Loss(options, adv[start..(start + 2)], logp[slice], old[slice], [], mask[slice], total);
            sum += part.Loss;
            Close.Equal(full.GradLogp[slice], part.GradLogp, 1e-15);
        }
        Assert.Equal(full.Loss, sum, 1e-14);
    }

    [Theory]
    [InlineData(LossType.Grpo)]
    [InlineData(LossType.Bnpo)]
    [InlineData(LossType.DrGrpo)]
    [InlineData(LossType.Dapo)]
    public void MicroBatchLossesSumToTheBatchLoss(LossType type)
    {
        // gradient accumulation: each part passes the optimizer batch's rows (grpo, dr_grpo) and tokens (bnpo, dapo)
        var rng = new Random(5);
        const int rows = 6, length = 4;
        var mask = Enumerable.Range(0, rows * length).Select(k => k % length <= k / length % length ? 1.0 : 0.0).ToArray();
        var logp = Enumerable.Range(0, rows * length).Select(_ => -2 * rng.NextDouble()).ToArray();
        var old = logp.Select(x => x + 0.4 * (rng.NextDouble() - 0.5)).ToArray();
        var adv = GrpoMath.Advantages(Enumerable.Range(0, rows).Select(_ => (double)rng.Next(2)).ToArray(), 3, RewardScaling.Group, 1e-4);
        var options = new GrpoLoss(type, RewardScaling.Group, ImportanceSampling.Token, 0, 0.2, 0.2, length);
        var full = GrpoMath.Loss(options, adv, logp, old, [], mask);
        double total = mask.Sum(), sum = 0;
        foreach (var (start, count) in new[] { (0, 1), (1, 3), (4, 2) })
        {
            var slice = new Range(start * length, (start + count) * length);
            var part = GrpoMath.Loss(options, adv[start..(start + count)], logp[slice], old[slice], [], mask[slice], total, rowNormalizer: rows);
            sum += part.Loss;
            Close.Equal(full.GradLogp[slice], part.GradLogp, 1e-15);
        }
        Assert.Equal(full.Loss, sum, 1e-14);
        Assert.Contains("row normaliser", Assert.Throws<SparkException>(() => GrpoMath.Loss(options, adv, logp, old, [], mask, rowNormalizer: rows - 1)).Message);
    }
}
