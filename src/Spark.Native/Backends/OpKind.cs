namespace Spark.Native.Backends;

/// <summary>
/// The closed set of operations a backend implements. Every op exists on every backend with the same
/// signature (see <see cref="IBackend"/>); the CPU backend is the reference.
/// </summary>
internal enum OpKind
{
    Embedding,
    RmsNorm,
    AddRmsNorm,
    MatMul,
    Rope,
    Attention,
    SwiGlu,
    Add,
    Softmax,
    LogSoftmax,
    Copy,
    CopyRows,
    Sample,
    // training
    EmbeddingBackward,
    RmsNormBackward,
    MatMulBackward,
    RopeBackward,
    AttentionBackward,
    SwiGluBackward,
    CrossEntropy,
    LogProbGather,
    LogProbGatherBackward,
    GroupAdvantage,
    Fill,
    SumOfSquares,
    AdamW,
}
