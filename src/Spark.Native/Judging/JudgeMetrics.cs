namespace Spark.Native.Judging;

/// <summary>One bin of a reliability diagram.</summary>
/// <param name="Low">Lower edge of P (inclusive).</param>
/// <param name="High">Upper edge of P (exclusive, except the last bin).</param>
/// <param name="Count">Predictions in the bin.</param>
/// <param name="MeanProbability">Their mean P, or NaN when the bin is empty.</param>
/// <param name="PositiveRate">The share of them that are positive, or NaN when the bin is empty.</param>
public sealed record CalibrationBin(double Low, double High, int Count, double MeanProbability, double PositiveRate);

/// <summary>
/// Scores of a probabilistic judge against verified labels: pure functions of (P, label) lists. Undefined values
/// (no examples, or a missing class) are NaN.
/// </summary>
public static class JudgeMetrics
{
    /// <summary>The share of predictions on the right side of 0.5: P ≥ 0.5 counts as a positive verdict.</summary>
    public static double Accuracy(IReadOnlyList<double> probabilities, IReadOnlyList<bool> labels)
    {
        Check(probabilities, labels);
        if (labels.Count == 0) return double.NaN;
        int right = 0;
        for (int i = 0; i < labels.Count; i++) right += (probabilities[i] >= 0.5) == labels[i] ? 1 : 0;
        return right / (double)labels.Count;
    }

    /// <summary>
    /// The mean of the accuracies on positives and on negatives (true-positive and true-negative rates): a judge that
    /// always says "Yes" scores 0.5 whatever the class balance. NaN when either class is absent.
    /// </summary>
    public static double BalancedAccuracy(IReadOnlyList<double> probabilities, IReadOnlyList<bool> labels)
    {
        Check(probabilities, labels);
        int pos = 0, neg = 0, truePos = 0, trueNeg = 0;
        for (int i = 0; i < labels.Count; i++)
        {
            bool yes = probabilities[i] >= 0.5;
            if (labels[i]) { pos++; truePos += yes ? 1 : 0; }
            else { neg++; trueNeg += yes ? 0 : 1; }
        }
        return pos == 0 || neg == 0 ? double.NaN : 0.5 * (truePos / (double)pos + trueNeg / (double)neg);
    }

    /// <summary>The Brier score, mean (P − y)² (0 is perfect; always answering 0.5 scores 0.25).</summary>
    public static double Brier(IReadOnlyList<double> probabilities, IReadOnlyList<bool> labels)
    {
        Check(probabilities, labels);
        if (labels.Count == 0) return double.NaN;
        double sum = 0;
        for (int i = 0; i < labels.Count; i++)
        {
            double d = probabilities[i] - (labels[i] ? 1 : 0);
            sum += d * d;
        }
        return sum / labels.Count;
    }

    /// <summary>Equal-width bins of P over [0, 1] (a reliability diagram); P = 1 falls in the last bin.</summary>
    public static IReadOnlyList<CalibrationBin> Bins(IReadOnlyList<double> probabilities, IReadOnlyList<bool> labels, int bins = 10)
    {
        Check(probabilities, labels);
        if (bins < 1) throw new SparkException($"calibration bins is {bins}; expected ≥ 1");
        var count = new int[bins];
        var sumP = new double[bins];
        var positives = new int[bins];
        for (int i = 0; i < labels.Count; i++)
        {
            double p = probabilities[i];
            if (!(p >= 0 && p <= 1)) throw new SparkException($"probability {i} is {p}; expected a value in [0, 1]");
            int b = Math.Min(bins - 1, (int)(p * bins));
            count[b]++;
            sumP[b] += p;
            positives[b] += labels[i] ? 1 : 0;
        }
        return [.. Enumerable.Range(0, bins).Select(b => new CalibrationBin(b / (double)bins, (b + 1) / (double)bins, count[b],
            count[b] == 0 ? double.NaN : sumP[b] / count[b], count[b] == 0 ? double.NaN : positives[b] / (double)count[b]))];
    }

    /// <summary>
    /// Expected calibration error over equal-width bins: Σ_b (n_b / N) · |mean P_b − positive rate_b| (Naeini et al.
    /// 2015; Guo et al. 2017 use 15 bins, we default to 10 for the small held-out sets of a training run).
    /// </summary>
    public static double ExpectedCalibrationError(IReadOnlyList<double> probabilities, IReadOnlyList<bool> labels, int bins = 10)
    {
        if (labels.Count == 0) return double.NaN;
        double ece = 0;
        foreach (var bin in Bins(probabilities, labels, bins))
            if (bin.Count > 0) ece += bin.Count / (double)labels.Count * Math.Abs(bin.MeanProbability - bin.PositiveRate);
        return ece;
    }

    /// <summary>
    /// The area under the ROC curve: the chance that a random positive gets a higher P than a random negative (ties
    /// count half), by the Mann–Whitney rank sum. NaN when either class is absent. This is what best-of-N selection
    /// needs from a judge: ranking, not calibration.
    /// </summary>
    public static double Auroc(IReadOnlyList<double> probabilities, IReadOnlyList<bool> labels)
    {
        Check(probabilities, labels);
        int n = labels.Count;
        int pos = labels.Count(x => x), neg = n - pos;
        if (pos == 0 || neg == 0) return double.NaN;
        var order = Enumerable.Range(0, n).OrderBy(i => probabilities[i]).ToArray();
        double positiveRankSum = 0;
        for (int start = 0; start < n;)
        {
            int end = start;
            while (end + 1 < n && probabilities[order[end + 1]] == probabilities[order[start]]) end++;
            double rank = (start + end) / 2.0 + 1; // ties share their mean rank
            for (int j = start; j <= end; j++) if (labels[order[j]]) positiveRankSum += rank;
            start = end + 1;
        }
        return (positiveRankSum - pos * (pos + 1) / 2.0) / ((double)pos * neg);
    }

    private static void Check(IReadOnlyList<double> probabilities, IReadOnlyList<bool> labels)
    {
        ArgumentNullException.ThrowIfNull(probabilities);
        ArgumentNullException.ThrowIfNull(labels);
        if (probabilities.Count != labels.Count)
            throw new SparkException($"judge metrics: {probabilities.Count} probabilities for {labels.Count} labels");
    }
}
