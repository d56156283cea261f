using Spark.Native.Tensors;

namespace Spark.Native.Backends;

/// <summary>
/// The checks every backend runs on the operands of LogProbGather and LogProbGatherBackward (T tokens, H hidden,
/// V vocabulary): hidden [T, H] and weight [V, H] in the activation type, V ≥ 1 and H ≥ 1, per-token vectors [T]
/// F32, targets [T] each in [−1, V), temperature positive and finite.
/// </summary>
internal static class LogProbChecks
{
    /// <summary>Checks the forward's operands; returns (T, H, V).</summary>
    public static (int Tokens, int Hidden, int Vocab) Forward(string op, DType activation, Tensor logProbs, Tensor entropies,
        Tensor logSumExp, Tensor hidden, Tensor weight, ReadOnlySpan<int> targets, float temperature)
    {
        var dims = Inputs(op, activation, hidden, weight, targets, temperature);
        Statistic(op, logProbs, dims.Tokens, nameof(logProbs));
        Statistic(op, entropies, dims.Tokens, nameof(entropies));
        Statistic(op, logSumExp, dims.Tokens, nameof(logSumExp));
        return dims;
    }

    /// <summary>Checks the backward's operands; returns (T, H, V).</summary>
    public static (int Tokens, int Hidden, int Vocab) Backward(string op, DType activation, Tensor hiddenGrad, Tensor weightGrad,
        Tensor logProbGrad, Tensor? entropyGrad, Tensor logSumExp, Tensor entropies, Tensor hidden, Tensor weight,
        ReadOnlySpan<int> targets, float temperature)
    {
        var dims = Inputs(op, activation, hidden, weight, targets, temperature);
        Check.SameShape(hidden, hiddenGrad, nameof(hiddenGrad));
        Type(op, hiddenGrad, activation, nameof(hiddenGrad), "the activation type");
        Check.SameShape(weight, weightGrad, nameof(weightGrad));
        Type(op, weightGrad, DType.F32, nameof(weightGrad), "F32 on every backend (a parameter gradient)");
        Statistic(op, logProbGrad, dims.Tokens, nameof(logProbGrad));
        if (entropyGrad is not null) Statistic(op, entropyGrad, dims.Tokens, nameof(entropyGrad));
        Statistic(op, logSumExp, dims.Tokens, nameof(logSumExp));
        Statistic(op, entropies, dims.Tokens, nameof(entropies));
        return dims;
    }

    private static (int Tokens, int Hidden, int Vocab) Inputs(string op, DType activation, Tensor hidden, Tensor weight,
        ReadOnlySpan<int> targets, float temperature)
    {
        Check.Rank(hidden, 2, nameof(hidden));
        Check.Rank(weight, 2, nameof(weight));
        int t = hidden.Shape[0], h = hidden.Shape[1], v = weight.Shape[0];
        Check.Shape(weight, nameof(weight), v, h);
        if (v < 1 || h < 1)
            throw new ArgumentException($"{op}: weight has shape {Tensor.ShapeString(weight.Shape)}; the vocabulary and the hidden size must be at least 1", nameof(weight));
        Type(op, hidden, activation, nameof(hidden), "the activation type");
        Type(op, weight, activation, nameof(weight), "the activation type");
        if (targets.Length != t) throw new ArgumentException($"{op}: {targets.Length} targets for {t} rows of hidden", nameof(targets));
        for (int i = 0; i < t; i++)
            if (targets[i] < -1 || targets[i] >= v)
                throw new ArgumentOutOfRangeException(nameof(targets), $"{op}: target {targets[i]} of row {i} is outside [0, {v}) and is not −1 (ignore)");
        if (!(temperature > 0) || float.IsPositiveInfinity(temperature))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, $"{op}: the temperature must be positive and finite");
        return (t, h, v);
    }

    /// <summary>A per-token vector: [T], F32.</summary>
    private static void Statistic(string op, Tensor x, int tokens, string operand)
    {
        Check.Shape(x, operand, tokens);
        Type(op, x, DType.F32, operand, "F32 on every backend");
    }

    private static void Type(string op, Tensor x, DType expected, string operand, string why)
    {
        if (x.DType != expected)
            throw new ArgumentException($"{op}: {operand} is {x.DType}, expected {expected} ({why})", operand);
    }
}
