using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spark.Native;
using Spark.Native.Judging;
using Spark.Native.Training.Recycling;

namespace Spark.Cli;

/// <summary>
/// The self-judgement options shared by <c>spark eval</c> and <c>spark generate</c> (--judge, --reflect N, --best-of N
/// and how the judge is asked), and their printed results.
/// </summary>
internal sealed class SelfJudgeCli
{
    public Option<bool> Judge { get; } = new("--judge")
    {
        Description = "Judge evaluation: sample answers (k, default 4, at temperature 1), verify them, and let the model judge its own answers: " +
            "pointwise and pairwise accuracy, calibration of P(Yes)",
    };
    public Option<int?> Reflect { get; } = new("--reflect")
    {
        Description = "Reflect loop: answer, self-judge, revise up to N rounds, stop on a Yes; reports the gain over plain (greedy) decoding",
    };
    public Option<int?> BestOf { get; } = new("--best-of")
    {
        Description = "Best-of-N: sample N answers and keep the one the model's own judgement likes best (P(Yes) from the verdict token's logits)",
    };
    public Option<string> Templates { get; } = new("--templates")
    {
        Description = "Judge and revision templates: builtin, terse (for tiny models, e.g. spark demo's), or a folder with pointwise.json, pairwise.json, reflection.json",
        DefaultValueFactory = _ => "builtin",
    };
    public Option<string> VerdictPrefix { get; } = new("--verdict-prefix")
    {
        Description = $"Text the judge's answer starts with; P(Yes) is read from the token after it (spark demo's models: \"{DemoPrefix}\")",
        DefaultValueFactory = _ => @"\boxed{",
    };
    public Option<string> JudgeInput { get; } = new("--judge-input")
    {
        Description = "What the judge sees of an answer: answer (its final answer, as SPARK trains by default) or full (the whole completion)",
        DefaultValueFactory = _ => "answer",
    };

    public Option<int> JudgeReasoning { get; } = new("--judge-reasoning")
    {
        Description = "0: read the verdict right after the judge prompt; N > 0: the judge first writes up to N tokens of its own working (greedy), " +
            "then the verdict is read (spark demo's models: 16)",
        DefaultValueFactory = _ => 0,
    };

    private const string DemoPrefix = @" \boxed{";

    public SelfJudgeCli() => JudgeInput.AcceptOnlyFromAmong("answer", "full");

    public IEnumerable<Option> All => [Judge, Reflect, BestOf, Templates, VerdictPrefix, JudgeInput, JudgeReasoning];

    /// <summary>Whether any self-judgement mode was asked for.</summary>
    public bool Any(ParseResult parse) => parse.GetValue(Judge) || parse.GetValue(Reflect) is not null || parse.GetValue(BestOf) is not null;

    public JudgeInput Input(ParseResult parse) => parse.GetValue(JudgeInput) == "full" ? Native.Training.Recycling.JudgeInput.FullReasoning : Native.Training.Recycling.JudgeInput.AnswerOnly;

    public TemplatePool Pool(ParseResult parse) => TemplatePool.Resolve(parse.GetValue(Templates)!);

    public SelfJudge Create(ParseResult parse, SparkModel model, Native.Text.Tokenizer tokenizer, Native.Text.Templates.ChatTemplate? template) =>
        new(model, tokenizer, template, Pool(parse), new SelfJudgeOptions { VerdictPrefix = parse.GetValue(VerdictPrefix)!, ReasoningTokens = parse.GetValue(JudgeReasoning) });

    /// <summary>Checks the counts before anything is loaded.</summary>
    public void Validate(ParseResult parse)
    {
        if (parse.GetValue(Reflect) is < 0) throw new SparkException($"--reflect is {parse.GetValue(Reflect)}; expected ≥ 0 rounds");
        if (parse.GetValue(BestOf) is < 1) throw new SparkException($"--best-of is {parse.GetValue(BestOf)}; expected ≥ 1");
        if (parse.GetValue(JudgeReasoning) < 0) throw new SparkException($"--judge-reasoning is {parse.GetValue(JudgeReasoning)}; expected ≥ 0 tokens");
    }

    private static string Pct(double x) => double.IsFinite(x) ? (100 * x).ToString("F1", CultureInfo.InvariantCulture) + " %" : "n/a";

    private static string F3(double x) => double.IsFinite(x) ? x.ToString("F3", CultureInfo.InvariantCulture) : "n/a";

    private static string Table(IEnumerable<(string Name, string Value)> rows)
    {
        var list = rows.ToList();
        int width = list.Max(x => x.Name.Length) + 2;
        return string.Concat(list.Select(x => x.Name.PadRight(width) + x.Value + "\n"));
    }

    private static JsonNode? Number(double x) => double.IsFinite(x) ? JsonValue.Create(x) : null;

