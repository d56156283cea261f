using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Spark.Native.Rewards.Tasks;

/// <summary>How to read RL problems from a JSONL file.</summary>
public sealed record RlDataOptions
{
    /// <summary>Field holding the question (a string). A dotted path ("input.question") reaches into objects and arrays; a key that itself contains dots wins over the path.</summary>
    public string PromptField { get; init; } = "prompt";

    /// <summary>Field holding the reference answer: a string, or a number kept as its JSON text.</summary>
    public string AnswerField { get; init; } = "answer";

    /// <summary>Field holding a stable id (string or number); null ids the rows as "file:line".</summary>
    public string? IdField { get; init; }

    /// <summary>Fields copied into <see cref="RlProblem.Metadata"/> as JSON text (strings unquoted), keyed by the field name; each must be present.</summary>
    public IReadOnlyList<string> MetadataFields { get; init; } = [];

    /// <summary>System message for every problem, or null for none.</summary>
    public string? SystemPrompt { get; init; }

    /// <summary>Appended verbatim to every prompt; include your own separator, e.g. "\n\nPut your final answer in \\boxed{}.".</summary>
    public string PromptSuffix { get; init; } = "";

    /// <summary>The verifier name every problem carries (<see cref="VerifierNames"/>).</summary>
    public string Verifier { get; init; } = VerifierNames.Math;

    /// <summary>Whether a bad row stops the load (with file:line) or is skipped and counted.</summary>
    public BadLines BadLines { get; init; } = BadLines.Fail;
}

/// <summary>
/// RL problems read from JSONL: one JSON object per line, blank lines ignored, duplicates kept. A row is bad when it
/// is not UTF-8, not JSON, not an object, or a field is missing, empty or of the wrong type; with
/// <see cref="BadLines.Fail"/> the error reads "path:line: field 'answer' is missing".
/// </summary>
public sealed class RlDataset
{
    private RlDataset(string path, List<RlProblem> problems, int skippedLines)
    {
        Path = path;
        Problems = problems;
        SkippedLines = skippedLines;
    }

    /// <summary>The file read.</summary>
    public string Path { get; }

    /// <summary>The problems, in file order.</summary>
    public IReadOnlyList<RlProblem> Problems { get; }

    /// <summary>Bad rows skipped (with <see cref="BadLines.Skip"/>).</summary>
    public int SkippedLines { get; }

    /// <summary>Reads a JSONL file of problems.</summary>
    /// <exception cref="SparkException">The file cannot be read, has no rows, has no usable row, or (with <see cref="BadLines.Fail"/>) has a bad row.</exception>
    public static RlDataset Load(string path, RlDataOptions? options = null)
    {
        options ??= new RlDataOptions();
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new SparkException($"{path}: cannot read: {e.Message}", e); }
        string fileName = System.IO.Path.GetFileName(path);
        var problems = new List<RlProblem>();
        int skipped = 0, rows = 0, lineNumber = 0;
        ReadOnlySpan<byte> rest = bytes;
        if (rest.StartsWith("\uFEFF"u8)) rest = rest[3..];
        while (!rest.IsEmpty)
        {
            lineNumber++;
            int end = rest.IndexOf((byte)'\n');
            var line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? [] : rest[(end + 1)..];
            if (line.Trim(" \t\r"u8).IsEmpty) continue;
            rows++;
            try
            {
                var row = IO.JsonLine.ParseObject(line);
                problems.Add(FromRow(row, options, $"{path}:{lineNumber}", $"{fileName}:{lineNumber}"));
            }
            catch (SparkException e)
            {
                if (options.BadLines == BadLines.Fail) throw new SparkException($"{path}:{lineNumber}: {e.Message}", e);
                skipped++;
            }
        }
        if (rows == 0) throw new SparkException($"{path}: the file has no rows (it is empty or blank)");
        if (problems.Count == 0) throw new SparkException($"{path}: no usable problems ({skipped} bad rows of {rows})");
        return new RlDataset(path, problems, skipped);
    }

    private static RlProblem FromRow(JsonObject row, RlDataOptions o, string source, string defaultId)
    {
        string prompt = Text(row, o.PromptField, allowNumber: false);
        string answer = Text(row, o.AnswerField, allowNumber: true);
        string id = o.IdField is null ? defaultId : Text(row, o.IdField, allowNumber: true);
        var metadata = new Dictionary<string, string>(o.MetadataFields.Count);
        foreach (string field in o.MetadataFields)
        {
            var node = Find(row, field) ?? throw new SparkException($"field '{field}' is missing");
            metadata[field] = node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : node.ToJsonString();
        }
        return new RlProblem(id, prompt + o.PromptSuffix, answer)
        {
            SystemPrompt = o.SystemPrompt,
            Verifier = o.Verifier,
            Metadata = metadata,
            Source = source,
        };
    }

    /// <summary>A string field (or a number, as its JSON text), non-empty after trimming.</summary>
    private static string Text(JsonObject row, string field, bool allowNumber)
    {
        var node = Find(row, field);
        string text = node switch
        {
            null => throw new SparkException($"field '{field}' is missing"),
            JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
            JsonValue v when allowNumber && v.GetValueKind() == JsonValueKind.Number => v.ToJsonString(),
            _ => throw new SparkException($"field '{field}' must be a string{(allowNumber ? " or a number" : "")}, not {Kind(node)}"),
        };
        if (string.IsNullOrWhiteSpace(text)) throw new SparkException($"field '{field}' is empty");
        return text;
    }

    /// <summary>The node at a field name, or at a dotted path when no key has the whole name; JSON null counts as missing.</summary>
    private static JsonNode? Find(JsonObject row, string field)
    {
        if (row.TryGetPropertyValue(field, out var direct)) return direct;
        JsonNode? node = row;
        foreach (string part in field.Split('.'))
        {
            node = node switch
            {
                JsonObject obj => obj.TryGetPropertyValue(part, out var child) ? child : null,
                JsonArray arr when int.TryParse(part, System.Globalization.NumberStyles.None, null, out int i) && i < arr.Count => arr[i],
                _ => null,
            };
            if (node is null) return null;
        }
        return node;
    }

    private static string Kind(JsonNode node) => node switch
    {
        JsonObject => "an object",
        JsonArray => "an array",
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            _ => v.GetValueKind().ToString().ToLowerInvariant(),
        },
        _ => "unknown",
    };
}
