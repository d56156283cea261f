using Spark.Native.Text;

namespace Spark.Native.Tests.Text;

/// <summary>
/// Small self-made tokenizer.json files (no ../shared needed) covering BPE merge order, byte_fallback, unk/fuse_unk,
/// ignore_merges, added-token options, every normalizer / pre-tokenizer / decoder kind, the post-processor and the
/// incremental decoder.
/// </summary>
public class TokenizerComponentTests
{
    internal static string Json(string vocab, string merges = "[]", string modelExtra = "", string normalizer = "null",
        string pre = "null", string post = "null", string decoder = "null", string added = "[]") =>
        $$"""
        {"version": "1.0", "added_tokens": {{added}}, "normalizer": {{normalizer}}, "pre_tokenizer": {{pre}},
         "post_processor": {{post}}, "decoder": {{decoder}},
         "model": {"type": "BPE", "dropout": null, "vocab": {{vocab}}, "merges": {{merges}}{{modelExtra}} } }
        """;

    /// <summary>A vocabulary with one token per char of <paramref name="chars"/> (ids in order), then the extras.</summary>
    internal static string Vocab(string chars, params string[] extra)
    {
        var tokens = chars.Select(c => c.ToString()).Concat(extra).ToList();
        return "{" + string.Join(", ", tokens.Select((t, i) => $"{TokenizerParityTests.Escape(t)}: {i}")) + "}";
    }

    private static Tokenizer Chars(string chars, string merges = "[]", string modelExtra = "", string normalizer = "null",
        string pre = "null", string decoder = "null", string added = "[]", params string[] extra) =>
        Tokenizer.FromJson(Json(Vocab(chars, extra), merges, modelExtra, normalizer, pre, "null", decoder, added));

    private static string Tokens(Tokenizer t, string text) =>
        string.Join("|", t.Encode(text, SpecialTokens.Omit).Select(id => t.IdToToken(id)));

    [Fact]
    public void Bpe_merges_lowest_rank_first_then_leftmost()
    {
        var bcFirst = Chars("abc", """["b c", "a b", "ab c"]""", extra: ["ab", "bc", "abc"]);
        Assert.Equal("a|bc", Tokens(bcFirst, "abc"));
        var abFirst = Chars("abc", """[["a", "b"], ["b", "c"], ["ab", "c"]]""", extra: ["ab", "bc", "abc"]);
        Assert.Equal("abc", Tokens(abFirst, "abc"));
        var aa = Chars("a", """["a a"]""", extra: ["aa"]);
        Assert.Equal("aa|aa|a", Tokens(aa, "aaaaa"));
    }

    [Fact]
    public void Ignore_merges_takes_a_word_in_the_vocab_whole()
    {
        Assert.Equal("ab|a", Tokens(Chars("ab", """["a b"]""", extra: ["ab", "aba"]), "aba"));
        Assert.Equal("aba", Tokens(Chars("ab", """["a b"]""", ", \"ignore_merges\": true", extra: ["ab", "aba"]), "aba"));
    }

    [Fact]
    public void Byte_fallback_unk_and_fuse_unk()
    {
        var bytes = Chars("a<", modelExtra: ", \"byte_fallback\": true, \"unk_token\": \"<unk>\"",
            decoder: """{"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]}""",
            extra: ["<unk>", "<0xC3>", "<0xA9>"]);
        Assert.Equal("a|<0xC3>|<0xA9>|<unk>", Tokens(bytes, "aéx"));
        Assert.Equal("aé", bytes.Decode(bytes.Encode("aé", SpecialTokens.Omit)));
        Assert.Equal("a\uFFFD", bytes.Decode([0, bytes.TokenToId("<0xC3>")!.Value])); // invalid UTF-8: one U+FFFD per byte

        var fused = Chars("a", modelExtra: ", \"unk_token\": \"<unk>\", \"fuse_unk\": true", extra: ["<unk>"]);
        Assert.Equal("a|<unk>|a", Tokens(fused, "axya"));
        var unfused = Chars("a", modelExtra: ", \"unk_token\": \"<unk>\", \"fuse_unk\": false", extra: ["<unk>"]);
        Assert.Equal("a|<unk>|<unk>|a", Tokens(unfused, "axya"));
        var noUnk = Chars("a");
        Assert.Equal("a|a", Tokens(noUnk, "axa")); // no unk token: unknown chars are dropped, as the reference does
    }