    public static string JudgeTable(JudgeEvalReport r) => Table(
    [
        ("judged answers", string.Create(CultureInfo.InvariantCulture, $"{r.Answers.Count} ({r.Answers.Count(a => a.Correct)} correct, {r.Answers.Count(a => !a.Correct)} wrong")
            + (r.Unjudged > 0 ? string.Create(CultureInfo.InvariantCulture, $"; {r.Unjudged} queries without a verdict (too long for the context) left out)") : ")")),
        ("pointwise accuracy", Pct(r.PointwiseAccuracy)),
        ("balanced accuracy", double.IsFinite(r.BalancedAccuracy) ? Pct(r.BalancedAccuracy) : "n/a (all judged answers are of one class)"),
        ("pairwise accuracy", string.Create(CultureInfo.InvariantCulture, $"{Pct(r.PairwiseAccuracy)} ({r.Pairs.Select(x => (x.Problem, x.CorrectSample, x.WrongSample)).Distinct().Count()} pairs, both orders)")),
        ("P(Yes) on correct", F3(r.MeanYesOnCorrect)),
        ("P(Yes) on wrong", F3(r.MeanYesOnWrong)),
        ("calibration (ECE)", F3(r.CalibrationError)),
        ("Brier score", F3(r.Brier)),
        ("AUROC", F3(r.Auroc)),
        ("verdict mass", F3(r.MeanVerdictMass) + " (probability on the two verdict tokens)"),
        ("reliability", string.Join("  ", r.Calibration.Where(b => b.Count > 0).Select(b =>
            string.Create(CultureInfo.InvariantCulture, $"[{b.Low:0.0},{b.High:0.0}) n={b.Count} correct {b.PositiveRate:P0}")))),
    ]);

    public static JsonObject JudgeJson(JudgeEvalReport r) => new()
    {
        ["answers"] = r.Answers.Count, ["pairs"] = r.Pairs.Select(x => (x.Problem, x.CorrectSample, x.WrongSample)).Distinct().Count(), ["unjudged"] = r.Unjudged,
        ["pointwise_accuracy"] = Number(r.PointwiseAccuracy), ["balanced_accuracy"] = Number(r.BalancedAccuracy), ["pairwise_accuracy"] = Number(r.PairwiseAccuracy),
        ["mean_p_yes_correct"] = Number(r.MeanYesOnCorrect), ["mean_p_yes_wrong"] = Number(r.MeanYesOnWrong), ["ece"] = Number(r.CalibrationError),
        ["brier"] = Number(r.Brier), ["auroc"] = Number(r.Auroc), ["verdict_mass"] = Number(r.MeanVerdictMass),
        ["calibration"] = new JsonArray([.. r.Calibration.Select(b => (JsonNode?)new JsonObject
        {
            ["low"] = b.Low, ["high"] = b.High, ["count"] = b.Count, ["mean_p"] = Number(b.MeanProbability), ["correct_rate"] = Number(b.PositiveRate),
        })]),
        ["policy_sampled_accuracy"] = r.Policy.PassAtK[0], ["k"] = r.Policy.K,
    };

    public static string ReflectTable(ReflectReport r) => Table(
    [
        ("problems", r.Traces.Count.ToString(CultureInfo.InvariantCulture)),
        ("plain (greedy)", Pct(r.PlainAccuracy)),
        ($"reflect {r.Rounds}", string.Create(CultureInfo.InvariantCulture, $"{Pct(r.ReflectAccuracy)} ({100 * r.Gain:+0.0;-0.0} points)")),
        ("accepted", string.Create(CultureInfo.InvariantCulture, $"{Pct(r.AcceptedShare)} stopped on a Yes; {r.MeanRevisions:F2} revisions per problem")),
        ("changed", string.Create(CultureInfo.InvariantCulture, $"{r.WrongToRight} wrong → right, {r.RightToWrong} right → wrong")),
    ]);

    public static JsonObject ReflectJson(ReflectReport r) => new()
    {
        ["problems"] = r.Traces.Count, ["rounds"] = r.Rounds, ["plain_accuracy"] = r.PlainAccuracy, ["reflect_accuracy"] = r.ReflectAccuracy,
        ["gain"] = r.Gain, ["accepted_share"] = r.AcceptedShare, ["mean_revisions"] = r.MeanRevisions,
        ["wrong_to_right"] = r.WrongToRight, ["right_to_wrong"] = r.RightToWrong,
    };

    public static string BestOfTable(BestOfReport r) => Table(
    [
        ("problems", r.Choices.Count.ToString(CultureInfo.InvariantCulture)),
        ("first sample", Pct(r.FirstAccuracy)),
        ("random pick", string.Create(CultureInfo.InvariantCulture, $"{Pct(r.SampleAccuracy)} (mean over the {r.N} samples)")),
        ($"best-of-{r.N}", string.Create(CultureInfo.InvariantCulture, $"{Pct(r.BestOfAccuracy)} ({100 * r.Gain:+0.0;-0.0} points over a random pick)")),
        ($"maj@{r.N}", Pct(r.MajorityAccuracy)),
        ($"pass@{r.N}", string.Create(CultureInfo.InvariantCulture, $"{Pct(r.OracleAccuracy)} (the ceiling of any pick)")),
    ]);

    public static JsonObject BestOfJson(BestOfReport r) => new()
    {
        ["problems"] = r.Choices.Count, ["n"] = r.N, ["first_accuracy"] = r.FirstAccuracy, ["random_pick_accuracy"] = r.SampleAccuracy,
        ["best_of_accuracy"] = r.BestOfAccuracy, ["gain"] = r.Gain, ["majority_accuracy"] = r.MajorityAccuracy, ["pass_at_n"] = r.OracleAccuracy,
    };

    public static string Json(JsonObject o) => o.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
}
