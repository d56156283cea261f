using Spark.Native.Rewards.Tasks;
using Spark.Native.Tests.Fixtures;
using Spark.Native.Text;
using Spark.Native.Text.Templates;

namespace Spark.Native.Tests.Rewards.Tasks;

public class RlPromptBuilderTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "spark-rlp-" + Guid.NewGuid().ToString("N"))).FullName;
    private readonly Tokenizer _tokenizer;
    private readonly ChatTemplate _template;

    public RlPromptBuilderTests()
    {
        ByteTokenizer.Write(_dir);
        _tokenizer = Tokenizer.Load(_dir);
        _template = ChatTemplate.FromTokenizerConfig(Path.Combine(_dir, "tokenizer_config.json"));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void ChatTemplateRendersSystemAndUserWithTheGenerationPrompt()
    {
        var builder = new RlPromptBuilder(_tokenizer, _template);
        var prompt = builder.Build(new RlProblem("1", "2+2?", "4") { SystemPrompt = "Be brief." });
        Assert.Equal("[system] Be brief.<|end|>[user] 2+2?<|end|>[assistant] ", prompt.Text);
        Assert.Equal(prompt.Text, _tokenizer.Decode(prompt.Ids));
        Assert.Equal(2, prompt.Ids.Count(id => id == 256)); // <|end|> is one special token, not its bytes
    }

    [Fact]
    public void WithoutASystemPromptOnlyTheUserTurnIsRendered()
    {
        var prompt = new RlPromptBuilder(_tokenizer, _template).Build(new RlProblem("1", "hi", "x"));
        Assert.Equal("[user] hi<|end|>[assistant] ", prompt.Text);
    }

    [Fact]
    public void TemplateOptionsAreKeptAndTheGenerationPromptIsAlwaysAdded()
    {
        var template = ChatTemplate.Parse("{{ greeting }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}");
        var builder = new RlPromptBuilder(_tokenizer, template, new ChatTemplateOptions
        {
            GenerationPrompt = GenerationPrompt.Omit,
            ExtraVariables = new Dictionary<string, object?> { ["greeting"] = "hey" },
        });
        Assert.Equal("hey<user>q<assistant>", builder.Build(new RlProblem("1", "q", "a")).Text);
    }

    [Fact]
    public void WithoutATemplateThePromptIsPlainText()
    {
        var builder = new RlPromptBuilder(_tokenizer, template: null);
        var prompt = builder.Build(new RlProblem("1", "2+2?", "4") { SystemPrompt = "Be brief." });
        Assert.Equal("Be brief.\n\n2+2?", prompt.Text);
        Assert.Equal("Be brief.\n\n2+2?"u8.ToArray().Select(b => (int)b), prompt.Ids);
        Assert.Equal("ab", builder.Build(new RlProblem("2", "ab", "x")).Text);
    }

    [Fact]
    public void SyntheticAndFileProblemsRenderAlike()
    {
        var problem = SyntheticTasks.Get("arithmetic").Generate(seed: 1, count: 1)[0];
        var prompt = new RlPromptBuilder(_tokenizer, _template).Build(problem);
        Assert.Equal($"[user] {problem.Prompt}<|end|>[assistant] ", prompt.Text);
    }
}
