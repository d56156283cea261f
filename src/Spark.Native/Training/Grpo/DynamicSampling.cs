using static System.FormattableString;

namespace Spark.Native.Training.Grpo;

/// <summary>
/// DAPO's dynamic sampling (arXiv 2503.14476, §3.2, eq. 11: 0 &lt; |{o_i correct}| &lt; G): groups whose rewards are all
/// equal have zero advantage and no gradient, so they are dropped and more prompts are sampled until the batch holds
/// the wanted number of informative groups. Bounded: after <see cref="MaxAttempts"/> sampling rounds the fill stops
/// (<see cref="IsExhausted"/>), and the caller trains on the partial batch or reports that the data are too easy or
/// too hard. Use: <c>while (!fill.IsDone) fill.Add(rewardsOfNewRollouts)</c>, keeping the rollouts of the returned groups.
/// </summary>
public sealed class DynamicSampling
{
    /// <summary>Starts an empty fill.</summary>
    /// <param name="targetGroups">Informative groups wanted in the batch (≥ 1).</param>
    /// <param name="groupSize">G, completions per prompt (≥ 1).</param>
    /// <param name="maxAttempts">Sampling rounds allowed (≥ 1).</param>
    public DynamicSampling(int targetGroups, int groupSize, int maxAttempts)
    {
        if (targetGroups < 1 || groupSize < 1 || maxAttempts < 1)
            throw new SparkException(Invariant($"dynamic sampling: target groups {targetGroups}, group size {groupSize} and max attempts {maxAttempts} must all be ≥ 1"));
        (TargetGroups, GroupSize, MaxAttempts) = (targetGroups, groupSize, maxAttempts);
    }

    /// <summary>Informative groups wanted.</summary>
    public int TargetGroups { get; }

    /// <summary>G.</summary>
    public int GroupSize { get; }

    /// <summary>The bound on sampling rounds.</summary>
    public int MaxAttempts { get; }

    /// <summary>Sampling rounds seen so far.</summary>
    public int Attempts { get; private set; }

    /// <summary>Groups kept so far.</summary>
    public int KeptGroups { get; private set; }

    /// <summary>Groups sampled and dropped because their rewards were all equal.</summary>
    public int DroppedGroups { get; private set; }

    /// <summary>The batch holds <see cref="TargetGroups"/> groups.</summary>
    public bool IsFull => KeptGroups == TargetGroups;

    /// <summary>The attempts ran out before the batch was full.</summary>
    public bool IsExhausted => !IsFull && Attempts >= MaxAttempts;

    /// <summary>No more sampling: full or exhausted.</summary>
    public bool IsDone => IsFull || IsExhausted;

    /// <summary>
    /// Records one sampling round ([groups × G] rewards) and returns the indices of its groups to keep, in order:
    /// those <see cref="KeepGroups"/> selects, at most as many as the batch still has room for (the rest are discarded).
    /// </summary>
    public int[] Add(ReadOnlySpan<double> rewards)
    {
        if (IsDone) throw new SparkException(Invariant($"dynamic sampling: the fill is done ({KeptGroups}/{TargetGroups} groups after {Attempts} attempts); start a new one"));
        var informative = KeepGroups(rewards, GroupSize);
        var kept = informative[..Math.Min(informative.Length, TargetGroups - KeptGroups)];
        Attempts++;
        KeptGroups += kept.Length;
        DroppedGroups += rewards.Length / GroupSize - informative.Length;
        return kept;
    }

    /// <summary>
    /// The planner (DAPO eq. 11, generalised to any reward as "not all equal", as verl's filter on the group std does):
    /// indices of the groups of <paramref name="rewards"/> ([groups × G], consecutive) whose rewards are not all equal.
    /// A non-finite reward throws a <see cref="SparkException"/> naming it.
    /// </summary>
    public static int[] KeepGroups(ReadOnlySpan<double> rewards, int groupSize)
    {
        if (groupSize < 1 || rewards.Length % groupSize != 0)
            throw new SparkException(Invariant($"dynamic sampling: {rewards.Length} rewards do not split into groups of {groupSize}"));
        var keep = new List<int>();
        for (int g = 0; g * groupSize < rewards.Length; g++)
        {
            var group = rewards.Slice(g * groupSize, groupSize);
            bool varied = false;
            for (int i = 0; i < groupSize; i++)
            {
                if (!double.IsFinite(group[i])) throw new SparkException(Invariant($"dynamic sampling: reward[{g * groupSize + i}] is {group[i]}; rewards must be finite"));
                varied |= group[i] != group[0];
            }
            if (varied) keep.Add(g);
        }
        return [.. keep];
    }
}
