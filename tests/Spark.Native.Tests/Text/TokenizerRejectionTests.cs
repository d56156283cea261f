using Spark.Native.Text;
using static Spark.Native.Tests.Text.TokenizerComponentTests;

namespace Spark.Native.Tests.Text;

/// <summary>Malformed or unsupported tokenizer files fail with a one-line <see cref="SparkException"/> that names the
/// file, the JSON path and the offending value.</summary>
public class TokenizerRejectionTests
{
    private static string Error(string json) => Assert.Throws<SparkException>(() => Tokenizer.FromJson(json)).Message;

    [Fact]
    public void Invalid_json_names_the_line()
    {
        string message = Error("{\"model\": {\n \"type\": \"BPE\",, }");
        Assert.StartsWith("tokenizer.json: invalid JSON at line 2", message);
    }

    [Fact]
    public void Malformed_merge_names_its_index()
    {
        string message = Error(Json(Vocab("ab", "ab"), """["a b", ["a", "b"], "a b", 7]"""));
        Assert.Equal("tokenizer.json: model.merges[3] must be \"a b\" or [\"a\", \"b\"]", message);
    }

    [Fact]
    public void Merge_of_unknown_token_names_the_merge()
    {
        Assert.Equal("tokenizer.json: model.merges[1] refers to \"c\", which is not in the vocabulary",
            Error(Json(Vocab("ab", "ab"), """["a b", "b c"]""")));
        Assert.Equal("tokenizer.json: model.merges[0] makes \"ba\", which is not in the vocabulary",
            Error(Json(Vocab("ab", "ab"), """["b a"]""")));
    }

    [Fact]
    public void Unsupported_components_are_named()
    {
        Assert.Equal("tokenizer.json: pre_tokenizer.pretokenizers[1].type \"UnicodeScripts\" is not supported",
            Error(Json(Vocab("a"), pre: """{"type": "Sequence", "pretokenizers": [{"type": "Digits"}, {"type": "UnicodeScripts"}]}""")));
        Assert.Equal("tokenizer.json: normalizer.type \"BertNormalizer\" is not supported",
            Error(Json(Vocab("a"), normalizer: """{"type": "BertNormalizer"}""")));
        Assert.Equal("tokenizer.json: decoder.decoders[0].type \"WordPiece\" is not supported",
            Error(Json(Vocab("a"), decoder: """{"type": "Sequence", "decoders": [{"type": "WordPiece"}]}""")));
        Assert.Equal("tokenizer.json: post_processor.type \"RobertaProcessing\" is not supported",
            Error(Json(Vocab("a"), post: """{"type": "RobertaProcessing"}""")));
        Assert.Equal("tokenizer.json: model.type \"Unigram\" is not supported",
            Error("""{"model": {"type": "Unigram", "vocab": []}}"""));
        Assert.Equal("tokenizer.json: pre_tokenizer.behavior \"Sideways\" is not supported",
            Error(Json(Vocab("a"), pre: """{"type": "Split", "pattern": {"String": "-"}, "behavior": "Sideways"}""")));
        Assert.Contains("model.dropout 0.1 is not supported", Error(Json(Vocab("a")).Replace("\"dropout\": null", "\"dropout\": 0.1")));
        Assert.Equal("tokenizer.json: model.unk_token \"<unk>\" is not in model.vocab",
            Error(Json(Vocab("a"), modelExtra: ", \"unk_token\": \"<unk>\"")));
        Assert.StartsWith("tokenizer.json: pre_tokenizer.pattern.Regex is not a supported regex",
            Error(Json(Vocab("a"), pre: """{"type": "Split", "pattern": {"Regex": "(a"}, "behavior": "Isolated"}""")));
        Assert.Equal("tokenizer.json: model is missing", Error("{}"));
    }

    [Fact]
    public void Decode_rejects_ids_outside_the_vocabulary()
    {
        var t = Tokenizer.FromJson(Json(Vocab("ab")));
        Assert.Equal("Tokenizer.Decode: id 99 is out of range for vocabulary size 2",
            Assert.Throws<SparkException>(() => t.Decode([0, 99])).Message);
        Assert.Equal("Tokenizer.Decode: id -1 is out of range for vocabulary size 2",
            Assert.Throws<SparkException>(() => t.Decode([-1])).Message);
        Assert.Throws<SparkException>(() => t.CreateIncrementalDecoder().Append(5));
    }

    [Fact]
    public void Load_names_a_missing_path_or_pair()
    {
        string missing = Path.Combine(Path.GetTempPath(), "spark-no-such-" + Guid.NewGuid().ToString("N"));
        Assert.Contains("is neither a tokenizer.json file nor a folder", Assert.Throws<SparkException>(() => Tokenizer.Load(missing)).Message);
        Directory.CreateDirectory(missing);
        try { Assert.Contains("has no tokenizer.json and no vocab.json + merges.txt pair", Assert.Throws<SparkException>(() => Tokenizer.Load(missing)).Message); }
        finally { Directory.Delete(missing); }
    }
}
