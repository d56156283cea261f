using System.Text;
using Spark.Native.Generation;

namespace Spark.Native.Rewards.Tasks;

/// <summary>What decides a problem's side of a hash split.</summary>
public enum SplitKey
{
    /// <summary>The prompt text: equal prompts always land on the same side, so no test prompt is seen in training.</summary>
    Prompt,
    /// <summary>The problem id: stable when prompts are edited, but duplicate prompts under different ids may straddle the split.</summary>
    Id,
}

/// <summary>A train/test partition of problems; both keep the input order.</summary>
/// <param name="Train">Problems for training.</param>
/// <param name="Test">Held-out problems.</param>
public sealed record RlSplit(IReadOnlyList<RlProblem> Train, IReadOnlyList<RlProblem> Test)
{
    /// <summary>
    /// Splits by hash: a problem goes to test when uniform(seed, FNV-1a-64(key)) &lt; <paramref name="testFraction"/>.
    /// Each problem's side depends only on its key and the seed, not on the other rows, so adding, removing or
    /// reordering rows never moves a problem across the split, and equal keys never straddle it. The test share is
    /// <paramref name="testFraction"/> in expectation, not exactly.
    /// </summary>
    /// <param name="problems">The problems to split.</param>
    /// <param name="testFraction">Expected share of the test side, in [0, 1].</param>
    /// <param name="seed">Changes which problems are held out.</param>
    /// <param name="key">What is hashed.</param>
    public static RlSplit ByHash(IReadOnlyList<RlProblem> problems, double testFraction, ulong seed = 0, SplitKey key = SplitKey.Prompt)
    {
        ArgumentNullException.ThrowIfNull(problems);
        if (!(testFraction >= 0 && testFraction <= 1)) throw new SparkException($"test fraction {testFraction} is not in [0, 1]");
        var train = new List<RlProblem>();
        var test = new List<RlProblem>();
        foreach (var p in problems)
        {
            string text = key == SplitKey.Prompt ? p.Prompt : p.Id;
            (CounterRng.Uniform(seed, Fnv1a64(text)) < testFraction ? test : train).Add(p);
        }
        return new RlSplit(train, test);
    }

    /// <summary>FNV-1a, 64-bit, over the UTF-8 bytes: stable across processes and runtimes (unlike string.GetHashCode).</summary>
    internal static ulong Fnv1a64(string text)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (byte b in Encoding.UTF8.GetBytes(text)) h = (h ^ b) * 0x100000001B3UL;
        return h;
    }
}
