using System.Reflection;
using System.Text;
using System.Text.Json;

namespace Spark.Native.Training.Recycling;

/// <summary>What a recycled prompt asks for.</summary>
public enum TemplateKind
{
    /// <summary>Judge one answer (placeholders {question}, {answer}).</summary>
    Pointwise,
    /// <summary>Pick the correct one of two answers (placeholders {question}, {answer_a}, {answer_b}).</summary>
    Pairwise,
    /// <summary>Revise a wrong attempt (placeholders {question}, {attempt}).</summary>
    Reflection,
}

/// <summary>How a template's verdict or attempt is shaped.</summary>
public enum TemplateStyle
{
    /// <summary>Pointwise: the verdict is Yes (correct) or No.</summary>
    YesNo,
    /// <summary>Pointwise: A (correct) or B (incorrect); pairwise: the letter of the correct answer.</summary>
    AB,
    /// <summary>Reflection: the attempt is the whole earlier completion.</summary>
    Full,
    /// <summary>Reflection: the attempt is only its final answer.</summary>
    AnswerOnly,
}

/// <summary>One instruction wording with its placeholders.</summary>
/// <param name="Kind">What it asks for.</param>
/// <param name="Style">Verdict or attempt shape.</param>
/// <param name="Text">The wording, with {placeholders}.</param>
public sealed record PromptTemplate(TemplateKind Kind, TemplateStyle Style, string Text)
{
    /// <summary>The placeholders a template of each kind must use, and the only ones it may use.</summary>
    public static IReadOnlyList<string> PlaceholdersOf(TemplateKind kind) => kind switch
    {
        TemplateKind.Pointwise => ["question", "answer"],
        TemplateKind.Pairwise => ["question", "answer_a", "answer_b"],
        _ => ["question", "attempt"],
    };

    /// <summary>
    /// The text with each {name} replaced by its value, in one pass: braces inside the inserted values (a question
    /// that contains "{answer}") are left as they are.
    /// </summary>
    /// <exception cref="SparkException">A placeholder of the template has no value.</exception>
    public string Render(IReadOnlyDictionary<string, string> values)
    {
        var text = new StringBuilder(Text.Length + 256);
        int i = 0;
        while (i < Text.Length)
        {
            int open = Text.IndexOf('{', i);
            if (open < 0) { text.Append(Text, i, Text.Length - i); break; }
            int close = Text.IndexOf('}', open + 1);
            string? name = close < 0 ? null : Text[(open + 1)..close];
            if (name is null || !PlaceholdersOf(Kind).Contains(name))
            {
                text.Append(Text, i, open + 1 - i); // a literal brace (\boxed{} and the like)
                i = open + 1;
                continue;
            }
            if (!values.TryGetValue(name, out string? value)) throw new SparkException($"{Kind} template: no value for {{{name}}}");
            text.Append(Text, i, open - i).Append(value);
            i = close + 1;
        }
        return text.ToString();
    }
}

/// <summary>
/// The paraphrased instruction wordings SPARK draws from at random per recycled item: pointwise (Yes/No and A/B
/// variants), pairwise and reflection (full attempt and answer-only) templates, each asking for the verdict or answer
/// inside <c>\boxed{}</c>. They are data: <see cref="BuiltIn"/> ships our own wording (templates/spark/*.json), and
/// <see cref="Load"/> reads a folder with the same three files to replace them.
/// </summary>
public sealed class TemplatePool
{
    /// <summary>The three files of a pool folder.</summary>
    public static IReadOnlyList<string> FileNames { get; } = ["pointwise.json", "pairwise.json", "reflection.json"];

    private TemplatePool(IReadOnlyList<PromptTemplate> pointwise, IReadOnlyList<PromptTemplate> pairwise, IReadOnlyList<PromptTemplate> reflection) =>
        (Pointwise, Pairwise, Reflection) = (pointwise, pairwise, reflection);

    /// <summary>Pointwise judge templates.</summary>
    public IReadOnlyList<PromptTemplate> Pointwise { get; }
    /// <summary>Pairwise judge templates.</summary>
    public IReadOnlyList<PromptTemplate> Pairwise { get; }
    /// <summary>Reflection templates.</summary>
    public IReadOnlyList<PromptTemplate> Reflection { get; }

    /// <summary>Our own template pools, embedded in the library (templates/spark).</summary>
    public static TemplatePool BuiltIn { get; } = Embedded("spark");

    /// <summary>
    /// Short wordings for tiny models with small contexts (templates/spark-terse): what <c>spark demo</c>'s byte-level
    /// models with 64 positions are taught and judged with.
    /// </summary>
    public static TemplatePool Terse { get; } = Embedded("spark-terse");

