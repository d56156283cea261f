namespace Spark.Native.Text;

/// <summary>
/// Decodes a stream of ids into text deltas. The text of a new id is emitted only when the decoded text does not end
/// in U+FFFD, so a UTF-8 char split across byte tokens is held back until complete; decoding uses a window that
/// starts one emitted step back, so decoders that treat the first token specially (SentencePiece's leading space)
/// give the same text as one <see cref="Tokenizer.Decode"/> of all ids.
/// </summary>
public sealed class IncrementalDecoder
{
    private readonly Tokenizer _tokenizer;
    private readonly SkipSpecialTokens _skip;
    private readonly List<int> _ids = [];
    private int _prefixOffset;
    private int _readOffset;

    internal IncrementalDecoder(Tokenizer tokenizer, SkipSpecialTokens skip)
    {
        _tokenizer = tokenizer;
        _skip = skip;
    }

    /// <summary>Adds one id and returns the text it completes (possibly empty).</summary>
    /// <exception cref="SparkException">The id is outside the vocabulary.</exception>
    public string Append(int id)
    {
        _ids.Add(id);
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids);
        string prefix = _tokenizer.Decode(span[_prefixOffset.._readOffset], _skip);
        string full;
        try { full = _tokenizer.Decode(span[_prefixOffset..], _skip); }
        catch (SparkException) { _ids.RemoveAt(_ids.Count - 1); throw; }
        if (full.Length <= prefix.Length || full.EndsWith('\uFFFD') || !full.StartsWith(prefix, StringComparison.Ordinal))
            return "";
        _prefixOffset = _readOffset;
        _readOffset = _ids.Count;
        TrimHistory();
        return full[prefix.Length..];
    }

    /// <summary>Returns the text still held back (incomplete chars decode as U+FFFD) and resets the decoder.</summary>
    public string Flush()
    {
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids);
        string prefix = _tokenizer.Decode(span[_prefixOffset.._readOffset], _skip);
        string full = _tokenizer.Decode(span[_prefixOffset..], _skip);
        _ids.Clear();
        _prefixOffset = _readOffset = 0;
        return full.Length > prefix.Length && full.StartsWith(prefix, StringComparison.Ordinal) ? full[prefix.Length..] : "";
    }

    private void TrimHistory()
    {
        if (_prefixOffset < 64) return;
        _ids.RemoveRange(0, _prefixOffset);
        _readOffset -= _prefixOffset;
        _prefixOffset = 0;
    }
}
