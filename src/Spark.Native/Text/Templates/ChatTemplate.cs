using System.Text.Json;
using System.Text.Json.Nodes;

namespace Spark.Native.Text.Templates;

/// <summary>Whether to end the rendered prompt with the header that opens the assistant's turn (add_generation_prompt).</summary>
public enum GenerationPrompt
{
    /// <summary>Render the conversation only (for training on complete conversations).</summary>
    Omit,
    /// <summary>Append the assistant header so the model continues as the assistant.</summary>
    Add,
}

/// <summary>
/// One chat message. The template sees it as a dict with "role" and "content" (None when null), plus "tool_calls",
/// "tool_call_id" and "name" when set, plus every field of <see cref="Extra"/>.
/// </summary>
/// <param name="Role">"system", "user", "assistant", "tool", ...</param>
/// <param name="Content">The text, or null (an assistant turn that only calls tools).</param>
public sealed record ChatMessage(string Role, string? Content)
{
    /// <summary>OpenAI-style tool calls: [{"type": "function", "function": {"name": ..., "arguments": {...}}}].</summary>
    public JsonArray? ToolCalls { get; init; }

    /// <summary>The id of the call a "tool" message answers.</summary>
    public string? ToolCallId { get; init; }

    /// <summary>The tool's name on a "tool" message.</summary>
    public string? Name { get; init; }

    /// <summary>Any other fields, visible to the template under their own names.</summary>
    public JsonObject? Extra { get; init; }

    internal Dictionary<string, object?> ToValue()
    {
        var d = new Dictionary<string, object?> { ["role"] = Role, ["content"] = Content };
        if (ToolCalls is not null) d["tool_calls"] = Values.FromJson(ToolCalls);
        if (ToolCallId is not null) d["tool_call_id"] = ToolCallId;
        if (Name is not null) d["name"] = Name;
        if (Extra is not null) foreach (var kv in Extra) d[kv.Key] = Values.FromJson(kv.Value);
        return d;
    }
}

/// <summary>What a render needs besides the messages.</summary>
public sealed record ChatTemplateOptions
{
    /// <summary>add_generation_prompt; transformers' default is to omit it.</summary>
    public GenerationPrompt GenerationPrompt { get; init; } = GenerationPrompt.Omit;

    /// <summary>Tool definitions (JSON schema objects) exposed as "tools"; null renders as None.</summary>
    public JsonArray? Tools { get; init; }

    /// <summary>
    /// More template variables (bos_token, eos_token, date_string, builtin_tools, ...): strings, numbers, bools,
    /// JsonNode, or lists/dictionaries of those. They override the tokenizer config's tokens.
    /// </summary>
    public IReadOnlyDictionary<string, object?>? ExtraVariables { get; init; }

    /// <summary>The clock strftime_now() reads; null means the current local time. Set it for reproducible prompts.</summary>
    public DateTimeOffset? Now { get; init; }
}

/// <summary>
/// A Hugging Face chat template (the Jinja subset real templates use), rendered as transformers renders it:
/// Jinja2 with trim_blocks and lstrip_blocks, tojson as json.dumps, raise_exception and strftime_now globals.
/// </summary>
public sealed class ChatTemplate
{
    private readonly TemplateSource _source;
    private readonly List<Node> _nodes;
    private readonly Dictionary<string, object?> _defaults;

    private ChatTemplate(TemplateSource source, List<Node> nodes, Dictionary<string, object?> defaults)
    {
        _source = source;
        _nodes = nodes;
        _defaults = defaults;
    }

    /// <summary>The template text (newlines normalized, one trailing newline dropped as Jinja2 does).</summary>
    public string Text => _source.Text;

    /// <summary>Parses a template; syntax errors and unsupported constructs throw <see cref="SparkException"/> with line:column.</summary>
    /// <param name="template">The Jinja source.</param>
    /// <param name="source">A name for error messages (a file path or "chat_template").</param>
    public static ChatTemplate Parse(string template, string source = "chat_template") =>
        Parse(template, source, []);

