using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spark.Native.Text;
using Spark.Native.Text.Templates;

namespace Spark.Native.Training;

/// <summary>Where the text of an SFT example comes from in each JSONL line.</summary>
public abstract record SftFields
{
    private SftFields() { }

    /// <summary>A prompt string and a completion string; only the completion is learned.</summary>
    public sealed record PromptCompletion(string Prompt = "prompt", string Completion = "completion") : SftFields;

    /// <summary>A list of chat messages; only assistant turns are learned.</summary>
    public sealed record Messages(string Field = "messages") : SftFields;
}

/// <summary>What to do with an example longer than the maximum length.</summary>
public enum OverlongExamples
{
    /// <summary>Keep its first max-length tokens.</summary>
    Truncate,
    /// <summary>Leave it out.</summary>
    Drop,
}

/// <summary>One tokenized example: ids [T] and which of them are learned (targets of the previous position).</summary>
public sealed record SftExample(int[] Ids, bool[] Learned)
{
    /// <summary>Next-token targets [T]: ids[t+1] where that token is learned, else −1.</summary>
    public int[] Targets()
    {
        var targets = new int[Ids.Length];
        for (int t = 0; t < Ids.Length; t++) targets[t] = t + 1 < Ids.Length && Learned[t + 1] ? Ids[t + 1] : -1;
        return targets;
    }
}

/// <summary>
/// A supervised fine-tuning set read from JSONL: rendered with the chat template when the tokenizer has one
/// (prompt as a user turn, completion as the assistant turn), else prompt + completion + EOS; only completion tokens
/// are learned (loss masking).
/// </summary>
public sealed class SftDataset
{
    private SftDataset(List<SftExample> examples, int skippedLines, int truncated, int dropped)
    {
        Examples = examples;
        SkippedLines = skippedLines;
        Truncated = truncated;
        Dropped = dropped;
    }

    /// <summary>The examples, in file order.</summary>
    public IReadOnlyList<SftExample> Examples { get; }
    /// <summary>Lines skipped as unreadable (with <see cref="BadLines.Skip"/>).</summary>
    public int SkippedLines { get; }
    /// <summary>Examples cut to the maximum length.</summary>
    public int Truncated { get; }
    /// <summary>Examples left out for length.</summary>
    public int Dropped { get; }

