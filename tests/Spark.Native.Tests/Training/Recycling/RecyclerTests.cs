using Spark.Native.Rewards;
using Spark.Native.Tests.IO;
using Spark.Native.Training.Recycling;

namespace Spark.Native.Tests.Training.Recycling;

public class RecyclerTests
{
    private static RecyclingGroup Group(string id, params (string Answer, bool Correct)[] samples) =>
        new(id, $"What is the answer to {id}?", "42", "numeric",
            [.. samples.Select(s => new RecyclingSample($"Working on {id}... so the answer is \\boxed{{{s.Answer}}}.", s.Answer == "?" ? null : s.Answer, s.Correct))]);

    private static readonly RecyclingOptions NoCaps = new() { MaxJudgeItems = 1_000_000, MaxReflectionItems = 1_000_000 };

    private static bool IsYes(RecycledItem item) => item.Label is "Yes" or "A";

    [Fact]
    public void AllCorrectGroupsGiveAPointwiseYesOnACorrectAnswer()
    {
        var (judge, reflection) = Recycler.Recycle([Group("p1", ("42", true), ("42", true), ("42.0", true))], TemplatePool.BuiltIn, NoCaps, seed: 1);
        var item = Assert.Single(judge);
        Assert.Equal(RecycledKind.Pointwise, item.Kind);
        Assert.True(IsYes(item), item.Label);
        Assert.Equal("verdict", item.Verifier);
        Assert.Equal("p1", item.SourceId);
        Assert.Contains("What is the answer to p1?", item.Prompt, StringComparison.Ordinal);
        Assert.Empty(reflection); // nothing wrong to reflect on
        // the label is what the verdict verifier rewards
        Assert.Equal(1, Verifiers.Create("verdict").Score($"\\boxed{{{item.Label}}}", item.Label).Reward);
    }

    [Fact]
    public void AllWrongGroupsJudgeAnExtractedWrongAnswerOrNothing()
    {
        var (judge, reflection) = Recycler.Recycle([Group("p2", ("7", false), ("?", false))], TemplatePool.BuiltIn, NoCaps, seed: 2);
        var item = Assert.Single(judge);
        Assert.False(IsYes(item), item.Label);
        Assert.Matches(@"(?s)\b7\b", item.Prompt); // answer-only judging shows the extracted answer, not the reasoning
        Assert.DoesNotContain("Working on", item.Prompt, StringComparison.Ordinal);
        var r = Assert.Single(reflection);
        Assert.Equal(RecycledKind.Reflection, r.Kind);
        Assert.Equal("42", r.Label);
        Assert.Equal("numeric", r.Verifier);

        // no final answer could be extracted from any wrong answer: no judge item
        var none = Recycler.Recycle([Group("p3", ("?", false), ("?", false))], TemplatePool.BuiltIn, NoCaps, seed: 3);
        Assert.Empty(none.Judge);
    }

    [Fact]
    public void MixedGroupsSplitPointwiseAndPairwiseAtTheReferenceShareWithBalancedPlacement()
    {
        var groups = Enumerable.Range(0, 2000).Select(i => Group($"m{i}", ("alpha", true), ("beta", false), ("gamma", false))).ToArray();
        var (judge, _) = Recycler.Recycle(groups, TemplatePool.BuiltIn, NoCaps, seed: 4);
        Assert.Equal(2000, judge.Count);
        var pairwise = judge.Where(j => j.Kind == RecycledKind.Pairwise).ToArray();
        var pointwise = judge.Where(j => j.Kind == RecycledKind.Pointwise).ToArray();
        Assert.InRange(pointwise.Length / 2000.0, 0.27, 0.33);
        // pairwise: the label is the letter of the correct answer, and the correct answer lands on A about half the time
        foreach (var item in pairwise)
        {
            int right = item.Prompt.IndexOf("alpha", StringComparison.Ordinal);
            int wrong = Math.Max(item.Prompt.IndexOf("beta", StringComparison.Ordinal), item.Prompt.IndexOf("gamma", StringComparison.Ordinal));
            Assert.True(right >= 0 && wrong >= 0, item.Prompt);
            Assert.Equal(right < wrong ? "A" : "B", item.Label);
        }
        Assert.InRange(pairwise.Count(p => p.Label == "A") / (double)pairwise.Length, 0.46, 0.54);
        // pointwise from mixed groups: correct and wrong classes about 50/50
        Assert.InRange(pointwise.Count(IsYes) / (double)pointwise.Length, 0.43, 0.57);
        // every template of the pools gets used
        var shapes = pairwise.Select(p => System.Text.RegularExpressions.Regex.Replace(p.Prompt, @"What is the answer to m\d+\?|alpha|beta|gamma", "_")).Distinct().Count();
        Assert.Equal(TemplatePool.BuiltIn.Pairwise.Count, shapes);
    }

    [Fact]
    public void ReflectionItemsShowTheFullAttemptOrTheAnswerAtTheirShare()
    {
        var groups = Enumerable.Range(0, 1000).Select(i => Group($"r{i}", ("42", true), ("13", false))).ToArray();
        var (_, reflection) = Recycler.Recycle(groups, TemplatePool.BuiltIn, NoCaps, seed: 5);
        Assert.Equal(1000, reflection.Count); // at most one per group
        Assert.All(reflection, r => Assert.Equal("42", r.Label));
        double full = reflection.Count(r => r.Prompt.Contains("Working on", StringComparison.Ordinal)) / 1000.0;
        Assert.InRange(full, 0.45, 0.55);
        Assert.All(reflection, r => Assert.Contains("13", r.Prompt, StringComparison.Ordinal));
    }

