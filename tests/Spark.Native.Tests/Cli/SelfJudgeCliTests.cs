using System.Text.Json.Nodes;
using Spark.Native.Tests.IO;
using Spark.Native.Tests.Judging;

namespace Spark.Native.Tests.Cli;

public class SelfJudgeCliTests(TinyJudgeModel tiny) : IClassFixture<TinyJudgeModel>
{
    [Fact]
    public void EvalJudgeReflectAndBestOfReportTheirScores()
    {
        using var dir = new TempDir();
        string data = dir.File("test.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 6).Select(i => new JsonObject { ["prompt"] = $"{i} + 4 =", ["answer"] = $"{i + 4}" }.ToJsonString()));
        string[] common = ["eval", "--model", tiny.Directory, "--data", data, "--verifier", "numeric", "--max-new-tokens", "6", "--templates", "terse", "--verdict-prefix", @" \boxed{"];
        var (code, stdout, stderr) = CliTests.Spark([.. common, "--judge", "--reflect", "2", "--best-of", "3"]);
        Assert.True(code == 0, stderr);
        foreach (string line in new[] { "== judge", "pointwise accuracy", "pairwise accuracy", "calibration (ECE)", "== reflect 2", "plain (greedy)", "reflect 2 ", "== best-of-3", "best-of-3 ", "pass@3" })
            Assert.Contains(line, stdout, StringComparison.Ordinal);

        var defaults = CliTests.Spark([.. common, "--judge", "--json"]);
        Assert.True(defaults.Code == 0, defaults.Err);
        Assert.Equal(4, JsonNode.Parse(defaults.Out)!["judge"]!["k"]!.GetValue<int>()); // 4 answers per problem unless --k says otherwise
        var json = CliTests.Spark([.. common, "--judge", "--k", "2", "--reflect", "1", "--best-of", "2", "--json"]);
        Assert.True(json.Code == 0, json.Err);
        var summary = JsonNode.Parse(json.Out)!;
        Assert.Equal(2, summary["judge"]!["k"]!.GetValue<int>());
        Assert.Equal(6, summary["reflect"]!["problems"]!.GetValue<int>());
        Assert.Equal(1, summary["reflect"]!["rounds"]!.GetValue<int>());
        Assert.InRange(summary["best_of"]!["best_of_accuracy"]!.GetValue<double>(), 0, summary["best_of"]!["pass_at_n"]!.GetValue<double>());

        Assert.Contains("does not apply to --judge", CliTests.Spark([.. common, "--judge", "--out", dir.File("x.jsonl")]).Err, StringComparison.Ordinal);
        Assert.Contains("--top-p and --top-k do not apply", CliTests.Spark([.. common, "--best-of", "2", "--top-p", "0.9"]).Err, StringComparison.Ordinal);
        var bad = CliTests.Spark([.. common, "--best-of", "0"]);
        Assert.Equal(1, bad.Code);
        Assert.Equal("error: --best-of is 0; expected ≥ 1", bad.Err.Trim());
        var noPool = CliTests.Spark([.. common[..^4], "--judge", "--templates", dir.File("nowhere")]);
        Assert.Equal(1, noPool.Code);
        Assert.Contains("neither a built-in pool", noPool.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void GenerateShowsEachAttemptWithItsVerdict()
    {
        var (code, stdout, stderr) = CliTests.Spark("generate", "--model", tiny.Directory, "--prompt", "3 + 4 =", "--max-new-tokens", "5",
            "--reflect", "2", "--best-of", "3", "--templates", "terse", "--verifier", "numeric");
        Assert.True(code == 0, stderr);
        Assert.Contains("--- answer  (final answer: ", stdout, StringComparison.Ordinal);
        Assert.Contains("P(Yes) = ", stdout, StringComparison.Ordinal);
        Assert.True(stdout.Contains("--- accepted after ", StringComparison.Ordinal) || stdout.Contains("--- no Yes within 2 revision(s)", StringComparison.Ordinal), stdout);
        Assert.Equal(3, stdout.Split('\n').Count(l => l.StartsWith("--- candidate ", StringComparison.Ordinal)));
        Assert.Single(stdout.Split('\n'), l => l.Contains("(chosen)", StringComparison.Ordinal));
        var bad = CliTests.Spark("generate", "--model", tiny.Directory, "--ids", "1,2", "--reflect", "1");
        Assert.Equal("error: --reflect and --best-of need --prompt", bad.Err.Trim());
    }
}
