using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Spark.Native.IO;

/// <summary>One line of a JSONL data file, parsed strictly (the data loaders add file:line to the message).</summary>
internal static class JsonLine
{
    private static readonly UTF8Encoding Strict = new(false, throwOnInvalidBytes: true);

    /// <summary>The line as a JSON object; a <see cref="SparkException"/> saying what is wrong otherwise.</summary>
    public static JsonObject ParseObject(ReadOnlySpan<byte> line)
    {
        string text;
        try { text = Strict.GetString(line); }
        catch (DecoderFallbackException) { throw new SparkException("invalid UTF-8"); }
        JsonNode? node;
        try { node = JsonNode.Parse(text); }
        catch (JsonException e) { throw new SparkException($"invalid JSON: {e.Message.Split('\n')[0]}"); }
        return node as JsonObject ?? throw new SparkException("expected a JSON object");
    }
}
