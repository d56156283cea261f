using Spark.Native.Tests.Fixtures;
using Spark.Native.Text;
using Spark.Native.Text.Templates;
using Spark.Native.Training;

namespace Spark.Native.Tests.Training;

public class SftDatasetTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "spark-sft-" + Guid.NewGuid().ToString("N"))).FullName;
    private readonly Tokenizer _tokenizer;
    private readonly ChatTemplate _template;

    public SftDatasetTests()
    {
        ByteTokenizer.Write(_dir);
        _tokenizer = Tokenizer.Load(_dir);
        _template = ChatTemplate.FromTokenizerConfig(Path.Combine(_dir, "tokenizer_config.json"));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(params string[] lines)
    {
        string path = Path.Combine(_dir, "data.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    private static string Learned(Tokenizer tok, SftExample e) =>
        tok.Decode(e.Ids.Where((_, t) => e.Learned[t]).ToArray());

    [Fact]
    public void MessagesLearnOnlyTheAssistantTurns()
    {
        var data = SftDataset.Load(Write("""{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}, {"role": "user", "content": "2+2"}, {"role": "assistant", "content": "4"}]}"""),
            _tokenizer, _template, new SftFields.Messages(), maxLength: 200);
        var e = Assert.Single(data.Examples);
        Assert.Equal("[user] hi<|end|>[assistant] yo<|end|>[user] 2+2<|end|>[assistant] 4<|end|>", _tokenizer.Decode(e.Ids));
        Assert.Equal("yo<|end|>4<|end|>", Learned(_tokenizer, e));
    }

    [Fact]
    public void PromptAndCompletionWithoutATemplateAppendEos()
    {
        var data = SftDataset.Load(Write("""{"q": "ab", "a": "cd"}"""), _tokenizer, null, new SftFields.PromptCompletion("q", "a"), maxLength: 50);
        var e = Assert.Single(data.Examples);
        Assert.Equal("abcd<|end|>", _tokenizer.Decode(e.Ids));
        Assert.Equal("cd<|end|>", Learned(_tokenizer, e));
        Assert.Equal([-1, 'c', 'd', 256, -1], e.Targets());
    }

    [Fact]
    public void OverlongExamplesAreTruncatedOrDroppedAndCounted()
    {
        string path = Write("""{"prompt": "p", "completion": "0123456789"}""", """{"prompt": "p", "completion": "ok"}""");
        var truncated = SftDataset.Load(path, _tokenizer, null, new SftFields.PromptCompletion(), maxLength: 6);
        Assert.Equal((1, 0), (truncated.Truncated, truncated.Dropped));
        Assert.Equal(6, truncated.Examples[0].Ids.Length);
        var dropped = SftDataset.Load(path, _tokenizer, null, new SftFields.PromptCompletion(), maxLength: 6, OverlongExamples.Drop);
        Assert.Equal((0, 1), (dropped.Truncated, dropped.Dropped));
        Assert.Single(dropped.Examples);
    }

    [Fact]
    public void BadLinesNameTheLineOrAreSkippedAndCounted()
    {
        string path = Write("""{"prompt": "a", "completion": "b"}""", "", """{"prompt": "a"}""", """{"prompt": "a", "completion": ""}""", "[1]");
        var e = Assert.Throws<SparkException>(() => SftDataset.Load(path, _tokenizer, null, new SftFields.PromptCompletion(), 50));
        Assert.StartsWith($"{path}:3: field \"completion\" is missing", e.Message);
        var skipped = SftDataset.Load(path, _tokenizer, null, new SftFields.PromptCompletion(), 50, badLines: BadLines.Skip);
        Assert.Equal(3, skipped.SkippedLines);
        Assert.Single(skipped.Examples);
    }
}
