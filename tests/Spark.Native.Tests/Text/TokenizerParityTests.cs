using Spark.Native.Text;

namespace Spark.Native.Tests.Text;

/// <summary>
/// Exact parity with Hugging Face <c>tokenizers</c> on the ggml-vocab reference vectors (46 strings each, encoded with
/// add_special_tokens=False) for the real tokenizer files under ../shared/data.
/// </summary>
public class TokenizerParityTests
{
    private const string NoShared = "../shared (real tokenizer files) is absent";

    public static TheoryData<string, string> Pairs => new()
    {
        { "qwen2.5-0.5b-instruct", "qwen2" },
        { "qwen2-string-merges", "qwen2" },
        { "llama3.2-1b", "llama-bpe" },
        { "llama2", "llama-spm" },
        { "phi-3-mini", "phi-3" },
    };

    private static readonly Dictionary<string, Tokenizer> Cache = [];

    internal static Tokenizer Get(string folder)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(folder, out var t))
                Cache[folder] = t = Tokenizer.Load(Path.Combine(TestPaths.SharedDataDir!, "data", "tokenizers", folder));
            return t;
        }
    }

    internal static List<(string Text, int[] Ids)> Vectors(string name)
    {
        string dir = Path.Combine(TestPaths.SharedDataDir!, "data", "tokenizer-vectors");
        string[] inputs = File.ReadAllText(Path.Combine(dir, $"ggml-vocab-{name}.gguf.inp")).Split("\n__ggml_vocab_test__\n");
        string[] outputs = File.ReadAllText(Path.Combine(dir, $"ggml-vocab-{name}.gguf.out")).Split('\n');
        var result = new List<(string, int[])>();
        for (int i = 0; i < inputs.Length - 1; i++)
            result.Add((inputs[i], outputs[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray()));
        return result;
    }

    private static void CheckVectors(Tokenizer tokenizer, string vectors, bool roundTrip)
    {
        var cases = Vectors(vectors);
        Assert.Equal(46, cases.Count);
        var failures = new List<string>();
        foreach (var (text, expected) in cases)
        {
            int[] actual = tokenizer.Encode(text, SpecialTokens.Omit);
            if (!actual.SequenceEqual(expected))
                failures.Add($"{Escape(text)}: expected [{string.Join(' ', expected)}] got [{string.Join(' ', actual)}]");
            else if (roundTrip && tokenizer.Decode(actual) != text)
                failures.Add($"{Escape(text)}: decode gave {Escape(tokenizer.Decode(actual))}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} differ:\n" + string.Join('\n', failures));
    }

    internal static string Escape(string s) => System.Text.Json.JsonSerializer.Serialize(s);

    [Theory]
    [MemberData(nameof(Pairs))]
    public void Vectors_match_reference(string folder, string vectors)
    {
        Assert.SkipWhen(TestPaths.SharedDataDir is null, NoShared);
        // Byte-level BPE round-trips every string; SentencePiece-style Llama-2 decoding strips the one leading space.
        CheckVectors(Get(folder), vectors, roundTrip: !folder.StartsWith("llama2") && !folder.StartsWith("phi"));
    }

    [Fact]
    public void Gpt2_vocab_and_merges_pair_matches_reference()
    {
        Assert.SkipWhen(TestPaths.SharedDataDir is null, NoShared);
        var tokenizer = TokenizerLoader.LoadGpt2Pair(Path.Combine(TestPaths.SharedDataDir!, "data", "tokenizers", "qwen2.5-0.5b-instruct"));
        CheckVectors(tokenizer, "qwen2", roundTrip: true);
        Assert.Equal(151665, tokenizer.VocabSize);
        Assert.Equal([151644], tokenizer.Encode("<|im_start|>", SpecialTokens.Omit));
    }

    [Fact]
    public void Known_qwen_ids()
    {
        Assert.SkipWhen(TestPaths.SharedDataDir is null, NoShared);
        var qwen = Get("qwen2.5-0.5b-instruct");
        Assert.Equal([9707, 1879], qwen.Encode("Hello world"));
        Assert.Equal([21927, 1879], qwen.Encode(" Hello world"));
        Assert.Equal(151665, qwen.VocabSize);
        Assert.Null(qwen.BosTokenId);
        Assert.Equal([151645, 151643], qwen.EosTokenIds);
        Assert.Equal(151643, qwen.PadTokenId);
        Assert.Contains(151644, qwen.SpecialTokenIds);
        Assert.Equal(151644, qwen.TokenToId("<|im_start|>"));
        Assert.Equal("<|im_end|>", qwen.IdToToken(151645));
    }

    [Fact]
    public void Llama_special_ids_and_bos()
    {
        Assert.SkipWhen(TestPaths.SharedDataDir is null, NoShared);
        var llama3 = Get("llama3.2-1b");
        Assert.Equal(128000, llama3.BosTokenId);
        Assert.Contains(128001, llama3.EosTokenIds);
        Assert.Equal(128000, llama3.Encode("hi")[0]);
        Assert.Equal(128256, llama3.VocabSize);
        var llama2 = Get("llama2");
        Assert.Equal(1, llama2.Encode("hi")[0]);
        Assert.Equal("hi there", llama2.Decode(llama2.Encode("hi there"), SkipSpecialTokens.Yes));
    }
}
