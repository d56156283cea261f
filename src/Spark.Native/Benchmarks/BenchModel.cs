namespace Spark.Native.Benchmarks;

// Dimension legend: T tokens, H hidden, I intermediate, V vocabulary, L layers, NH query heads, NKV key/value heads,
// HD head dim, B sequences (or decode rows), S sequence length (or cached positions), P parameters.

/// <summary>The shapes of a model family member that the kernel benchmarks run at (numbers from formats.md).</summary>
public sealed record BenchModel(string Name, int Hidden, int Intermediate, int Layers, int Heads, int KeyValueHeads, int HeadDim,
    int Vocab, bool TiedEmbeddings, double RopeTheta)
{
    /// <summary>Qwen2.5-1.5B: tied embeddings, 12 query heads over 2 key/value heads.</summary>
    public static BenchModel Qwen25_1_5B { get; } = new("qwen2.5-1.5b", 1536, 8960, 28, 12, 2, 128, 151936, TiedEmbeddings: true, 1e6);
    /// <summary>Qwen2.5-7B: separate LM head, 28 query heads over 4 key/value heads.</summary>
    public static BenchModel Qwen25_7B { get; } = new("qwen2.5-7b", 3584, 18944, 28, 28, 4, 128, 152064, TiedEmbeddings: false, 1e6);

    /// <summary>The models <c>--model</c> accepts.</summary>
    public static IReadOnlyList<BenchModel> Known { get; } = [Qwen25_1_5B, Qwen25_7B];

    /// <summary>NH·HD.</summary>
    public int QueryWidth => Heads * HeadDim;
    /// <summary>NKV·HD.</summary>
    public int KeyValueWidth => KeyValueHeads * HeadDim;

    /// <summary>
    /// Parameters of the Hugging Face checkpoint: embeddings, per layer q/k/v (with bias), o, gate/up/down and two norms,
    /// the final norm, and the LM head unless tied. Qwen2.5-1.5B: 1,543,714,304; Qwen2.5-7B: 7,615,616,512.
    /// </summary>
    public long ParameterCount
    {
        get
        {
            long h = Hidden, kv = KeyValueWidth;
            long layer = h * QueryWidth + QueryWidth + 2 * (h * kv + kv) + (long)QueryWidth * h + 3L * h * Intermediate + 2 * h;
            return (long)Vocab * h * (TiedEmbeddings ? 1 : 2) + Layers * layer + h;
        }
    }

    /// <summary>Parses "qwen2.5-1.5b", "qwen2.5-7b", "all", or a comma-separated list of them.</summary>
    public static IReadOnlyList<BenchModel> Parse(string text)
    {
        var models = new List<BenchModel>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (part.Equals("all", StringComparison.OrdinalIgnoreCase)) { models.AddRange(Known); continue; }
            var model = Known.FirstOrDefault(m => m.Name.Equals(part, StringComparison.OrdinalIgnoreCase))
                ?? throw new SparkException($"--model: unknown model '{part}' (expected {string.Join(", ", Known.Select(m => m.Name))} or all)");
            models.Add(model);
        }
        if (models.Count == 0) throw new SparkException($"--model: no model in \"{text}\" (expected {string.Join(", ", Known.Select(m => m.Name))} or all)");
        return models.Distinct().ToList();
    }

    /// <summary>Parses "512,2048,8192" into sequence lengths (each 16 … 131072).</summary>
    public static IReadOnlyList<int> ParseSequenceLengths(string text)
    {
        var lengths = new List<int>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, out int s) || s < 16 || s > 131072)
                throw new SparkException($"--seq: '{part}' in \"{text}\" is not a sequence length (expected integers 16 … 131072 separated by commas)");
            lengths.Add(s);
        }
        return lengths.Distinct().ToList();
    }
}

/// <summary>Whether a kernel is judged by arithmetic (TFLOP/s against the GEMM ceiling) or by traffic (GB/s against the copy ceiling).</summary>
public enum KernelBound
{
    /// <summary>Judged in TFLOP/s against the measured bf16 GEMM.</summary>
    Compute,
    /// <summary>Judged in GB/s against the measured device-to-device copy.</summary>
    Memory,
}

/// <summary>
/// One measured kernel: a stable name (<c>model:op:shape</c>, shared with benchmarks/torch_kernels.py), the work it
/// does under a stated model (minimum FLOPs and minimum bytes moved, formulas in <see cref="FlopModel"/> and
/// <see cref="ByteModel"/>), and which ceiling it is judged against.
/// </summary>
public sealed record KernelCase(string Name, string Model, string Op, string Shape, KernelBound Bound, double Flops, double Bytes,
    string FlopModel, string ByteModel)
{
    /// <summary>Allocates the inputs on the GPU and returns the timed region; null only in tests of the plan.</summary>
    internal Func<BenchContext, PreparedCase>? Prepare { get; init; }
}

/// <summary>What <c>spark bench kernels</c> measures: the models, the attention sequence lengths and the token count.</summary>
public sealed record KernelPlanSettings(IReadOnlyList<BenchModel> Models, IReadOnlyList<int> SequenceLengths, int Tokens = 4096,
    int AttentionTokens = 16384, int DecodeRows = 64, int SampleRows = 64, long MaxAdamWParameters = 1_600_000_000);
