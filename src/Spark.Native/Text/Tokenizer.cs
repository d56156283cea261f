using System.Collections.Frozen;

namespace Spark.Native.Text;

/// <summary>Whether <see cref="Tokenizer.Encode"/> runs the post-processor (e.g. adds BOS).</summary>
public enum SpecialTokens
{
    /// <summary>Add the special tokens of the post-processor template (Hugging Face <c>add_special_tokens=True</c>).</summary>
    Add,
    /// <summary>Encode the text only.</summary>
    Omit,
}

/// <summary>Whether decoding drops added tokens marked <c>special</c>.</summary>
public enum SkipSpecialTokens
{
    /// <summary>Decode every id.</summary>
    No,
    /// <summary>Drop special added tokens (Hugging Face <c>skip_special_tokens=True</c>).</summary>
    Yes,
}

/// <summary>
/// A Hugging Face tokenizer (tokenizer.json, or a GPT-2 style vocab.json + merges.txt pair) that encodes and decodes
/// exactly as the <c>tokenizers</c> library: added tokens are split out first, then normalizer → pre-tokenizer → BPE
/// model → post-processor; decoding runs the decoder chain. Thread-safe.
/// </summary>
public sealed class Tokenizer
{
    private readonly Normalizer? _normalizer;
    private readonly PreTokenizer? _preTokenizer;
    private readonly BpeModel _model;
    private readonly TemplatePostProcessor? _postProcessor;
    private readonly Decoder? _decoder;
    private readonly AddedTokenMatcher _rawMatcher;        // added tokens with normalized: false
    private readonly AddedTokenMatcher _normalizedMatcher; // added tokens with normalized: true (normalized content)
    private readonly string?[] _idToToken;
    private readonly bool[] _isSpecial;
    private readonly Dictionary<string, int> _addedByContent;

    internal Tokenizer(Normalizer? normalizer, PreTokenizer? preTokenizer, BpeModel model,
        TemplatePostProcessor? postProcessor, Decoder? decoder, IReadOnlyList<AddedToken> addedTokens)
    {
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _model = model;
        _postProcessor = postProcessor;
        _decoder = decoder;
        int size = 0;
        foreach (var id in model.Vocab.Values) size = Math.Max(size, id + 1);
        foreach (var t in addedTokens) size = Math.Max(size, t.Id + 1);
        _idToToken = new string?[size];
        _isSpecial = new bool[size];
        foreach (var (token, id) in model.Vocab) _idToToken[id] = token;
        _addedByContent = new Dictionary<string, int>(StringComparer.Ordinal);
        var special = new HashSet<int>();
        foreach (var t in addedTokens)
        {
            _idToToken[t.Id] = t.Content;
            _addedByContent[t.Content] = t.Id;
            if (t.Special) { _isSpecial[t.Id] = true; special.Add(t.Id); }
        }
        SpecialTokenIds = special.ToFrozenSet();
        _rawMatcher = new AddedTokenMatcher(addedTokens.Where(t => !t.Normalized).Select(t => (t.Content, t)));
        _normalizedMatcher = new AddedTokenMatcher(addedTokens.Where(t => t.Normalized)
            .Select(t => (normalizer?.Normalize(t.Content) ?? t.Content, t)));
        AddedTokens = addedTokens;
    }

    /// <summary>Loads a tokenizer from a folder (tokenizer.json, else vocab.json + merges.txt) or a tokenizer.json
    /// file. A folder's tokenizer_config.json, special_tokens_map.json, config.json and generation_config.json supply
    /// <see cref="BosTokenId"/>, <see cref="EosTokenIds"/> and <see cref="PadTokenId"/>.</summary>
    /// <exception cref="SparkException">The path is missing, or a file is malformed or uses an unsupported component.</exception>
    public static Tokenizer Load(string path) => TokenizerLoader.Load(path);

    /// <summary>Creates a tokenizer from the text of a tokenizer.json; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="SparkException">The JSON is malformed or uses an unsupported component.</exception>
    public static Tokenizer FromJson(string json, string source = "tokenizer.json") => TokenizerLoader.FromJson(json, source);

