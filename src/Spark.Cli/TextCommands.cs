using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spark.Native;
using Spark.Native.Text;

namespace Spark.Cli;

/// <summary><c>spark tokenize</c> and <c>spark decode</c>: JSONL in, JSONL out, in input order.</summary>
internal static class TextCommands
{
    private static readonly JsonSerializerOptions Compact = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Tokenize()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "Folder with tokenizer.json (or vocab.json + merges.txt), or a tokenizer.json", Required = true };
        var text = new Option<string?>("--text") { Description = "Text to encode; prints one JSON array of ids" };
        var input = new Option<string?>("--input") { Description = "JSONL file: each line a JSON string or {\"text\": ...}; prints one JSON array per line" };
        var noSpecial = new Option<bool>("--no-special-tokens") { Description = "Do not add BOS/EOS or other template tokens" };
        var command = new Command("tokenize", "Encode text into token ids exactly as Hugging Face tokenizers does") { tokenizer, text, input, noSpecial };
        command.SetAction(parse =>
        {
            var (textValue, inputPath) = ExactlyOne(parse.GetValue(text), parse.GetValue(input), "--text", "--input");
            var tok = Tokenizer.Load(parse.GetRequiredValue(tokenizer));
            var special = parse.GetValue(noSpecial) ? SpecialTokens.Omit : SpecialTokens.Add;
            if (textValue is not null)
            {
                Console.WriteLine(JsonSerializer.Serialize(tok.Encode(textValue, special)));
                return 0;
            }
            var texts = ReadJsonLines(inputPath!, (node, where) => node switch
            {
                JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
                JsonObject o when o["text"] is JsonValue t && t.GetValueKind() == JsonValueKind.String => t.GetValue<string>(),
                _ => throw new SparkException($"{where}: expected a JSON string or an object with a \"text\" string"),
            });
            using var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false)) { AutoFlush = false };
            foreach (var ids in tok.EncodeBatch(texts, special)) stdout.WriteLine(JsonSerializer.Serialize(ids));
            return 0;
        });
        return command;
    }

    public static Command Decode()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "Folder with tokenizer.json (or vocab.json + merges.txt), or a tokenizer.json", Required = true };
        var ids = new Option<string?>("--ids") { Description = "Comma-separated ids; prints one JSON string" };
        var input = new Option<string?>("--input") { Description = "JSONL file: each line a JSON array of ids; prints one JSON string per line" };
        var skip = new Option<bool>("--skip-special-tokens") { Description = "Leave special tokens out of the text" };
        var command = new Command("decode", "Decode token ids into text") { tokenizer, ids, input, skip };
        command.SetAction(parse =>
        {
            var (idsValue, inputPath) = ExactlyOne(parse.GetValue(ids), parse.GetValue(input), "--ids", "--input");
            var tok = Tokenizer.Load(parse.GetRequiredValue(tokenizer));
            var skipSpecial = parse.GetValue(skip) ? SkipSpecialTokens.Yes : SkipSpecialTokens.No;
            if (idsValue is not null)
            {
                Console.WriteLine(JsonSerializer.Serialize(DecodeChecked(tok, CliApp.ParseIds(idsValue, "--ids"), skipSpecial, "--ids"), Compact));
                return 0;
            }
            var sequences = ReadJsonLines(inputPath!, (node, where) =>
            {
                if (node is not JsonArray array) throw new SparkException($"{where}: expected a JSON array of token ids");
                return array.Select((n, i) => n is JsonValue v && v.TryGetValue(out int id) && id >= 0 ? id
                    : throw new SparkException($"{where}: element {i} is {n?.ToJsonString() ?? "null"}, not a token id")).ToArray();
            });
            using var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false));
            for (int i = 0; i < sequences.Count; i++)
                stdout.WriteLine(JsonSerializer.Serialize(DecodeChecked(tok, sequences[i], skipSpecial, $"{inputPath}:{i + 1}"), Compact));
            return 0;
        });
        return command;
    }

    private static string DecodeChecked(Tokenizer tok, int[] ids, SkipSpecialTokens skip, string where)
    {
        foreach (int id in ids)
            if (id >= tok.VocabSize) throw new SparkException($"{where}: token id {id} is outside the vocabulary [0, {tok.VocabSize})");
        return tok.Decode(ids, skip);
    }

    private static (string?, string?) ExactlyOne(string? a, string? b, string aName, string bName) =>
        (a is null) == (b is null) ? throw new SparkException($"give exactly one of {aName} and {bName}") : (a, b);

    /// <summary>Reads a JSONL file strictly (UTF-8 errors and JSON errors name the line); blank lines are skipped.</summary>
    public static List<T> ReadJsonLines<T>(string path, Func<JsonNode?, string, T> convert)
    {
        var strict = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
        var items = new List<T>();
        ReadOnlySpan<byte> rest = File.ReadAllBytes(path);
        for (int line = 1; !rest.IsEmpty; line++)
        {
            int end = rest.IndexOf((byte)'\n');
            var bytes = end < 0 ? rest : rest[..end];
            rest = end < 0 ? [] : rest[(end + 1)..];
            string text;
            try { text = strict.GetString(bytes); }
            catch (DecoderFallbackException e) { throw new SparkException($"{path}:{line}: invalid UTF-8 (byte 0x{e.BytesUnknown?.FirstOrDefault():X2})", e); }
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonNode? node;
            try { node = JsonNode.Parse(text); }
            catch (JsonException e) { throw new SparkException($"{path}:{line}: invalid JSON: {e.Message.Split('\n')[0]}", e); }
            items.Add(convert(node, $"{path}:{line}"));
        }
        return items;
    }
}
