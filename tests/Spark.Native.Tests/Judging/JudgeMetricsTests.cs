using Spark.Native.Judging;

namespace Spark.Native.Tests.Judging;

public class JudgeMetricsTests
{
    [Fact]
    public void AccuracyAndBalancedAccuracyCountVerdictsAtOneHalf()
    {
        double[] p = [0.9, 0.6, 0.5, 0.2, 0.7, 0.1];
        bool[] y = [true, true, false, false, false, false];
        // verdicts (P ≥ 0.5): yes yes yes no yes no → right, right, wrong, right, wrong, right
        Assert.Equal(4 / 6.0, JudgeMetrics.Accuracy(p, y), 12);
        // positives 2/2 right, negatives 2/4 right
        Assert.Equal(0.5 * (1.0 + 0.5), JudgeMetrics.BalancedAccuracy(p, y), 12);
        // a judge that always says Yes: accuracy is the positive rate, balanced accuracy exactly one half
        Assert.Equal(2 / 6.0, JudgeMetrics.Accuracy([.. y.Select(_ => 0.99)], y), 12);
        Assert.Equal(0.5, JudgeMetrics.BalancedAccuracy([.. y.Select(_ => 0.99)], y), 12);
        Assert.True(double.IsNaN(JudgeMetrics.BalancedAccuracy([0.3, 0.8], [true, true])));
        Assert.True(double.IsNaN(JudgeMetrics.Accuracy([], [])));
    }

    [Fact]
    public void BrierAndCalibrationErrorMatchHandComputedValues()
    {
        double[] p = [0.05, 0.15, 0.85, 0.95, 0.9];
        bool[] y = [false, true, true, true, false];
        double brier = (0.05 * 0.05 + 0.85 * 0.85 + 0.15 * 0.15 + 0.05 * 0.05 + 0.9 * 0.9) / 5;
        Assert.Equal(brier, JudgeMetrics.Brier(p, y), 12);
        // 10 bins: [0,.1): {0.05: no}; [.1,.2): {0.15: yes}; [.8,.9): {0.85: yes}; [.9,1]: {0.95: yes, 0.9: no}
        double ece = 1 / 5.0 * 0.05 + 1 / 5.0 * 0.85 + 1 / 5.0 * 0.15 + 2 / 5.0 * Math.Abs(0.925 - 0.5);
        Assert.Equal(ece, JudgeMetrics.ExpectedCalibrationError(p, y), 12);
        var bins = JudgeMetrics.Bins(p, y);
        Assert.Equal(10, bins.Count);
        Assert.Equal([1, 1, 0, 0, 0, 0, 0, 0, 1, 2], bins.Select(b => b.Count));
        Assert.Equal(0.925, bins[9].MeanProbability, 12);
        Assert.Equal(0.5, bins[9].PositiveRate, 12);
        Assert.True(double.IsNaN(bins[4].MeanProbability));
        // P = 1 falls in the last bin; a perfectly calibrated judge has no error
        Assert.Equal(0, JudgeMetrics.ExpectedCalibrationError([1.0, 0.0], [true, false]), 12);
        Assert.Contains("probability 0 is 1.5", Assert.Throws<SparkException>(() => JudgeMetrics.Bins([1.5], [true])).Message, StringComparison.Ordinal);
        Assert.Contains("2 probabilities for 1 labels", Assert.Throws<SparkException>(() => JudgeMetrics.Brier([0.1, 0.2], [true])).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AurocIsThePairwiseRankingProbabilityWithTiesCountedHalf()
    {
        Assert.Equal(1.0, JudgeMetrics.Auroc([0.9, 0.8, 0.3, 0.1], [true, true, false, false]), 12);
        Assert.Equal(0.0, JudgeMetrics.Auroc([0.1, 0.2, 0.8, 0.9], [true, true, false, false]), 12);
        // brute force over every (positive, negative) pair, ties counting one half
        var rng = new Random(5);
        double[] p = [.. Enumerable.Range(0, 60).Select(_ => Math.Round(rng.NextDouble(), 1))]; // many ties
        bool[] y = [.. Enumerable.Range(0, 60).Select(_ => rng.NextDouble() < 0.4)];
        double wins = 0;
        int pairs = 0;
        for (int i = 0; i < p.Length; i++)
            for (int j = 0; j < p.Length; j++)
                if (y[i] && !y[j])
                {
                    pairs++;
                    wins += p[i] > p[j] ? 1 : p[i] == p[j] ? 0.5 : 0;
                }
        Assert.Equal(wins / pairs, JudgeMetrics.Auroc(p, y), 12);
        Assert.True(double.IsNaN(JudgeMetrics.Auroc([0.2, 0.4], [false, false])));
    }
}
