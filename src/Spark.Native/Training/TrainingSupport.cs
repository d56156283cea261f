using Spark.Native.Backends;

namespace Spark.Native.Training;

/// <summary>Whether a backend can train: every op the training graph and the optimizer call.</summary>
internal static class TrainingSupport
{
    private static readonly OpKind[] Needed =
    [
        OpKind.EmbeddingBackward, OpKind.RmsNormBackward, OpKind.MatMulBackward, OpKind.RopeBackward, OpKind.AttentionBackward,
        OpKind.SwiGluBackward, OpKind.CrossEntropy, OpKind.Fill, OpKind.SumOfSquares, OpKind.AdamW,
    ];

    /// <summary>Throws a <see cref="SparkException"/> naming the missing ops when the backend lacks any.</summary>
    public static void Require(IBackend backend)
    {
        var missing = Needed.Where(op => !backend.Supports(op)).ToArray();
        if (missing.Length > 0)
            throw new SparkException($"training on the {backend.Name} backend needs {string.Join(", ", missing)}, which it does not implement; use the cpu device");
    }
}