    private static ChatTemplate Parse(string template, string source, Dictionary<string, object?> defaults)
    {
        ArgumentNullException.ThrowIfNull(template);
        string text = template.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        if (text.EndsWith('\n')) text = text[..^1];
        var src = new TemplateSource(source, text);
        return new ChatTemplate(src, TemplateParser.Parse(src), defaults);
    }

    /// <summary>
    /// Reads chat_template from a tokenizer_config.json (a string, or a list of {name, template} where
    /// <paramref name="name"/> defaults to "default"), falling back to a chat_template.jinja file beside it.
    /// bos_token, eos_token, unk_token and pad_token (strings or {content} objects) become template variables.
    /// </summary>
    public static ChatTemplate FromTokenizerConfig(string tokenizerConfigPath, string? name = null)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(tokenizerConfigPath)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            throw new SparkException($"cannot read tokenizer config '{tokenizerConfigPath}': {e.Message}", e);
        }
        if (root is not JsonObject config) throw new SparkException($"tokenizer config '{tokenizerConfigPath}' is not a JSON object");

        var defaults = new Dictionary<string, object?>();
        foreach (string key in new[] { "bos_token", "eos_token", "unk_token", "pad_token" })
        {
            string? value = config[key] switch
            {
                JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
                JsonObject o when o["content"] is JsonValue c && c.GetValueKind() == JsonValueKind.String => c.GetValue<string>(),
                _ => null,
            };
            if (value is not null) defaults[key] = value;
        }

        string source = tokenizerConfigPath + ":chat_template";
        string? template;
        switch (config["chat_template"])
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                if (name is not null && name != "default") throw new SparkException($"tokenizer config '{tokenizerConfigPath}' has a single chat template, not one named '{name}'");
                template = v.GetValue<string>();
                break;
            case JsonArray list:
            {
                string want = name ?? "default";
                var named = list.OfType<JsonObject>().Select(o => (Name: o["name"]?.GetValue<string>(), Template: o["template"]?.GetValue<string>())).ToList();
                template = named.FirstOrDefault(t => t.Name == want).Template
                    ?? throw new SparkException($"tokenizer config '{tokenizerConfigPath}' has no chat template named '{want}' (has: {string.Join(", ", named.Select(t => t.Name))})");
                source = $"{tokenizerConfigPath}:chat_template[{want}]";
                break;
            }
            case null:
            {
                string jinja = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(tokenizerConfigPath)) ?? ".", "chat_template.jinja");
                if (!File.Exists(jinja)) throw new SparkException($"tokenizer config '{tokenizerConfigPath}' has no chat_template (and there is no chat_template.jinja beside it)");
                template = File.ReadAllText(jinja);
                source = jinja;
                break;
            }
            default:
                throw new SparkException($"tokenizer config '{tokenizerConfigPath}': chat_template must be a string or a list of {{name, template}}");
        }
        return Parse(template, source, defaults);
    }

    /// <summary>Renders the messages into the prompt text.</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, ChatTemplateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        return RenderValues(messages.Select(m => (object?)m.ToValue()).ToList(), options);
    }

    /// <summary>Renders messages given as JSON objects (every field is visible to the template).</summary>
    public string Render(JsonArray messages, ChatTemplateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        return RenderValues((List<object?>)Values.FromJson(messages)!, options);
    }

    private string RenderValues(List<object?> messages, ChatTemplateOptions? options)
    {
        options ??= new ChatTemplateOptions();
        var vars = new Dictionary<string, object?>(_defaults)
        {
            ["messages"] = messages,
            ["tools"] = options.Tools is null ? null : Values.FromJson(options.Tools),
            ["add_generation_prompt"] = options.GenerationPrompt == GenerationPrompt.Add,
        };
        if (options.ExtraVariables is not null)
            foreach (var kv in options.ExtraVariables) vars[kv.Key] = Values.FromClr(kv.Value);
        return new TemplateInterpreter(_source, options.Now).Render(_nodes, vars);
    }
}
