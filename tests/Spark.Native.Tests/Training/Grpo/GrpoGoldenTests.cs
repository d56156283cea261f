using System.Globalization;
using Spark.Native.IO;
using Spark.Native.Training.Grpo;

namespace Spark.Native.Tests.Training.Grpo;

/// <summary>
/// The 48 float64 reference cases of ../shared/golden/grpo (every loss type × reward scaling × IS level × β): advantages,
/// loss, kl_mean and ∂loss/∂logp must match to 1e-10 relative (plus 1e-14 absolute for values that are 0).
/// </summary>
public class GrpoGoldenTests(ITestOutputHelper output)
{
    private const double Rtol = 1e-10, Atol = 1e-14;

    public static TheoryData<int> Cases => [.. Enumerable.Range(0, 48)];

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesTheFloat64Reference(int index)
    {
        Assert.SkipWhen(TestPaths.SharedGoldenDir is null, "../shared (golden references) is not present beside this clone");
        var c = Load(index);
        var (advantages, result) = Run(c);
        AssertClose(c.Advantages, advantages, $"{c.Name} advantages");
        AssertClose([c.Loss], [result.Loss], $"{c.Name} loss");
        AssertClose([c.KlMean], [result.KlMean!.Value], $"{c.Name} kl_mean");
        AssertClose(c.GradLogp, result.GradLogp, $"{c.Name} grad_logp");
    }

    [Fact]
    public void ReportsTheLargestErrorsOverAllCases()
    {
        Assert.SkipWhen(TestPaths.SharedGoldenDir is null, "../shared (golden references) is not present beside this clone");
        double adv = 0, loss = 0, kl = 0, grad = 0;
        foreach (int i in Enumerable.Range(0, 48))
        {
            var c = Load(i);
            var (a, r) = Run(c);
            adv = Math.Max(adv, MaxError(c.Advantages, a));
            loss = Math.Max(loss, MaxError([c.Loss], [r.Loss]));
            kl = Math.Max(kl, MaxError([c.KlMean], [r.KlMean!.Value]));
            grad = Math.Max(grad, MaxError(c.GradLogp, r.GradLogp));
        }
        output.WriteLine($"max |a − e| / max(|e|, 1e-300) over 48 cases: advantages {adv:E2}, loss {loss:E2}, kl_mean {kl:E2}, grad_logp {grad:E2} (grad of 0 → absolute)");
        Assert.True(Math.Max(Math.Max(adv, loss), Math.Max(kl, grad)) < 1e-10);
    }

    // relative error per element; absolute where the expected value is exactly 0
    private static double MaxError(double[] expected, double[] actual) =>
        expected.Zip(actual, (e, a) => e == 0 ? Math.Abs(a) : Math.Abs(a - e) / Math.Abs(e)).Max();

    internal sealed record GoldenCase(string Name, GrpoLoss Options, int GroupSize, double[] Rewards, double[] Mask, double[] Logp, double[] OldLogp, double[] RefLogp,
        double[] Advantages, double Loss, double KlMean, double[] GradLogp);

    internal static GoldenCase Load(int index)
    {
        string path = Path.Combine(TestPaths.SharedGoldenDir!, "golden", "grpo", $"case_{index:D2}.safetensors");
        using var f = SafeTensorsFile.Open(path);
        var m = f.Metadata;
        double D(string key) => double.Parse(m[key], CultureInfo.InvariantCulture);
        var options = new GrpoLoss(
            m["loss_type"] switch { "grpo" => LossType.Grpo, "bnpo" => LossType.Bnpo, "dr_grpo" => LossType.DrGrpo, "dapo" => LossType.Dapo, var s => throw new InvalidDataException(s) },
            m["scale_rewards"] switch { "group" => RewardScaling.Group, "batch" => RewardScaling.Batch, "none" => RewardScaling.None, var s => throw new InvalidDataException(s) },
            m["importance_sampling_level"] == "sequence" ? ImportanceSampling.Sequence : ImportanceSampling.Token,
            D("beta"), D("epsilon_low"), D("epsilon_high"), int.Parse(m["max_completion_length"], CultureInfo.InvariantCulture), D("advantage_eps"));
        string name = $"case_{index:D2} ({m["loss_type"]}, {m["scale_rewards"]}, {m["importance_sampling_level"]}, β {m["beta"]})";
        return new GoldenCase(name, options, int.Parse(m["group_size"], CultureInfo.InvariantCulture), f.ReadF64("rewards"), f.ReadF64("mask"),
            f.ReadF64("logp"), f.ReadF64("old_logp"), f.ReadF64("ref_logp"),
            f.ReadF64("advantages"), f.ReadF64("loss")[0], f.ReadF64("kl_mean")[0], f.ReadF64("grad_logp"));
    }

    internal static (double[] Advantages, GrpoLossResult Result) Run(GoldenCase c)
    {
        var advantages = GrpoMath.Advantages(c.Rewards, c.GroupSize, c.Options.RewardScaling, c.Options.AdvantageEpsilon);
        return (advantages, GrpoMath.Loss(c.Options, advantages, c.Logp, c.OldLogp, c.RefLogp, c.Mask));
    }

    private static void AssertClose(double[] expected, double[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= Atol + Rtol * Math.Abs(expected[i]),
                $"{what}[{i}]: {actual[i]:R}, expected {expected[i]:R} (difference {actual[i] - expected[i]:E2})");
    }
}