    [Fact]
    public void FullReasoningJudgingShowsTheCompletionAndCapsSubsample()
    {
        var groups = Enumerable.Range(0, 50).Select(i => Group($"c{i}", ("42", true), ("1", false))).ToArray();
        var options = new RecyclingOptions { JudgeInput = JudgeInput.FullReasoning, MaxJudgeItems = 8, MaxReflectionItems = 5 };
        var (judge, reflection) = Recycler.Recycle(groups, TemplatePool.BuiltIn, options, seed: 6);
        Assert.Equal(8, judge.Count);
        Assert.Equal(5, reflection.Count);
        Assert.All(judge, j => Assert.Contains("Working on", j.Prompt, StringComparison.Ordinal));
        Assert.Equal(8, judge.Select(j => j.SourceId).Distinct().Count());
        // deterministic by seed
        Assert.Equal(judge, Recycler.Recycle(groups, TemplatePool.BuiltIn, options, seed: 6).Judge);
        Assert.Throws<SparkException>(() => Recycler.Recycle(groups, TemplatePool.BuiltIn, options with { MixedPointwiseShare = 1.5 }, 6));
    }

    [Fact]
    public void TheCacheReleasesFullBatchesOldestFirst()
    {
        var cache = new RecycleCache<RecycledItem>();
        var items = Enumerable.Range(0, 5).Select(i => new RecycledItem(RecycledKind.Pointwise, $"p{i}", "Yes", "verdict", $"s{i}")).ToArray();
        cache.Add(items[..3]);
        Assert.False(cache.TryTake(4, out var none));
        Assert.Empty(none);
        cache.Add(items[3..]);
        Assert.True(cache.TryTake(4, out var batch));
        Assert.Equal(items[..4], batch);
        Assert.Equal(1, cache.Count);
    }
}

public class TemplatePoolTests
{
    [Fact]
    public void TheBuiltInPoolsAreWellFormed()
    {
        var pool = TemplatePool.BuiltIn;
        Assert.True(pool.Pointwise.Count(t => t.Style == TemplateStyle.YesNo) >= 10);
        Assert.True(pool.Pointwise.Count(t => t.Style == TemplateStyle.AB) >= 6);
        Assert.True(pool.Pairwise.Count >= 10);
        Assert.True(pool.Reflection.Count(t => t.Style == TemplateStyle.Full) >= 8);
        Assert.True(pool.Reflection.Count(t => t.Style == TemplateStyle.AnswerOnly) >= 8);
        foreach (var t in pool.Pointwise.Concat(pool.Pairwise).Concat(pool.Reflection))
        {
            string rendered = t.Render(PromptTemplate.PlaceholdersOf(t.Kind).ToDictionary(n => n, n => $"<{n}>"));
            Assert.Contains(@"\boxed", rendered, StringComparison.Ordinal);
            foreach (string name in PromptTemplate.PlaceholdersOf(t.Kind)) Assert.Contains($"<{name}>", rendered, StringComparison.Ordinal);
            Assert.DoesNotMatch(@"\{(question|answer|answer_a|answer_b|attempt)\}", rendered);
        }
        Assert.Equal(pool.Pointwise.Count, pool.Pointwise.Select(t => t.Text).Distinct().Count());
    }

    [Fact]
    public void RenderingLeavesBracesInTheInsertedTextAlone()
    {
        var t = new PromptTemplate(TemplateKind.Pointwise, TemplateStyle.YesNo, "Q: {question} A: {answer} \\boxed{}");
        Assert.Equal("Q: what is {answer}? A: {question} \\boxed{}", t.Render(new Dictionary<string, string> { ["question"] = "what is {answer}?", ["answer"] = "{question}" }));
    }

    [Fact]
    public void UsersCanReplaceThePoolsAndBadFilesNameTheTemplate()
    {
        using var dir = new TempDir();
        void Write(string pointwise)
        {
            File.WriteAllText(Path.Combine(dir.Path, "pointwise.json"), pointwise);
            File.WriteAllText(Path.Combine(dir.Path, "pairwise.json"), """{"kind": "pairwise", "templates": [{"style": "a_b", "text": "{question} A {answer_a} B {answer_b} \\boxed{}"}]}""");
            File.WriteAllText(Path.Combine(dir.Path, "reflection.json"), """{"kind": "reflection", "templates": [{"style": "full", "text": "{question} {attempt} \\boxed{}"}, {"style": "answer_only", "text": "{question} not {attempt} \\boxed{}"}]}""");
        }
        Write("""{"kind": "pointwise", "templates": [{"style": "yes_no", "text": "Mine: {question} / {answer} \\boxed{Yes}"}]}""");
        var pool = TemplatePool.Load(dir.Path);
        Assert.Equal("Mine: {question} / {answer} \\boxed{Yes}", Assert.Single(pool.Pointwise).Text);

        Write("""{"kind": "pointwise", "templates": [{"style": "yes_no", "text": "ok {question} {answer} \\boxed{}"}, {"style": "yes_no", "text": "no answer {question} \\boxed{}"}]}""");
        var e = Assert.Throws<SparkException>(() => TemplatePool.Load(dir.Path));
        Assert.Equal($"{Path.Combine(dir.Path, "pointwise.json")}: template 1: must use {{answer}} exactly once", e.Message);
        Write("""{"kind": "pointwise", "templates": [{"style": "maybe", "text": "{question} {answer} \\boxed{}"}]}""");
        Assert.Contains("style \"maybe\" is not one of \"yes_no\", \"a_b\"", Assert.Throws<SparkException>(() => TemplatePool.Load(dir.Path)).Message, StringComparison.Ordinal);
        Write("""{"kind": "pointwise", "templates": [{"style": "yes_no", "text": "{question} {answer}"}]}""");
        Assert.Contains("\\boxed", Assert.Throws<SparkException>(() => TemplatePool.Load(dir.Path)).Message, StringComparison.Ordinal);
    }
}