    /// <summary>Number of ids: the largest id of the vocabulary or the added tokens, plus one.</summary>
    public int VocabSize => _idToToken.Length;

    /// <summary>The id of the beginning-of-sequence token, when the tokenizer config names one.</summary>
    public int? BosTokenId { get; internal set; }

    /// <summary>Ids that end generation (generation_config.json, config.json, tokenizer config), without duplicates.</summary>
    public IReadOnlyList<int> EosTokenIds { get; internal set; } = [];

    /// <summary>The id of the padding token, when the configs name one.</summary>
    public int? PadTokenId { get; internal set; }

    /// <summary>Ids of the added tokens marked <c>special</c>.</summary>
    public IReadOnlySet<int> SpecialTokenIds { get; }

    internal IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>The id of a token string (added tokens first, then the vocabulary), or null.</summary>
    public int? TokenToId(string token) =>
        _addedByContent.TryGetValue(token, out int id) || _model.Vocab.TryGetValue(token, out id) ? id : null;

    /// <summary>The token string of an id, or null when the id is out of range or unused.</summary>
    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    /// <summary>Encodes text to ids.</summary>
    public int[] Encode(string text, SpecialTokens addSpecialTokens = SpecialTokens.Add)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        EncodeCore(text, ids);
        if (addSpecialTokens == SpecialTokens.Add && _postProcessor is not null) return _postProcessor.Apply(ids);
        return ids.ToArray();
    }

    /// <summary>Encodes many texts in parallel; result i belongs to text i.</summary>
    public int[][] EncodeBatch(IReadOnlyList<string> texts, SpecialTokens addSpecialTokens = SpecialTokens.Add)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var result = new int[texts.Count][];
        Parallel.For(0, texts.Count, i => result[i] = Encode(texts[i], addSpecialTokens));
        return result;
    }

    private void EncodeCore(string text, List<int> ids)
    {
        var parts = new List<(int Start, int End, AddedToken? Token)>();
        var normalizedParts = new List<(int Start, int End, AddedToken? Token)>();
        var pieces = new List<Piece>();
        if (_rawMatcher.IsEmpty) parts.Add((0, text.Length, null));
        else _rawMatcher.Split(text, parts);
        foreach (var (start, end, token) in parts)
        {
            if (token is not null) { ids.Add(token.Id); continue; }
            if (end == start) continue;
            string segment = start == 0 && end == text.Length ? text : text[start..end];
            string normalized = _normalizer is null ? segment : _normalizer.Normalize(segment);
            normalizedParts.Clear();
            if (_normalizedMatcher.IsEmpty) normalizedParts.Add((0, normalized.Length, null));
            else _normalizedMatcher.Split(normalized, normalizedParts);
            foreach (var (s, e, t) in normalizedParts)
            {
                if (t is not null) { ids.Add(t.Id); continue; }
                if (e == s) continue;
                var piece = new Piece(s == 0 && e == normalized.Length ? normalized : normalized[s..e], start == 0 && s == 0);
                if (_preTokenizer is null) { _model.Encode(piece.Text, ids); continue; }
                pieces.Clear();
                _preTokenizer.Split(piece, pieces);
                foreach (var p in pieces) _model.Encode(p.Text, ids);
            }
        }
    }

    /// <summary>Decodes ids to text through the decoder chain.</summary>
    /// <exception cref="SparkException">An id is outside the vocabulary.</exception>
    public string Decode(ReadOnlySpan<int> ids, SkipSpecialTokens skip = SkipSpecialTokens.No)
    {
        var tokens = new List<string>(ids.Length);
        foreach (int id in ids)
        {
            string? token = (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;
            if (token is null)
                throw new SparkException($"Tokenizer.Decode: id {id} is out of range for vocabulary size {VocabSize}");
            if (skip == SkipSpecialTokens.Yes && _isSpecial[id]) continue;
            tokens.Add(token);
        }
        if (_decoder is null) return string.Join(' ', tokens);
        return string.Concat(_decoder.Decode(tokens));
    }

    /// <summary>Creates a streaming decoder for generated ids.</summary>
    public IncrementalDecoder CreateIncrementalDecoder(SkipSpecialTokens skip = SkipSpecialTokens.No) => new(this, skip);
}