    /// <summary>Reads and tokenizes a JSONL file. Errors name the file and line.</summary>
    public static SftDataset Load(string path, Tokenizer tokenizer, ChatTemplate? template, SftFields fields, int maxLength,
        OverlongExamples overlong = OverlongExamples.Truncate, BadLines badLines = BadLines.Fail)
    {
        if (maxLength < 2) throw new SparkException($"max length {maxLength} is too short; an example needs at least 2 tokens");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new SparkException($"{path}: cannot read: {e.Message}", e); }
        var examples = new List<SftExample>();
        int skipped = 0, truncated = 0, dropped = 0, lineNumber = 0;
        ReadOnlySpan<byte> rest = bytes;
        while (!rest.IsEmpty)
        {
            lineNumber++;
            int end = rest.IndexOf((byte)'\n');
            var line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? [] : rest[(end + 1)..];
            if (line.Trim((byte)' ').Trim((byte)'\r').IsEmpty) continue;
            SftExample example;
            try
            {
                var obj = IO.JsonLine.ParseObject(line);
                example = fields switch
                {
                    SftFields.PromptCompletion pc => FromPromptCompletion(obj, pc, tokenizer, template),
                    SftFields.Messages m => FromMessages(obj, m, tokenizer, template),
                    _ => throw new InvalidOperationException(),
                };
            }
            catch (SparkException e)
            {
                if (badLines == BadLines.Fail) throw new SparkException($"{path}:{lineNumber}: {e.Message}", e);
                skipped++;
                continue;
            }
            if (example.Ids.Length > maxLength)
            {
                if (overlong == OverlongExamples.Drop) { dropped++; continue; }
                truncated++;
                example = new SftExample(example.Ids[..maxLength], example.Learned[..maxLength]);
                if (!example.Learned.Skip(1).Any(x => x)) { dropped++; continue; } // nothing left to learn
            }
            if (!example.Learned.Skip(1).Any(x => x))
            {
                if (badLines == BadLines.Fail) throw new SparkException($"{path}:{lineNumber}: nothing to learn (no completion token after the first position)");
                skipped++;
                continue;
            }
            examples.Add(example);
        }
        if (examples.Count == 0) throw new SparkException($"{path}: no usable examples ({skipped} bad lines, {dropped} dropped for length)");
        return new SftDataset(examples, skipped, truncated, dropped);
    }

    private static string Field(JsonObject obj, string name)
    {
        if (obj[name] is not JsonValue v || v.GetValueKind() != JsonValueKind.String)
            throw new SparkException($"field \"{name}\" is missing or not a string");
        return v.GetValue<string>();
    }

    private static SftExample FromPromptCompletion(JsonObject obj, SftFields.PromptCompletion f, Tokenizer tok, ChatTemplate? template)
    {
        string prompt = Field(obj, f.Prompt), completion = Field(obj, f.Completion);
        if (completion.Length == 0) throw new SparkException($"field \"{f.Completion}\" is empty: nothing to learn");
        if (template is null)
        {
            int[] p = tok.Encode(prompt, SpecialTokens.Add);
            int[] c = tok.Encode(completion, SpecialTokens.Omit);
            int[] eos = tok.EosTokenIds.Count > 0 ? [tok.EosTokenIds[0]] : [];
            return Join(p, [.. c, .. eos]);
        }
        var messages = new JsonArray(Message("user", prompt), Message("assistant", completion));
        return FromConversation(messages, tok, template);
    }

    private static SftExample FromMessages(JsonObject obj, SftFields.Messages f, Tokenizer tok, ChatTemplate? template)
    {
        if (template is null) throw new SparkException("messages need a chat template, and the tokenizer has none");
        if (obj[f.Field] is not JsonArray messages || messages.Count == 0) throw new SparkException($"field \"{f.Field}\" is missing or not a non-empty array");
        return FromConversation(messages, tok, template);
    }

    /// <summary>
    /// Tokens of the whole conversation; a token is learned when it lies between the rendering up to an assistant
    /// turn's opening (generation prompt) and the rendering that includes that turn.
    /// </summary>
    private static SftExample FromConversation(JsonArray messages, Tokenizer tok, ChatTemplate template)
    {
        int[] Render(int count, GenerationPrompt prompt)
        {
            var part = new JsonArray(messages.Take(count).Select(m => m?.DeepClone()).ToArray());
            return tok.Encode(template.Render(part, new ChatTemplateOptions { GenerationPrompt = prompt }), SpecialTokens.Omit);
        }
        int[] ids = Render(messages.Count, GenerationPrompt.Omit);
        var learned = new bool[ids.Length];
        bool any = false;
        for (int i = 0; i < messages.Count; i++)
        {
            if (messages[i] is not JsonObject message || message["role"] is not JsonValue role || role.GetValueKind() != JsonValueKind.String)
                throw new SparkException($"message {i} is not an object with a string \"role\"");
            if (role.GetValue<string>() != "assistant") continue;
            int[] before = Render(i, GenerationPrompt.Add), upTo = Render(i + 1, GenerationPrompt.Omit);
            if (!ids.AsSpan().StartsWith(upTo) || !upTo.AsSpan().StartsWith(before))
                throw new SparkException($"the chat template does not render message {i} as an extension of the ones before it; cannot mask the prompt");
            for (int t = before.Length; t < upTo.Length; t++) learned[t] = true;
            any |= upTo.Length > before.Length;
        }
        if (!any) throw new SparkException("no assistant message to learn");
        return new SftExample(ids, learned);
    }

    private static JsonObject Message(string role, string content) => new() { ["role"] = role, ["content"] = content };

    private static SftExample Join(int[] prompt, int[] completion)
    {
        var learned = new bool[prompt.Length + completion.Length];
        Array.Fill(learned, true, prompt.Length, completion.Length);
        return new SftExample([.. prompt, .. completion], learned);
    }
}
