using System.Text.Json;

namespace Spark.Native.Text;

/// <summary>Builds a <see cref="Tokenizer"/> from tokenizer.json or a GPT-2 vocab.json + merges.txt pair. Every
/// error names the file and the JSON path.</summary>
internal static class TokenizerLoader
{
    /// <summary>The Qwen2 split pattern (transformers' Qwen2Tokenizer uses it for the vocab.json + merges.txt pair).</summary>
    internal const string Qwen2Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public static Tokenizer Load(string path)
    {
        if (File.Exists(path)) return FromJson(ReadBytes(path), path);
        if (!Directory.Exists(path)) throw new SparkException($"Tokenizer.Load: {path} is neither a tokenizer.json file nor a folder");
        string json = Path.Combine(path, "tokenizer.json");
        Tokenizer tokenizer;
        if (File.Exists(json)) tokenizer = FromJson(ReadBytes(json), json);
        else if (File.Exists(Path.Combine(path, "vocab.json")) && File.Exists(Path.Combine(path, "merges.txt")))
            tokenizer = LoadGpt2Pair(path);
        else throw new SparkException($"Tokenizer.Load: {path} has no tokenizer.json and no vocab.json + merges.txt pair");
        ApplySpecialIds(tokenizer, path);
        return tokenizer;
    }

    private static string ReadText(string path)
    {
        try { return File.ReadAllText(path); }
        catch (IOException e) { throw new SparkException($"{path}: cannot read ({e.Message})", e); }
    }

    private static byte[] ReadBytes(string path)
    {
        try { return File.ReadAllBytes(path); }
        catch (IOException e) { throw new SparkException($"{path}: cannot read ({e.Message})", e); }
    }

    private static JsonDocument Parse(string json, string source) => Parse(System.Text.Encoding.UTF8.GetBytes(json), source);