    [Fact]
    public void Continuing_subword_prefix_and_end_of_word_suffix()
    {
        var t = Tokenizer.FromJson(Json("""{"a": 0, "##b": 1, "a##b": 2, "ab": 3}""", """["a ##b"]""",
            ", \"continuing_subword_prefix\": \"##\""));
        Assert.Equal([3], t.Encode("ab", SpecialTokens.Omit));
        var s = Tokenizer.FromJson(Json("""{"a": 0, "b</w>": 1, "ab</w>": 2}""", """["a b</w>"]""", ", \"end_of_word_suffix\": \"</w>\""));
        Assert.Equal([2], s.Encode("ab", SpecialTokens.Omit));
    }

    private static string Added(string content, int id, bool lstrip = false, bool rstrip = false, bool singleWord = false,
        bool normalized = false, bool special = true) =>
        $$"""{"id": {{id}}, "content": "{{content}}", "single_word": {{(singleWord ? "true" : "false")}}, "lstrip": {{(lstrip ? "true" : "false")}}, "rstrip": {{(rstrip ? "true" : "false")}}, "normalized": {{(normalized ? "true" : "false")}}, "special": {{(special ? "true" : "false")}}}""";

    [Fact]
    public void Added_tokens_lstrip_rstrip_single_word_and_longest_match()
    {
        const string chars = "abcHI <>x";
        var plain = Chars(chars, added: $"[{Added("<x>", 9)}, {Added("<x>>", 10)}]", extra: ["<x>", "<x>>"]);
        Assert.Equal("a| |<x>>| |b", Tokens(plain, "a <x>> b")); // longest match
        Assert.Equal("<x>|a", Tokens(plain, "<x>a"));
        var strip = Chars(chars, added: $"[{Added("<x>", 9, lstrip: true, rstrip: true)}]", extra: ["<x>"]);
        Assert.Equal("a|<x>|b", Tokens(strip, "a  <x>  b"));
        var single = Chars(chars, added: $"[{Added("ab", 9, singleWord: true)}]", extra: ["ab"]);
        Assert.Equal("ab| |c", Tokens(single, "ab c"));
        Assert.Equal("a|b|c", Tokens(single, "abc"));
        Assert.Equal("c|a|b", Tokens(single, "cab"));
    }

    [Fact]
    public void Added_tokens_normalized_true_match_in_normalized_text()
    {
        const string lower = """{"type": "Lowercase"}""";
        var normalizedToken = Chars("hiHI ", normalizer: lower, added: $"[{Added("hi", 5, normalized: true)}]", extra: ["hi"]);
        Assert.Equal("hi| |hi", Tokens(normalizedToken, "HI hi"));
        var rawToken = Chars("hiHI ", normalizer: lower, added: $"[{Added("hi", 5)}]", extra: ["hi"]);
        Assert.Equal("h|i| |hi", Tokens(rawToken, "HI hi"));
        // Prepend("▁"): the token's normalized content is "▁hi", so it only matches after a space (Llama-2's </s>).
        const string sp = """{"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}""";
        var llamaLike = Chars("hio▁", normalizer: sp, added: $"[{Added("hi", 5, normalized: true)}]", extra: ["hi"]);
        Assert.Equal("▁|o|o|h|i", Tokens(llamaLike, "oohi"));
        Assert.Equal("▁|o|o|hi", Tokens(llamaLike, "oo hi"));
    }

