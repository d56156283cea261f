using System.Diagnostics;
using System.Text;
using Spark.Native.Text;

namespace Spark.Benchmarks;

/// <summary>
/// Tokenizer speed, the peer of benchmarks/node/tokenize_bench.mjs: load time of a tokenizer folder and single-thread
/// encode throughput over a corpus, line by line, without special tokens.
/// </summary>
public static class TokenizeSuite
{
    public static BenchSuiteResult Run(BenchOptions options)
    {
        string dir = options.Tokenizer ?? throw new ArgumentException("tokenize needs --tokenizer DIR");
        string corpus = options.Input ?? throw new ArgumentException("tokenize needs --input FILE (a text corpus)");

        var loads = new List<double>();
        Tokenizer tokenizer = null!;
        for (int i = 0; i < 3; i++)
        {
            var clock = Stopwatch.StartNew();
            tokenizer = Tokenizer.Load(dir);
            loads.Add(clock.Elapsed.TotalMilliseconds);
        }
        loads.Sort();

        string[] lines = File.ReadAllText(corpus, Encoding.UTF8).Split('\n');
        long bytes = Encoding.UTF8.GetByteCount(string.Join('\n', lines));
        foreach (string line in lines.Take(2000)) tokenizer.Encode(line, SpecialTokens.Omit);

        long tokens = 0;
        var times = Timing.Measure(() =>
        {
            long count = 0;
            foreach (string line in lines) count += tokenizer.Encode(line, SpecialTokens.Omit).Length;
            tokens = count;
        }, warmup: 0, reps: options.Reps, minSeconds: 0);
        double median = Timing.Median(times);
        Console.Error.WriteLine($"{Path.GetFileName(dir.TrimEnd('/'))}: load {loads[0]:F0} ms (first {loads.Max():F0} ms), encode {bytes / 1e6 / (median / 1000):F2} MB/s, {tokens} tokens");

        var settings = new Dictionary<string, object>
        {
            ["tokenizer"] = dir,
            ["corpus"] = corpus,
            ["threads"] = 1,
            ["special_tokens"] = "omitted",
        };
        var result = new
        {
            LoadMs = Math.Round(loads[0], 1),
            FirstLoadMs = Math.Round(loads.Max(), 1),
            CorpusBytes = bytes,
            Lines = lines.Length,
            Tokens = tokens,
            MedianMs = Math.Round(median, 1),
            MbPerS = Math.Round(bytes / 1e6 / (median / 1000), 3),
            Runs = times.Length,
        };
        return new BenchSuiteResult(settings, [result]);
    }
}