    private static JsonDocument Parse(ReadOnlyMemory<byte> utf8, string source)
    {
        if (utf8.Span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) utf8 = utf8[3..];
        try { return JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = 256 }); }
        catch (JsonException e)
        {
            throw new SparkException($"{source}: invalid JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}", e);
        }
    }

    public static Tokenizer FromJson(string json, string source) => FromJson(System.Text.Encoding.UTF8.GetBytes(json), source);

    /// <summary>Reads tokenizer.json from UTF-8 bytes (no transcoding of the 10+ MB files through UTF-16).</summary>
    public static Tokenizer FromJson(byte[] json, string source)
    {
        using var doc = Parse(json, source);
        var root = new Node(doc.RootElement, "", source);
        root.RequireKind(JsonValueKind.Object, "an object");
        var model = root.Get("model") ?? throw root.Error("model", "is missing");
        model.RequireKind(JsonValueKind.Object, "an object");
        string? type = model.Get("type")?.String();
        if (type is not null && type != "BPE") throw model.Child("type").Unsupported(type);

        var vocab = ReadVocab(model.Get("vocab") ?? throw model.Error("vocab", "is missing"));
        var mergesNode = model.Get("merges") ?? throw model.Error("merges", "is missing");
        mergesNode.RequireKind(JsonValueKind.Array, "an array");
        var pairs = new List<(string A, string B)>(mergesNode.El.GetArrayLength());
        int index = 0;
        foreach (var item in mergesNode.El.EnumerateArray())
            pairs.Add(ParseMerge(item, mergesNode, index++, vocab));
        var added = ReadAddedTokens(root.Get("added_tokens"));
        var bpe = BuildModel(model, vocab, pairs);
        var normalizer = root.Get("normalizer") is { } n && n.El.ValueKind != JsonValueKind.Null ? BuildNormalizer(n) : null;
        var preTokenizer = root.Get("pre_tokenizer") is { } p && p.El.ValueKind != JsonValueKind.Null ? BuildPreTokenizer(p) : null;
        var post = root.Get("post_processor") is { } pp && pp.El.ValueKind != JsonValueKind.Null ? BuildPostProcessor(pp) : null;
        var decoder = root.Get("decoder") is { } d && d.El.ValueKind != JsonValueKind.Null ? BuildDecoder(d) : null;
        return new Tokenizer(normalizer, preTokenizer, bpe, post, decoder, added);
    }

    private static Dictionary<string, int> ReadVocab(Node vocabNode)
    {
        vocabNode.RequireKind(JsonValueKind.Object, "an object");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var prop in vocabNode.El.EnumerateObject())
        {
            if (prop.Value.ValueKind != JsonValueKind.Number || !prop.Value.TryGetInt32(out int id) || id < 0)
                throw new SparkException($"{vocabNode.Source}: {vocabNode.Path}[\"{prop.Name}\"] must be a non-negative integer id");
            vocab[prop.Name] = id;
        }
        return vocab;
    }

    /// <summary>Splits a legacy "a b" merge at its space. Tokens may contain spaces themselves (Llama-2 has " " and
    /// "  "); then the split is the first one whose halves and their concatenation are all in the vocabulary.</summary>
    internal static (string, string)? SplitMerge(string s, Dictionary<string, int> vocab)
    {
        int space = s.IndexOf(' ', 1 < s.Length ? 1 : 0);
        if (space <= 0 || space == s.Length - 1) return null;
        if (s.IndexOf(' ', space + 1) < 0) return (s[..space], s[(space + 1)..]);
        for (int p = space; p > 0 && p < s.Length - 1; p = s.IndexOf(' ', p + 1))
        {
            string a = s[..p], b = s[(p + 1)..];
            if (vocab.ContainsKey(a) && vocab.ContainsKey(b) && vocab.ContainsKey(a + b)) return (a, b);
        }
        return (s[..space], s[(space + 1)..]);
    }

    private static (string, string) ParseMerge(JsonElement el, Node merges, int index, Dictionary<string, int> vocab)
    {
        if (el.ValueKind == JsonValueKind.String)
        {
            string s = el.GetString()!;
            return SplitMerge(s, vocab) ?? throw new SparkException($"{merges.Source}: {merges.Path}[{index}] must be \"a b\" or [\"a\", \"b\"], got \"{s}\"");
        }
        if (el.ValueKind == JsonValueKind.Array && el.GetArrayLength() == 2
            && el[0].ValueKind == JsonValueKind.String && el[1].ValueKind == JsonValueKind.String)
            return (el[0].GetString()!, el[1].GetString()!);
        throw new SparkException($"{merges.Source}: {merges.Path}[{index}] must be \"a b\" or [\"a\", \"b\"]");
    }

    /// <summary>Builds the BPE model; merges refer to vocabulary tokens, rank = index (a repeated pair keeps the last
    /// rank, as the reference's map does).</summary>
    internal static BpeModel BuildModel(Node? model, Dictionary<string, int> vocab, List<(string A, string B)> pairs,
        string mergesSource = "model.merges")
    {
        if (model?.Get("dropout") is { } dropout && dropout.El.ValueKind != JsonValueKind.Null
            && (dropout.El.ValueKind != JsonValueKind.Number || dropout.El.GetDouble() != 0))
            throw dropout.Error(null, $"{dropout.El.GetRawText()} is not supported (BPE dropout must be null or 0)");
        string? prefix = model?.Get("continuing_subword_prefix")?.StringOrNull();
        string? suffix = model?.Get("end_of_word_suffix")?.StringOrNull();
        string? unk = model?.Get("unk_token")?.StringOrNull();
        int unkId = -1;
        if (unk is not null && !vocab.TryGetValue(unk, out unkId))
            throw model!.Error("unk_token", $"\"{unk}\" is not in model.vocab");
        string source = model?.Source ?? mergesSource;
        var merges = new Dictionary<long, BpeModel.Merge>(pairs.Count, BpeModel.PairComparer.Instance);
        int prefixLen = string.IsNullOrEmpty(prefix) ? 0 : prefix.Length;
        for (int rank = 0; rank < pairs.Count; rank++)
        {
            var (a, b) = pairs[rank];
            string where = model is null ? $"{mergesSource} line {rank + 1}" : $"{source}: model.merges[{rank}]";
            if (!vocab.TryGetValue(a, out int ia)) throw new SparkException($"{where} refers to \"{a}\", which is not in the vocabulary");
            if (!vocab.TryGetValue(b, out int ib)) throw new SparkException($"{where} refers to \"{b}\", which is not in the vocabulary");
            if (b.Length < prefixLen) throw new SparkException($"{where}: \"{b}\" is shorter than continuing_subword_prefix");
            string merged = string.Concat(a, b.AsSpan(prefixLen));
            if (!vocab.TryGetValue(merged, out int id))
                throw new SparkException($"{where} makes \"{merged}\", which is not in the vocabulary");
            merges[BpeModel.PairKey(ia, ib)] = new BpeModel.Merge(rank, id);
        }
        bool fuseUnk = model?.Get("fuse_unk")?.Bool() ?? false;
        bool byteFallback = model?.Get("byte_fallback")?.Bool() ?? false;
        bool ignoreMerges = model?.Get("ignore_merges")?.Bool() ?? false;
        return new BpeModel(vocab, merges, unkId, fuseUnk, byteFallback, ignoreMerges, prefix, suffix);
    }

    private static List<AddedToken> ReadAddedTokens(Node? node)
    {
        var result = new List<AddedToken>();
        if (node is null || node.El.ValueKind == JsonValueKind.Null) return result;
        node.RequireKind(JsonValueKind.Array, "an array");
        int i = 0;
        foreach (var el in node.El.EnumerateArray())
        {
            var t = new Node(el, $"{node.Path}[{i++}]", node.Source);
            t.RequireKind(JsonValueKind.Object, "an object");
            result.Add(ReadAddedToken(t, t.Get("id")?.Int() ?? throw t.Error("id", "is missing")));
        }
        return result;
    }

    private static AddedToken ReadAddedToken(Node t, int id)
    {
        string content = t.Get("content")?.String() ?? throw t.Error("content", "is missing");
        bool special = t.Get("special")?.Bool() ?? false;
        return new AddedToken(id, content, t.Get("single_word")?.Bool() ?? false, t.Get("lstrip")?.Bool() ?? false,
            t.Get("rstrip")?.Bool() ?? false, t.Get("normalized")?.Bool() ?? !special, special);
    }

    private static string TypeOf(Node node)
    {
        node.RequireKind(JsonValueKind.Object, "an object");
        return node.Get("type")?.String() ?? throw node.Error("type", "is missing");
    }

    private static Normalizer BuildNormalizer(Node node)
    {
        string type = TypeOf(node);
        return type switch
        {
            "NFC" => new UnicodeNormalizer(NormalizationKind.NFC),
            "NFD" => new UnicodeNormalizer(NormalizationKind.NFD),
            "NFKC" => new UnicodeNormalizer(NormalizationKind.NFKC),
            "NFKD" => new UnicodeNormalizer(NormalizationKind.NFKD),
            "Lowercase" => new LowercaseNormalizer(),
            "Prepend" => new PrependNormalizer(node.Req("prepend").String()),
            "Replace" => ReadReplace(node, (lit, re, content) => new ReplaceNormalizer(lit, re, content)),
            "Sequence" => new SequenceNormalizer(node.Req("normalizers").Items().Select(BuildNormalizer).ToArray()),
            _ => throw node.Child("type").Unsupported(type),
        };
    }

    private static T ReadReplace<T>(Node node, Func<string?, UnicodeRegex?, string, T> make)
    {
        var (literal, regex) = ReadPattern(node.Req("pattern"));
        return make(literal, regex, node.Req("content").String());
    }

    /// <summary>A pattern object: <c>{"String": s}</c> (literal) or <c>{"Regex": r}</c>.</summary>
    private static (string? Literal, UnicodeRegex? Regex) ReadPattern(Node node)
    {
        node.RequireKind(JsonValueKind.Object, "an object");
        if (node.Get("String") is { } s) return (s.String(), null);
        if (node.Get("Regex") is { } r) return (null, MakeRegex(r));
        throw node.Error(null, "must be {\"String\": ...} or {\"Regex\": ...}");
    }

    private static UnicodeRegex MakeRegex(Node node)
    {
        string pattern = node.String();
        try { return new UnicodeRegex(pattern); }
        catch (ArgumentException e) { throw node.Error(null, $"is not a supported regex ({e.Message.Split('\n')[0]})"); }
    }

    private static PreTokenizer BuildPreTokenizer(Node node)
    {
        string type = TypeOf(node);
        switch (type)
        {
            case "Split":
            {
                var (literal, regex) = ReadPattern(node.Req("pattern"));
                regex ??= new UnicodeRegex(System.Text.RegularExpressions.Regex.Escape(literal!));
                var behaviorNode = node.Req("behavior");
                string b = behaviorNode.String();
                if (!Enum.TryParse<SplitBehavior>(b, out var behavior) || !Enum.IsDefined(behavior)) throw behaviorNode.Unsupported(b);
                return new SplitPreTokenizer(regex, behavior, node.Get("invert")?.Bool() ?? false);
            }
            case "ByteLevel":
                return new ByteLevelPreTokenizer(node.Get("add_prefix_space")?.Bool() ?? true, node.Get("use_regex")?.Bool() ?? true);
            case "Metaspace":
            {
                var (replacement, scheme) = ReadMetaspace(node);
                return new MetaspacePreTokenizer(replacement, scheme, node.Get("split")?.Bool() ?? true);
            }
            case "Digits": return new DigitsPreTokenizer(node.Get("individual_digits")?.Bool() ?? false);
            case "Whitespace": return new WhitespacePreTokenizer();
            case "WhitespaceSplit": return new WhitespaceSplitPreTokenizer();
            case "Sequence": return new SequencePreTokenizer(node.Req("pretokenizers").Items().Select(BuildPreTokenizer).ToArray());
            default: throw node.Child("type").Unsupported(type);
        }
    }

    private static (char, PrependScheme) ReadMetaspace(Node node)
    {
        var repNode = node.Req("replacement");
        string rep = repNode.String();
        if (rep.Length != 1) throw repNode.Error(null, $"must be one char, got \"{rep}\"");
        PrependScheme scheme = PrependScheme.Always;
        if (node.Get("prepend_scheme") is { } ps && ps.El.ValueKind != JsonValueKind.Null)
        {
            scheme = ps.String() switch
            {
                "always" => PrependScheme.Always,
                "first" => PrependScheme.First,
                "never" => PrependScheme.Never,
                var other => throw ps.Unsupported(other),
            };
        }
        else if (node.Get("add_prefix_space")?.Bool() == false) scheme = PrependScheme.Never;
        return (rep[0], scheme);
    }

    private static TemplatePostProcessor? BuildPostProcessor(Node node)
    {
        string type = TypeOf(node);
        switch (type)
        {
            case "ByteLevel": return null;
            case "Sequence":
            {
                var prefix = new List<int>();
                var suffix = new List<int>();
                foreach (var item in node.Req("processors").Items())
                {
                    if (BuildPostProcessor(item) is not { } p) continue;
                    prefix.InsertRange(0, p.Prefix);
                    suffix.AddRange(p.Suffix);
                }
                return prefix.Count + suffix.Count == 0 ? null : new TemplatePostProcessor([.. prefix], [.. suffix]);
            }
            case "TemplateProcessing":
            {
                var specials = node.Req("special_tokens");
                specials.RequireKind(JsonValueKind.Object, "an object");
                var prefix = new List<int>();
                var suffix = new List<int>();
                bool seenA = false;
                foreach (var item in node.Req("single").Items())
                {
                    item.RequireKind(JsonValueKind.Object, "an object");
                    if (item.Get("Sequence") is { } seq)
                    {
                        string which = seq.Req("id").String();
                        if (which != "A") throw seq.Child("id").Error(null, $"\"{which}\" is not supported in a single-sequence template");
                        seenA = true;
                    }
                    else if (item.Get("SpecialToken") is { } st)
                    {
                        var idNode = st.Req("id");
                        string name = idNode.String();
                        var entry = specials.Get(name) ?? throw idNode.Error(null, $"\"{name}\" is not in special_tokens");
                        (seenA ? suffix : prefix).AddRange(entry.Req("ids").Items().Select(i => i.Int()));
                    }
                    else throw item.Error(null, "must be {\"SpecialToken\": ...} or {\"Sequence\": ...}");
                }
                return new TemplatePostProcessor([.. prefix], [.. suffix]);
            }
            default: throw node.Child("type").Unsupported(type);
        }
    }

    private static Decoder BuildDecoder(Node node)
    {
        string type = TypeOf(node);
        switch (type)
        {
            case "ByteLevel": return new ByteLevelDecoder();
            case "Metaspace":
            {
                var (replacement, scheme) = ReadMetaspace(node);
                return new MetaspaceDecoder(replacement, scheme);
            }
            case "Replace": return ReadReplace<Decoder>(node, (lit, re, content) => new ReplaceDecoder(lit, re, content));
            case "ByteFallback": return new ByteFallbackDecoder();
            case "Fuse": return new FuseDecoder();
            case "Strip":
            {
                var c = node.Req("content");
                string content = c.String();
                if (content.Length != 1) throw c.Error(null, $"must be one char, got \"{content}\"");
                return new StripDecoder(content[0], node.Get("start")?.Int() ?? 0, node.Get("stop")?.Int() ?? 0);
            }
            case "Sequence": return new SequenceDecoder(node.Req("decoders").Items().Select(BuildDecoder).ToArray());
            default: throw node.Child("type").Unsupported(type);
        }
    }

    /// <summary>Loads a GPT-2 style vocab.json + merges.txt pair. A first line starting "#version" is a header; other
    /// lines starting with "#" are merges. transformers' Qwen2Tokenizer (named by tokenizer_config.json) adds NFC and
    /// the Qwen2 split pattern; otherwise the GPT-2 byte-level pattern is used.</summary>
    internal static Tokenizer LoadGpt2Pair(string folder)
    {
        string vocabPath = Path.Combine(folder, "vocab.json");
        string mergesPath = Path.Combine(folder, "merges.txt");
        Dictionary<string, int> vocab;
        using (var doc = Parse(ReadText(vocabPath), vocabPath))
            vocab = ReadVocab(new Node(doc.RootElement, "", vocabPath));
        var pairs = new List<(string, string)>();
        string[] lines = ReadText(mergesPath).Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].TrimEnd('\r');
            if (i == 0 && line.StartsWith("#version", StringComparison.Ordinal)) continue;
            if (line.Length == 0) continue;
            pairs.Add(SplitMerge(line, vocab)
                ?? throw new SparkException($"{mergesPath} line {i + 1}: a merge must be two tokens separated by a space"));
        }
        // Rank = position among merge lines.
        var bpe = BuildModel(null, vocab, pairs, mergesPath);

        var added = new List<AddedToken>();
        string configPath = Path.Combine(folder, "tokenizer_config.json");
        string? tokenizerClass = null;
        bool addPrefixSpace = false;
        if (File.Exists(configPath))
        {
            using var doc = Parse(ReadText(configPath), configPath);
            var root = new Node(doc.RootElement, "", configPath);
            tokenizerClass = root.Get("tokenizer_class")?.StringOrNull();
            addPrefixSpace = root.Get("add_prefix_space")?.Bool() ?? false;
            if (root.Get("added_tokens_decoder") is { } dec && dec.El.ValueKind == JsonValueKind.Object)
                foreach (var prop in dec.El.EnumerateObject())
                {
                    var t = dec.Child(prop.Name);
                    if (!int.TryParse(prop.Name, out int id) || id < 0) throw t.Error(null, "must be keyed by an integer id");
                    added.Add(ReadAddedToken(t, id));
                }
        }
        string addedPath = Path.Combine(folder, "added_tokens.json");
        if (added.Count == 0 && File.Exists(addedPath))
        {
            using var doc = Parse(ReadText(addedPath), addedPath);
            foreach (var prop in doc.RootElement.EnumerateObject())
                added.Add(new AddedToken(prop.Value.GetInt32(), prop.Name, false, false, false, false, false));
        }
        bool qwen = tokenizerClass is "Qwen2Tokenizer" or "Qwen2TokenizerFast";
        Normalizer? normalizer = qwen ? new UnicodeNormalizer(NormalizationKind.NFC) : null;
        PreTokenizer pre = qwen
            ? new SequencePreTokenizer([new SplitPreTokenizer(new UnicodeRegex(Qwen2Pattern), SplitBehavior.Isolated, false),
                new ByteLevelPreTokenizer(false, false)])
            : new ByteLevelPreTokenizer(addPrefixSpace, true);
        return new Tokenizer(normalizer, pre, bpe, null, new ByteLevelDecoder(), added);
    }

    private static void ApplySpecialIds(Tokenizer tokenizer, string folder)
    {
        JsonDocument? Open(string name)
        {
            string p = Path.Combine(folder, name);
            return File.Exists(p) ? Parse(ReadText(p), p) : null;
        }
        using var tc = Open("tokenizer_config.json");
        using var stm = Open("special_tokens_map.json");
        using var cfg = Open("config.json");
        using var gen = Open("generation_config.json");

        int? FromToken(JsonElement el) => el.ValueKind switch
        {
            JsonValueKind.String => tokenizer.TokenToId(el.GetString()!),
            JsonValueKind.Object when el.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String
                => tokenizer.TokenToId(c.GetString()!),
            _ => null,
        };
        // The tokenizer config decides when it has the key (even null); then special_tokens_map; then the model configs.
        (bool Found, int? Id) FromConfigs(string tokenKey)
        {
            foreach (var d in new[] { tc, stm })
                if (d is not null && d.RootElement.ValueKind == JsonValueKind.Object && d.RootElement.TryGetProperty(tokenKey, out var el))
                    return (true, FromToken(el));
            return (false, null);
        }
        List<int> Ids(JsonDocument? d, string key)
        {
            var list = new List<int>();
            if (d is null || d.RootElement.ValueKind != JsonValueKind.Object || !d.RootElement.TryGetProperty(key, out var el)) return list;
            if (el.ValueKind == JsonValueKind.Number && el.TryGetInt32(out int v)) list.Add(v);
            else if (el.ValueKind == JsonValueKind.Array)
                foreach (var x in el.EnumerateArray()) if (x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out int w)) list.Add(w);
            return list;
        }

        var bos = FromConfigs("bos_token");
        tokenizer.BosTokenId = bos.Found ? bos.Id : Ids(gen, "bos_token_id").Concat(Ids(cfg, "bos_token_id")).Select(i => (int?)i).FirstOrDefault();
        var pad = FromConfigs("pad_token");
        tokenizer.PadTokenId = pad.Found ? pad.Id : Ids(gen, "pad_token_id").Concat(Ids(cfg, "pad_token_id")).Select(i => (int?)i).FirstOrDefault();
        var eos = Ids(gen, "eos_token_id").Concat(Ids(cfg, "eos_token_id")).ToList();
        if (FromConfigs("eos_token").Id is int e) eos.Add(e);
        tokenizer.EosTokenIds = eos.Distinct().ToArray();
    }
}