    [Fact]
    public void Normalizers()
    {
        Assert.Equal("é", UnicodeNormalization.Normalize("e\u0301", NormalizationKind.NFC));
        Assert.Equal("e\u0301", UnicodeNormalization.Normalize("é", NormalizationKind.NFD));
        Assert.Equal("fi1", UnicodeNormalization.Normalize("ﬁ①", NormalizationKind.NFKC));
        Assert.Equal("\u1112\u1161\u11AB", UnicodeNormalization.Normalize("한", NormalizationKind.NFD));
        Assert.Equal("한", UnicodeNormalization.Normalize("\u1112\u1161\u11AB", NormalizationKind.NFC));
        Assert.Equal("a\u0323\u0307", UnicodeNormalization.Normalize("a\u0307\u0323", NormalizationKind.NFD)); // reordered by class
        Assert.Equal("ạ\u0307", UnicodeNormalization.Normalize("a\u0307\u0323", NormalizationKind.NFC));
        var t = Chars("éab_▁x", normalizer: """
            {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"}, {"type": "NFC"},
             {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": "_"},
             {"type": "Replace", "pattern": {"String": "x"}, "content": "b"}, {"type": "Prepend", "prepend": "▁"}]}
            """);
        Assert.Equal("▁|a|_|é|_|b", Tokens(t, "A \t E\u0301 x"));
    }

