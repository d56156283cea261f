using Spark.Native.Generation;

namespace Spark.Native.Rewards.Tasks;

/// <summary>
/// A generator of verifiable problems. Problem i of a seed is a pure function of (seed, i), so
/// Generate(seed, n) is a prefix of Generate(seed, n + 1) and a run is reproducible.
/// </summary>
public interface ISyntheticTask
{
    /// <summary>The registry name ("arithmetic", "countdown").</summary>
    string Name { get; }

    /// <summary>Problems 0 … count−1 of the seed.</summary>
    IReadOnlyList<RlProblem> Generate(ulong seed, int count);

    /// <summary>The reward of a completion for one of this task's problems, in [0, 1].</summary>
    /// <exception cref="SparkException">The problem lacks the metadata this task needs.</exception>
    double Verify(string completion, RlProblem problem);
}

/// <summary>The built-in synthetic tasks by name, and their train/test splits.</summary>
public static class SyntheticTasks
{
    private static readonly Dictionary<string, Func<ISyntheticTask>> Registry = new(StringComparer.Ordinal)
    {
        ["arithmetic"] = () => new ArithmeticTask(),
        ["countdown"] = () => new CountdownTask(),
    };

    /// <summary>The valid task names.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. Registry.Keys.Order(StringComparer.Ordinal)];

    /// <summary>The task of that name with default options.</summary>
    /// <exception cref="SparkException">Unknown name; the message lists the valid ones.</exception>
    public static ISyntheticTask Get(string name) =>
        Registry.TryGetValue(name, out var create) ? create()
            : throw new SparkException($"unknown synthetic task '{name}'; valid tasks: {string.Join(", ", Names)}");

    /// <summary>
    /// A train and a test set that share no prompt: the test set is Generate(seed′, testCount) for a seed derived from
    /// <paramref name="seed"/>; the train set draws from other derived seeds and drops every problem whose prompt is
    /// in the test set (duplicates within the train set are kept, as sampling with replacement would).
    /// </summary>
    /// <exception cref="SparkException">The task's problem space is too small to find <paramref name="trainCount"/> problems outside the test set.</exception>
    public static RlSplit Split(ISyntheticTask task, ulong seed, int trainCount, int testCount)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (trainCount < 0 || testCount < 0) throw new SparkException($"split sizes must be non-negative (train {trainCount}, test {testCount})");
        var test = task.Generate(CounterRng.Next(seed, 0), testCount);
        var held = test.Select(p => p.Prompt).ToHashSet(StringComparer.Ordinal);
        var train = new List<RlProblem>(trainCount);
        const int maxRounds = 64;
        for (ulong round = 1; train.Count < trainCount; round++)
        {
            if (round > maxRounds)
                throw new SparkException($"task '{task.Name}': found only {train.Count} of {trainCount} train problems outside the {testCount} test problems; widen the task's options or ask for fewer");
            foreach (var p in task.Generate(CounterRng.Next(seed, round), trainCount - train.Count))
                if (!held.Contains(p.Prompt)) train.Add(p);
        }
        return new RlSplit(train, test);
    }
}

/// <summary>A task's random stream: draw n of a problem seed is <see cref="CounterRng.Next"/>(seed, n).</summary>
internal struct TaskRandom(ulong seed)
{
    private ulong _counter;

    /// <summary>The stream of problem <paramref name="index"/> under <paramref name="seed"/>.</summary>
    public static TaskRandom ForProblem(ulong seed, int index) => new(CounterRng.Next(seed, (ulong)index));

    /// <summary>A uniform integer in [lo, hi].</summary>
    public long Range(long lo, long hi)
    {
        ulong span = (ulong)(hi - lo) + 1;
        ulong x = CounterRng.Next(seed, _counter++);
        return span == 0 ? (long)x : lo + (long)(ulong)(((UInt128)x * span) >> 64);
    }

    /// <summary>A uniform integer in [0, n).</summary>
    public int Below(int n) => (int)Range(0, n - 1);
}