/// <summary>A JSON element with its path, for errors that name the file and the JSON path.</summary>
internal sealed class Node(JsonElement el, string path, string source)
{
    public JsonElement El { get; } = el;
    public string Path { get; } = path;
    public string Source { get; } = source;

    private string ChildPath(string key) => Path.Length == 0 ? key : $"{Path}.{key}";

    public Node Child(string key) => new(El.ValueKind == JsonValueKind.Object && El.TryGetProperty(key, out var v) ? v : default, ChildPath(key), Source);

    public Node? Get(string key) =>
        El.ValueKind == JsonValueKind.Object && El.TryGetProperty(key, out var v) ? new Node(v, ChildPath(key), Source) : null;

    public Node Req(string key) => Get(key) ?? throw Error(key, "is missing");

    public SparkException Error(string? key, string what) =>
        new($"{Source}: {(key is null ? Path : ChildPath(key))} {what}");

    public SparkException Unsupported(string value) => new($"{Source}: {Path} \"{value}\" is not supported");

    public void RequireKind(JsonValueKind kind, string what)
    {
        if (El.ValueKind != kind) throw Error(null, $"must be {what}");
    }

    public string String()
    {
        RequireKind(JsonValueKind.String, "a string");
        return El.GetString()!;
    }

    public string? StringOrNull() => El.ValueKind == JsonValueKind.Null ? null : String();

    public bool Bool()
    {
        if (El.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) throw Error(null, "must be true or false");
        return El.GetBoolean();
    }

    public int Int()
    {
        if (El.ValueKind != JsonValueKind.Number || !El.TryGetInt32(out int v)) throw Error(null, "must be an integer");
        return v;
    }

    public IEnumerable<Node> Items()
    {
        RequireKind(JsonValueKind.Array, "an array");
        int i = 0;
        foreach (var item in El.EnumerateArray()) yield return new Node(item, $"{Path}[{i++}]", Source);
    }
}