    private static List<string> Split(string json, string text)
    {
        var t = Chars("", pre: json);
        var pre = (PreTokenizer)typeof(Tokenizer).GetField("_preTokenizer", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(t)!;
        var output = new List<Piece>();
        pre.Split(new Piece(text, true), output);
        return output.Select(p => p.Text).ToList();
    }

    [Fact]
    public void Split_behaviors_and_invert()
    {
        string Behavior(string b, bool invert = false) =>
            $$"""{"type": "Split", "pattern": {"String": "-"}, "behavior": "{{b}}", "invert": {{(invert ? "true" : "false")}}}""";
        const string text = "the-final--countdown";
        Assert.Equal(["the", "final", "countdown"], Split(Behavior("Removed"), text));
        Assert.Equal(["the", "-", "final", "-", "-", "countdown"], Split(Behavior("Isolated"), text));
        Assert.Equal(["the-", "final-", "-", "countdown"], Split(Behavior("MergedWithPrevious"), text));
        Assert.Equal(["the", "-final", "-", "-countdown"], Split(Behavior("MergedWithNext"), text));
        Assert.Equal(["the", "-", "final", "--", "countdown"], Split(Behavior("Contiguous"), text));
        Assert.Equal(["-", "-", "-"], Split(Behavior("Removed", invert: true), text));
        Assert.Equal(["ab", "12", "𝔘𝔫", " ", "x"],
            Split("""{"type": "Split", "pattern": {"Regex": "\\p{L}+|\\p{N}+|\\s+"}, "behavior": "Isolated", "invert": false}""", "ab12𝔘𝔫 x"));
    }

    [Fact]
    public void Other_pre_tokenizers()
    {
        Assert.Equal(["a", "1", "2", "b"], Split("""{"type": "Digits", "individual_digits": true}""", "a12b"));
        Assert.Equal(["a", "12", "b"], Split("""{"type": "Digits", "individual_digits": false}""", "a12b"));
        Assert.Equal(["Hey", "friend", "!?", "x"], Split("""{"type": "Whitespace"}""", "Hey  friend!? x"));
        Assert.Equal(["ĠHey", "Ġfriend", "!", "Ċ"], Split("""{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true}""", "Hey friend!\n"));
        Assert.Equal(["HeyĠÃ©"], Split("""{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}""", "Hey é"));
        Assert.Equal(["▁Hey", "▁friend"], Split("""{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}""", "Hey friend"));
        Assert.Equal(["Hey▁friend"], Split("""{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": false}""", "Hey friend"));
        Assert.Equal(["a", "1", "2"], Split("""{"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}, {"type": "Digits", "individual_digits": true}]}""", "a 12"));
    }

    [Fact]
    public void Metaspace_prepend_first_only_at_the_start_of_the_input()
    {
        var t = Chars("ab▁", pre: """{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}""",
            added: $"[{Added("<x>", 3)}]", extra: ["<x>"]);
        Assert.Equal("▁|a|<x>|b", Tokens(t, "a<x>b"));
    }

    [Fact]
    public void Decoders()
    {
        var metaspace = Chars("ab▁", decoder: """{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}""");
        Assert.Equal("ab a", metaspace.Decode([2, 0, 1, 2, 0]));
        var spm = Chars("ab▁", decoder: """
            {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
             {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 1}]}
            """);
        Assert.Equal("ab a", spm.Decode([2, 0, 1, 2, 0, 2]));
        var byteLevel = Tokenizer.FromJson(Json(ByteVocab(), decoder: """{"type": "ByteLevel"}"""));
        Assert.Equal("é!", byteLevel.Decode([0xC3, 0xA9, 0x21]));
        var none = Chars("ab");
        Assert.Equal("a b", none.Decode([0, 1])); // no decoder: tokens joined by spaces
    }

    /// <summary>A byte-level vocabulary: id b is the GPT-2 char of byte b.</summary>
    private static string ByteVocab() =>
        "{" + string.Join(", ", Enumerable.Range(0, 256).Select(b => $"{TokenizerParityTests.Escape(ByteLevelMap.ByteToChar[b].ToString())}: {b}")) + "}";

    [Fact]
    public void Incremental_decoder_holds_back_incomplete_chars()
    {
        var t = Tokenizer.FromJson(Json(ByteVocab(), pre: """{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}""",
            decoder: """{"type": "ByteLevel"}"""));
        int[] ids = t.Encode("a😀é", SpecialTokens.Omit);
        Assert.Equal(7, ids.Length);
        var inc = t.CreateIncrementalDecoder();
        var deltas = ids.Select(inc.Append).ToList();
        Assert.Equal(["a", "", "", "", "😀", "", "é"], deltas);
        Assert.Equal("", inc.Append(0xE4)); // first byte of a 3-byte char
        Assert.Equal("\uFFFD", inc.Flush());

        var spm = Chars("ab▁", decoder: """
            {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "Fuse"},
             {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
            """);
        var inc2 = spm.CreateIncrementalDecoder();
        Assert.Equal(["a", "b", " ", "a"], new[] { 2, 0, 1, 2, 0 }.Select(inc2.Append).Where(s => s.Length > 0).ToList());
    }

    [Fact]
    public void Template_post_processor_and_special_ids()
    {
        var t = Tokenizer.FromJson(Json(Vocab("ab", "<s>", "</s>"), post: """
            {"type": "Sequence", "processors": [{"type": "ByteLevel"}, {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
             "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [2], "tokens": ["<s>"]}, "</s>": {"id": "</s>", "ids": [3], "tokens": ["</s>"]}}}]}
            """, added: $"[{Added("<s>", 2)}, {Added("</s>", 3)}]"));
        Assert.Equal([2, 0, 1, 3], t.Encode("ab"));
        Assert.Equal([0, 1], t.Encode("ab", SpecialTokens.Omit));
        Assert.Equal([[2, 0, 3], [2, 1, 3]], t.EncodeBatch(["a", "b"]));
        Assert.Equal("a b", t.Decode([2, 0, 1, 3], SkipSpecialTokens.Yes)); // no decoder: joined by spaces
        Assert.Equal(new HashSet<int> { 2, 3 }, t.SpecialTokenIds);
        Assert.Equal(4, t.VocabSize);
    }

    [Fact]
    public void Folder_with_configs_supplies_special_ids()
    {
        string dir = Path.Combine(Path.GetTempPath(), "spark-tok-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), Json(Vocab("ab", "<s>", "</s>", "<pad>"),
                added: $"[{Added("<s>", 2)}, {Added("</s>", 3)}, {Added("<pad>", 4)}]"));
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"),
                """{"bos_token": {"content": "<s>"}, "eos_token": "</s>", "pad_token": "<pad>"}""");
            File.WriteAllText(Path.Combine(dir, "generation_config.json"), """{"eos_token_id": [3, 1]}""");
            var t = Tokenizer.Load(dir);
            Assert.Equal(2, t.BosTokenId);
            Assert.Equal([3, 1], t.EosTokenIds);
            Assert.Equal(4, t.PadTokenId);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Gpt2_pair_header_line_and_hash_merges()
    {
        string dir = Path.Combine(Path.GetTempPath(), "spark-tok-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "vocab.json"), """{"#": 0, "a": 1, "##": 2, "Ġ": 3}""");
            File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\n# #\n");
            var t = Tokenizer.Load(dir);
            Assert.Equal([2, 3, 1], t.Encode("## a", SpecialTokens.Omit));
            Assert.Equal("## a", t.Decode([2, 3, 1]));
        }
        finally { Directory.Delete(dir, true); }
    }
}
