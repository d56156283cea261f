using System.Diagnostics;
using Spark.Native.Text;
using static Spark.Native.Tests.Text.TokenizerComponentTests;

namespace Spark.Native.Tests.Text;

/// <summary>Complexity guards, not speed benchmarks: a 100,000-char run of one letter (quadratic BPE would take
/// minutes) and loading the 17 MB Llama-3.2 tokenizer.json. Limits are generous (shared CI machines).</summary>
public class TokenizerPerformanceTests(ITestOutputHelper output)
{
    [Fact]
    public void Long_run_of_one_char_is_not_quadratic_synthetic()
    {
        // Merges a+a, aa+aa, ... so a 100,000-char word goes through ~100,000 merges.
        var tokens = new List<string> { "a" };
        var merges = new List<string>();
        for (int k = 1; k <= 8; k++) { merges.Add($"\"{tokens[^1]} {tokens[^1]}\""); tokens.Add(tokens[^1] + tokens[^1]); }
        var t = Tokenizer.FromJson(Json(Vocab("", [.. tokens]), "[" + string.Join(",", merges) + "]"));
        var sw = Stopwatch.StartNew();
        int[] ids = t.Encode(new string('a', 100_000), SpecialTokens.Omit);
        sw.Stop();
        Assert.Equal(392, ids.Length); // 100,000 = 390 × 256 + 128 + 32
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"took {sw.Elapsed}");
        output.WriteLine($"synthetic 100,000 'a': {sw.Elapsed.TotalMilliseconds:F0} ms");
    }

    [Theory]
    [InlineData("qwen2.5-0.5b-instruct")]
    [InlineData("llama3.2-1b")]
    [InlineData("llama2")]
    public void Long_runs_on_real_tokenizers(string folder)
    {
        Assert.SkipWhen(TestPaths.SharedDataDir is null, "../shared (real tokenizer files) is absent");
        var t = TokenizerParityTests.Get(folder);
        foreach (string run in new[] { new string('a', 100_000), new string(' ', 100_000), string.Concat(Enumerable.Repeat("ab ", 33_000)) })
        {
            var sw = Stopwatch.StartNew();
            int[] ids = t.Encode(run, SpecialTokens.Omit);
            sw.Stop();
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"{folder}: took {sw.Elapsed}");
            Assert.Equal(run, t.Decode(ids)); // llama2's decoder strips the space it prepended
            output.WriteLine($"{folder}: {run.Length} chars ({run[0]}...) → {ids.Length} ids in {sw.Elapsed.TotalMilliseconds:F0} ms");
        }
    }

    [Fact]
    public void Loading_llama3_tokenizer_is_fast()
    {
        Assert.SkipWhen(TestPaths.SharedDataDir is null, "../shared (real tokenizer files) is absent");
        string path = Path.Combine(TestPaths.SharedDataDir!, "data", "tokenizers", "llama3.2-1b", "tokenizer.json");
        Tokenizer.Load(path); // warm up the JIT
        var sw = Stopwatch.StartNew();
        var t = Tokenizer.Load(path);
        sw.Stop();
        Assert.Equal(128256, t.VocabSize);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
        output.WriteLine($"llama3.2-1b tokenizer.json load: {sw.Elapsed.TotalMilliseconds:F0} ms");
    }
}
