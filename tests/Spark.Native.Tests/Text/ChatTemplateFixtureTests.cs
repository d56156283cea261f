using System.Text.Json.Nodes;
using Spark.Native.Text.Templates;

namespace Spark.Native.Tests.Text;

/// <summary>
/// Every case of Fixtures/chat-templates.json (real model templates rendered by @huggingface/jinja, the JS port of
/// transformers' Jinja2 setup) must render byte for byte; cases the reference rejects must throw the same message.
/// </summary>
public sealed class ChatTemplateFixtureTests
{
    private static readonly Lazy<JsonObject> Fixture = new(() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Text", "Fixtures", "chat-templates.json")))!.AsObject());

    public static TheoryData<string> TemplateNames() => new(Fixture.Value["templates"]!.AsObject().Select(kv => kv.Key));

    [Theory]
    [MemberData(nameof(TemplateNames))]
    public void RendersLikeReference(string templateName)
    {
        var template = ChatTemplate.Parse(Fixture.Value["templates"]![templateName]!.GetValue<string>(), templateName);
        var failures = new List<string>();
        int count = 0;
        foreach (var node in Fixture.Value["cases"]!.AsArray())
        {
            var c = node!.AsObject();
            if (c["template_name"]!.GetValue<string>() != templateName) continue;
            count++;
            string name = c["name"]!.GetValue<string>();
            var extra = c["extra_vars"]!.AsObject().ToDictionary(kv => kv.Key, kv => (object?)kv.Value?.DeepClone());
            var options = new ChatTemplateOptions
            {
                GenerationPrompt = c["add_generation_prompt"]!.GetValue<bool>() ? GenerationPrompt.Add : GenerationPrompt.Omit,
                Tools = c["tools"] is JsonArray tools ? (JsonArray)tools.DeepClone() : null,
                ExtraVariables = extra,
                Now = DateTimeOffset.Parse(c["now"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture),
            };
            var messages = (JsonArray)c["messages"]!.DeepClone();
            string? expected = c["expected"]?.GetValue<string>();
            string? error = c["error"]?.GetValue<string>();
            try
            {
                string actual = template.Render(messages, options);
                if (expected is null) failures.Add($"{name}: expected error '{error}', rendered {Abbrev(actual, 0)}");
                else if (actual != expected) failures.Add($"{name}: {FirstDifference(expected, actual)}");
            }
            catch (SparkException e)
            {
                if (error is null || e.Message != error) failures.Add($"{name}: threw '{e.Message}'" + (error is null ? "" : $", expected error '{error}'"));
            }
        }
        Assert.True(count > 0, $"no fixture cases for {templateName}");
        Assert.True(failures.Count == 0, $"{failures.Count}/{count} cases differ:\n" + string.Join("\n", failures));
    }

    internal static string FirstDifference(string expected, string actual)
    {
        int i = 0;
        while (i < expected.Length && i < actual.Length && expected[i] == actual[i]) i++;
        return $"first difference at char {i} (expected length {expected.Length}, actual {actual.Length}): expected {Abbrev(expected, i)}, actual {Abbrev(actual, i)}";
    }

    private static string Abbrev(string s, int at)
    {
        int from = Math.Max(0, at - 20);
        string piece = s.Substring(from, Math.Min(60, s.Length - from));
        return System.Text.Json.JsonSerializer.Serialize(piece);
    }
}
