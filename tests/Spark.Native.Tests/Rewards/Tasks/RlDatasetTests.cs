using Spark.Native.Rewards.Tasks;
using Spark.Native.Training;

namespace Spark.Native.Tests.Rewards.Tasks;

public class RlDatasetTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "spark-rl-" + Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(params string[] lines)
    {
        string path = Path.Combine(_dir, "data.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public void DefaultFieldsGiveProblemsInFileOrderWithSourceAndLineIds()
    {
        string path = Write("""{"prompt": "1+1?", "answer": "2"}""", "", """{"prompt": "2+2?", "answer": "4", "extra": true}""");
        var data = RlDataset.Load(path);
        Assert.Equal(0, data.SkippedLines);
        Assert.Equal(["1+1?", "2+2?"], data.Problems.Select(p => p.Prompt));
        Assert.Equal(["2", "4"], data.Problems.Select(p => p.Answer));
        Assert.Equal(["data.jsonl:1", "data.jsonl:3"], data.Problems.Select(p => p.Id));
        Assert.Equal($"{path}:3", data.Problems[1].Source);
        Assert.All(data.Problems, p => Assert.Null(p.SystemPrompt));
        Assert.All(data.Problems, p => Assert.Equal(VerifierNames.Math, p.Verifier));
        Assert.All(data.Problems, p => Assert.Empty(p.Metadata));
    }

    [Fact]
    public void ConfiguredFieldsNestedPathsIdMetadataSystemPromptSuffixAndVerifier()
    {
        string path = Write(
            """{"input": {"question": "Reach 10."}, "sol": {"final": ["x", 10]}, "uid": 7, "nums": [4, 6], "target": 10, "kind": "easy"}""",
            """{"input": {"question": "Reach 3."}, "sol": {"final": ["y", "3"]}, "uid": "b", "nums": [1, 2], "target": 3, "kind": "easy"}""");
        var data = RlDataset.Load(path, new RlDataOptions
        {
            PromptField = "input.question",
            AnswerField = "sol.final.1",
            IdField = "uid",
            MetadataFields = ["nums", "target", "kind"],
            SystemPrompt = "Be brief.",
            PromptSuffix = " Answer in \\boxed{}.",
            Verifier = VerifierNames.Countdown,
        });
        var p = data.Problems[0];
        Assert.Equal("Reach 10. Answer in \\boxed{}.", p.Prompt);
        Assert.Equal(("10", "7"), (p.Answer, p.Id));
        Assert.Equal(("3", "b"), (data.Problems[1].Answer, data.Problems[1].Id));
        Assert.Equal("Be brief.", p.SystemPrompt);
        Assert.Equal(VerifierNames.Countdown, p.Verifier);
        Assert.Equal("[4,6]", p.Metadata["nums"]);
        Assert.Equal("10", p.Metadata["target"]);
        Assert.Equal("easy", p.Metadata["kind"]); // strings unquoted
    }

    [Fact]
    public void AKeyWithDotsWinsOverThePath()
    {
        var data = RlDataset.Load(Write("""{"a.b": "literal", "a": {"b": "nested"}, "answer": 1}"""), new RlDataOptions { PromptField = "a.b" });
        Assert.Equal("literal", data.Problems[0].Prompt);
    }

    [Fact]
    public void NumericAnswersKeepTheirJsonText()
    {
        var data = RlDataset.Load(Write("""{"prompt": "a", "answer": 72}""", """{"prompt": "b", "answer": 3.50}""", """{"prompt": "c", "answer": -1e3}""", """{"prompt": "d", "answer": " \\frac{1}{2} "}"""));
        Assert.Equal(["72", "3.50", "-1e3", " \\frac{1}{2} "], data.Problems.Select(p => p.Answer));
    }

    [Fact]
    public void DuplicateRowsAreKept()
    {
        var data = RlDataset.Load(Write("""{"prompt": "a", "answer": "1"}""", """{"prompt": "a", "answer": "1"}"""));
        Assert.Equal(2, data.Problems.Count);
        Assert.NotEqual(data.Problems[0].Id, data.Problems[1].Id);
    }

    [Fact]
    public void ByteOrderMarkAndCrlfAreAccepted()
    {
        string path = Path.Combine(_dir, "bom.jsonl");
        File.WriteAllBytes(path, [0xEF, 0xBB, 0xBF, .. "{\"prompt\": \"a\", \"answer\": \"1\"}\r\n{\"prompt\": \"b\", \"answer\": \"2\"}\r\n"u8]);
        Assert.Equal(["a", "b"], RlDataset.Load(path).Problems.Select(p => p.Prompt));
    }

    [Theory]
    [InlineData("""{"prompt": "q"}""", "field 'answer' is missing")]
    [InlineData("""{"prompt": "q", "answer": null}""", "field 'answer' is missing")]
    [InlineData("""{"prompt": "q", "answer": true}""", "field 'answer' must be a string or a number, not a boolean")]
    [InlineData("""{"prompt": "q", "answer": [1]}""", "field 'answer' must be a string or a number, not an array")]
    [InlineData("""{"prompt": 5, "answer": "1"}""", "field 'prompt' must be a string, not a number")]
    [InlineData("""{"prompt": "  ", "answer": "1"}""", "field 'prompt' is empty")]
    [InlineData("""{"prompt": "q", "answer": ""}""", "field 'answer' is empty")]
    [InlineData("""[1, 2]""", "expected a JSON object")]
    [InlineData("""{"prompt": "q", "answer": "1" """, "invalid JSON")]
    public void ABadRowNamesFileLineAndReason(string badRow, string reason)
    {
        string path = Write("""{"prompt": "ok", "answer": "1"}""", "", badRow, """{"prompt": "ok", "answer": "2"}""");
        var e = Assert.Throws<SparkException>(() => RlDataset.Load(path));
        Assert.StartsWith($"{path}:3: {reason}", e.Message);
    }

    [Fact]
    public void InvalidUtf8IsABadRow()
    {
        string path = Path.Combine(_dir, "bytes.jsonl");
        File.WriteAllBytes(path, [.. "{\"prompt\": \"a\", \"answer\": \"1\"}\n{\"prompt\": \""u8, 0xFF, .. "\", \"answer\": \"1\"}\n"u8]);
        Assert.Equal($"{path}:2: invalid UTF-8", Assert.Throws<SparkException>(() => RlDataset.Load(path)).Message);
    }

    [Fact]
    public void SkipCountsBadRowsAndKeepsTheRest()
    {
        string path = Write("""{"prompt": "a", "answer": "1"}""", "not json", """{"prompt": "b"}""", """{"prompt": "c", "answer": 3}""", "[]");
        var data = RlDataset.Load(path, new RlDataOptions { BadLines = BadLines.Skip });
        Assert.Equal(3, data.SkippedLines);
        Assert.Equal(["a", "c"], data.Problems.Select(p => p.Prompt));
        Assert.Equal(["data.jsonl:1", "data.jsonl:4"], data.Problems.Select(p => p.Id));
    }

    [Fact]
    public void MissingMetadataFieldIsABadRow()
    {
        string path = Write("""{"prompt": "a", "answer": "1"}""");
        var e = Assert.Throws<SparkException>(() => RlDataset.Load(path, new RlDataOptions { MetadataFields = ["nums"] }));
        Assert.Equal($"{path}:1: field 'nums' is missing", e.Message);
    }

    [Fact]
    public void EmptyFileAllBadFileAndMissingFileHaveClearErrors()
    {
        string empty = Path.Combine(_dir, "empty.jsonl");
        File.WriteAllText(empty, "\n  \n");
        Assert.Equal($"{empty}: the file has no rows (it is empty or blank)", Assert.Throws<SparkException>(() => RlDataset.Load(empty)).Message);

        string bad = Write("{}", "{}");
        var e = Assert.Throws<SparkException>(() => RlDataset.Load(bad, new RlDataOptions { BadLines = BadLines.Skip }));
        Assert.Equal($"{bad}: no usable problems (2 bad rows of 2)", e.Message);

        string missing = Path.Combine(_dir, "nope.jsonl");
        Assert.StartsWith($"{missing}: cannot read", Assert.Throws<SparkException>(() => RlDataset.Load(missing)).Message);
    }
}
