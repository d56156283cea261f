using System.Text;

namespace Spark.Native.Text;

/// <summary>A decoder step of the Hugging Face chain: token strings in, token strings out.</summary>
internal abstract class Decoder
{
    public abstract List<string> Decode(List<string> tokens);
}

/// <summary>ByteLevel: chars back to bytes, all tokens joined, UTF-8 decoded lossily.</summary>
internal sealed class ByteLevelDecoder : Decoder
{
    public override List<string> Decode(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (var t in tokens) ByteLevelMap.AppendBytes(t, bytes);
        return [Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes))];
    }
}

/// <summary>Metaspace: the replacement char becomes a space; in the first token it is dropped unless prepend_scheme is
/// "never".</summary>
internal sealed class MetaspaceDecoder(char replacement, PrependScheme scheme) : Decoder
{
    public override List<string> Decode(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            var sb = new StringBuilder(tokens[i].Length);
            foreach (char c in tokens[i])
            {
                if (c != replacement) sb.Append(c);
                else if (i != 0 || scheme == PrependScheme.Never) sb.Append(' ');
            }
            result.Add(sb.ToString());
        }
        return result;
    }
}

/// <summary>Replace in every token.</summary>
internal sealed class ReplaceDecoder(string? literal, UnicodeRegex? regex, string content) : Decoder
{
    public override List<string> Decode(List<string> tokens) =>
        tokens.ConvertAll(t => ReplaceNormalizer.Replace(t, literal, regex, content));
}

/// <summary>ByteFallback: runs of <c>&lt;0xNN&gt;</c> tokens become their UTF-8 text, or one U+FFFD per byte when
/// the run is not valid UTF-8.</summary>
internal sealed class ByteFallbackDecoder : Decoder
{
    private static readonly UTF8Encoding Strict = new(false, true);

    public override List<string> Decode(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var pending = new List<byte>();
        foreach (var t in tokens)
        {
            if (TryParseByte(t, out byte b))
            {
                pending.Add(b);
                continue;
            }
            Flush(pending, result);
            result.Add(t);
        }
        Flush(pending, result);
        return result;
    }

    internal static bool TryParseByte(string t, out byte value)
    {
        value = 0;
        return t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>'
            && byte.TryParse(t.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out value);
    }

    private static void Flush(List<byte> pending, List<string> result)
    {
        if (pending.Count == 0) return;
        try { result.Add(Strict.GetString(pending.ToArray())); }
        catch (DecoderFallbackException)
        {
            for (int i = 0; i < pending.Count; i++) result.Add("\uFFFD");
        }
        pending.Clear();
    }
}

/// <summary>Fuse: joins all tokens into one.</summary>
internal sealed class FuseDecoder : Decoder
{
    public override List<string> Decode(List<string> tokens) => [string.Concat(tokens)];
}

/// <summary>Strip: removes up to <c>start</c> leading and <c>stop</c> trailing <c>content</c> chars of every token.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : Decoder
{
    public override List<string> Decode(List<string> tokens) => tokens.ConvertAll(t =>
    {
        int s = 0;
        while (s < start && s < t.Length && t[s] == content) s++;
        int e = t.Length;
        for (int i = 0; i < stop && e > s && t[e - 1] == content; i++) e--;
        return t[s..e];
    });
}

/// <summary>Applies decoders in order.</summary>
internal sealed class SequenceDecoder(Decoder[] items) : Decoder
{
    public override List<string> Decode(List<string> tokens)
    {
        foreach (var d in items) tokens = d.Decode(tokens);
        return tokens;
    }
}

/// <summary>The post-processor for a single sequence: ids before and after the encoded text.</summary>
internal sealed class TemplatePostProcessor(int[] prefix, int[] suffix)
{
    public int[] Prefix { get; } = prefix;
    public int[] Suffix { get; } = suffix;

    public int[] Apply(List<int> ids)
    {
        var result = new int[Prefix.Length + ids.Count + Suffix.Length];
        Prefix.CopyTo(result, 0);
        ids.CopyTo(result, Prefix.Length);
        Suffix.CopyTo(result, Prefix.Length + ids.Count);
        return result;
    }
}