    /// <summary>A pool by name: "builtin", "terse", or a folder holding the three files.</summary>
    public static TemplatePool Resolve(string nameOrDirectory) => nameOrDirectory switch
    {
        "builtin" => BuiltIn,
        "terse" => Terse,
        _ when Directory.Exists(nameOrDirectory) => Load(nameOrDirectory),
        _ => throw new SparkException($"templates '{nameOrDirectory}': neither a built-in pool (builtin, terse) nor a folder"),
    };

    private static TemplatePool Embedded(string folder) => Parse(name =>
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream($"templates/{folder}/{name}")
            ?? throw new InvalidOperationException($"embedded template file {folder}/{name} is missing");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return (reader.ReadToEnd(), $"(built-in) templates/{folder}/{name}");
    });

    /// <summary>Reads pointwise.json, pairwise.json and reflection.json from <paramref name="directory"/>.</summary>
    /// <exception cref="SparkException">A file is missing or unreadable, or a template is malformed (the message names the file and template).</exception>
    public static TemplatePool Load(string directory) => Parse(name =>
    {
        string path = Path.Combine(directory, name);
        try { return (File.ReadAllText(path), path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new SparkException($"{path}: cannot read: {e.Message}", e); }
    });

    private static TemplatePool Parse(Func<string, (string Text, string Source)> read)
    {
        var pools = new List<PromptTemplate>[3];
        for (int k = 0; k < 3; k++)
        {
            var (json, source) = read(FileNames[k]);
            pools[k] = ParseFile(json, source, (TemplateKind)k);
        }
        return new TemplatePool(pools[0], pools[1], pools[2]);
    }

    private static List<PromptTemplate> ParseFile(string json, string source, TemplateKind kind)
    {
        JsonElement root;
        try { root = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip }).RootElement; }
        catch (JsonException e) { throw new SparkException($"{source}: not valid JSON ({e.Message})"); }
        string expectedKind = kind.ToString().ToLowerInvariant();
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("kind", out var k) || k.ValueKind != JsonValueKind.String || k.GetString() != expectedKind)
            throw new SparkException($"{source}: expected an object with \"kind\": \"{expectedKind}\"");
        if (!root.TryGetProperty("templates", out var list) || list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0)
            throw new SparkException($"{source}: \"templates\" must be a non-empty array");
        var templates = new List<PromptTemplate>();
        int index = 0;
        foreach (var item in list.EnumerateArray())
        {
            string where = $"{source}: template {index++}";
            if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("style", out var s) || s.ValueKind != JsonValueKind.String
                || !item.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String)
                throw new SparkException($"{where}: expected {{\"style\": ..., \"text\": ...}}");
            var style = ParseStyle(s.GetString()!, kind, where);
            string text = t.GetString()!;
            foreach (string name in PromptTemplate.PlaceholdersOf(kind))
                if (CountOf(text, "{" + name + "}") != 1) throw new SparkException($"{where}: must use {{{name}}} exactly once");
            if (!text.Contains(@"\boxed", StringComparison.Ordinal)) throw new SparkException($"{where}: must ask for the answer inside \\boxed{{}}");
            templates.Add(new PromptTemplate(kind, style, text));
        }
        // every style a recycled item may draw must be present
        TemplateStyle[] needed = kind switch
        {
            TemplateKind.Pointwise => [],
            TemplateKind.Pairwise => [TemplateStyle.AB],
            _ => [TemplateStyle.Full, TemplateStyle.AnswerOnly],
        };
        foreach (var style in needed)
            if (!templates.Any(x => x.Style == style)) throw new SparkException($"{source}: no template of style {StyleName(style)}");
        return templates;
    }

    private static TemplateStyle ParseStyle(string name, TemplateKind kind, string where)
    {
        TemplateStyle[] allowed = kind switch
        {
            TemplateKind.Pointwise => [TemplateStyle.YesNo, TemplateStyle.AB],
            TemplateKind.Pairwise => [TemplateStyle.AB],
            _ => [TemplateStyle.Full, TemplateStyle.AnswerOnly],
        };
        foreach (var style in allowed)
            if (StyleName(style) == name) return style;
        throw new SparkException($"{where}: style \"{name}\" is not one of {string.Join(", ", allowed.Select(x => $"\"{StyleName(x)}\""))}");
    }

    /// <summary>The style's name in template files: yes_no, a_b, full, answer_only.</summary>
    public static string StyleName(TemplateStyle style) => style switch
    {
        TemplateStyle.YesNo => "yes_no",
        TemplateStyle.AB => "a_b",
        TemplateStyle.Full => "full",
        _ => "answer_only",
    };

    private static int CountOf(string text, string part)
    {
        int count = 0;
        for (int i = text.IndexOf(part, StringComparison.Ordinal); i >= 0; i = text.IndexOf(part, i + part.Length, StringComparison.Ordinal)) count++;
        return count;
    }
}
