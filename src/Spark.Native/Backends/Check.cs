using Spark.Native.Tensors;

namespace Spark.Native.Backends;

/// <summary>Shape checks at the top of every op; messages name the operand, expected and actual shape.</summary>
internal static class Check
{
    public static void Rank(Tensor t, int rank, string operand)
    {
        if (t.Rank != rank)
            throw new ArgumentException($"{operand} has shape {Tensor.ShapeString(t.Shape)}, expected rank {rank}", operand);
    }

    public static void Shape(Tensor t, string operand, params ReadOnlySpan<int> expected)
    {
        if (!t.Shape.AsSpan().SequenceEqual(expected))
            throw new ArgumentException($"{operand} has shape {Tensor.ShapeString(t.Shape)}, expected {Tensor.ShapeString(expected)}", operand);
    }

    public static void SameShape(Tensor reference, Tensor t, string operand) => Shape(t, operand, reference.Shape);

    /// <summary>Throws when the element ranges of a and b overlap in the same memory.</summary>
    public static void NotOverlapping(Tensor a, Tensor b, string op, string operandA, string operandB)
    {
        if (ReferenceEquals(a.Memory, b.Memory) && a.Offset < b.Offset + b.Length && b.Offset < a.Offset + a.Length)
            throw new ArgumentException($"{op}: {operandA} must not overlap {operandB}", operandA);
    }

    public static void Length(Tensor t, long expected, string operand)
    {
        if (t.Length != expected)
            throw new ArgumentException($"{operand} has {expected} elements, the tensor {t} has {t.Length}", operand);
    }
}

/// <summary>The checks every backend runs on the operands of Attention and AttentionBackward.</summary>
internal static class AttentionChecks
{
    /// <summary>
    /// Checks heads, widths, and that each span's query rows lie in query [T, NH·HD] without overlapping another span
    /// and its key rows lie in keys [S, NKV·HD]; with <paramref name="disjointKeys"/> (the backward, which accumulates
    /// into the key rows) also that no two spans share a key row.
    /// </summary>
    public static void Validate(string op, Tensor query, Tensor keys, Tensor values, ReadOnlySpan<AttentionSpan> spans,
        AttentionHeads heads, bool disjointKeys)
    {
        if (heads.HeadDim <= 0 || heads.KeyValueHeads <= 0 || heads.QueryHeads % heads.KeyValueHeads != 0)
            throw new ArgumentException($"{op}: {heads.QueryHeads} query heads are not a multiple of {heads.KeyValueHeads} key/value heads (head dim {heads.HeadDim})");
        Check.Rank(query, 2, nameof(query));
        Check.Rank(keys, 2, nameof(keys));
        int rows = query.Shape[0], keyRows = keys.Shape[0];
        Check.Shape(query, nameof(query), rows, heads.QueryWidth);
        Check.Shape(keys, nameof(keys), keyRows, heads.KeyValueWidth);
        Check.SameShape(keys, values, nameof(values));
        var queryOwner = new int[rows];
        var keyOwner = disjointKeys ? new int[keyRows] : null;
        for (int i = 0; i < spans.Length; i++)
        {
            var s = spans[i];
            if (s.Length < 0 || s.StartPosition < 0 || s.QueryRow < 0 || s.KeyRow < 0
                || (long)s.QueryRow + s.Length > rows || (long)s.KeyRow + s.StartPosition + s.Length > keyRows)
                throw new ArgumentException($"{op}: span {i} {s} does not fit query rows [0, {rows}) and key rows [0, {keyRows})", "spans");
            for (int r = s.QueryRow; r < s.QueryRow + s.Length; r++)
            {
                if (queryOwner[r] != 0) throw new ArgumentException($"{op}: spans {queryOwner[r] - 1} and {i} both cover query row {r}", "spans");
                queryOwner[r] = i + 1;
            }
            if (keyOwner is null) continue;
            for (int r = s.KeyRow; r < s.KeyRow + s.KeyCount; r++)
            {
                if (keyOwner[r] != 0) throw new ArgumentException($"{op}: spans {keyOwner[r] - 1} and {i} both read key row {r}; the backward needs disjoint key rows", "spans");
                keyOwner[r] = i + 1;
            }
        }
    }
}

/// <summary>The checks every backend runs on the operands of CopyRows.</summary>
internal static class RowScatterChecks
{
    /// <summary>destination [S, C], source [T, C], destinationRows [T] distinct and in [0, S).</summary>
    public static void Validate(string op, Tensor destination, Tensor source, ReadOnlySpan<int> destinationRows)
    {
        Check.Rank(destination, 2, nameof(destination));
        Check.Rank(source, 2, nameof(source));
        int s = destination.Shape[0], c = destination.Shape[1];
        Check.Shape(source, nameof(source), destinationRows.Length, c);
        if (destination.DType != source.DType)
            throw new ArgumentException($"{op}: destination is {destination.DType} and source {source.DType}", nameof(source));
        var seen = new HashSet<int>();
        for (int i = 0; i < destinationRows.Length; i++)
        {
            int r = destinationRows[i];
            if ((uint)r >= (uint)s) throw new ArgumentOutOfRangeException(nameof(destinationRows), $"{op}: destination row {r} (entry {i}) is outside [0, {s})");
            if (!seen.Add(r)) throw new ArgumentException($"{op}: destination row {r} appears twice", nameof(destinationRows));
        }
    }
}

/// <summary>The checks every backend runs on the operands of GroupAdvantage.</summary>
internal static class AdvantageChecks
{
    /// <summary>advantages and rewards [N] F32, N a multiple of groupSize ≥ 1.</summary>
    public static void Validate(string op, Tensor advantages, Tensor rewards, int groupSize)
    {
        Check.Rank(rewards, 1, nameof(rewards));
        Check.SameShape(rewards, advantages, nameof(advantages));
        if (rewards.DType != DType.F32 || advantages.DType != DType.F32)
            throw new ArgumentException($"{op}: rewards and advantages are F32 on every backend (got {rewards.DType}, {advantages.DType})", nameof(rewards));
        if (groupSize < 1 || rewards.Shape[0] % groupSize != 0)
            throw new ArgumentException($"{op}: {rewards.Shape[0]} rewards do not split into groups of {groupSize}", nameof(groupSize));
    }
}

/// <summary>The checks every backend runs on the operands of MatMulBackward.</summary>
internal static class MatMulChecks
{
    /// <summary>input [M, K], weight [N, K], outputGrad [M, N], weightGrad [N, K], inputGrad [M, K] and biasGrad [N] when given; returns (M, N, K).</summary>
    public static (int M, int N, int K) Backward(Tensor? inputGrad, Tensor weightGrad, Tensor? biasGrad, Tensor outputGrad, Tensor input, Tensor weight)
    {
        Check.Rank(input, 2, nameof(input));
        Check.Rank(weight, 2, nameof(weight));
        int m = input.Shape[0], k = input.Shape[1], n = weight.Shape[0];
        Check.Shape(weight, nameof(weight), n, k);
        Check.Shape(outputGrad, nameof(outputGrad), m, n);
        Check.Shape(weightGrad, nameof(weightGrad), n, k);
        if (inputGrad is not null) Check.Shape(inputGrad, nameof(inputGrad), m, k);
        if (biasGrad is not null) Check.Shape(biasGrad, nameof(biasGrad), n);
        return (m, n, k);
    }
}

/// <summary>The checks every backend runs on the operands of CrossEntropy.</summary>
internal static class CrossEntropyChecks
{
    /// <summary>logits, logitsGrad [T, V], losses [T], targets [T] each in [0, V) or −1; returns (T, V).</summary>
    public static (int Rows, int Vocab) Validate(Tensor losses, Tensor logitsGrad, Tensor logits, ReadOnlySpan<int> targets)
    {
        Check.Rank(logits, 2, nameof(logits));
        int rows = logits.Shape[0], v = logits.Shape[1];
        Check.SameShape(logits, logitsGrad, nameof(logitsGrad));
        Check.Shape(losses, nameof(losses), rows);
        if (targets.Length != rows) throw new ArgumentException($"CrossEntropy: {targets.Length} targets for {rows} rows", nameof(targets));
        for (int t = 0; t < rows; t++)
            if (targets[t] < -1 || targets[t] >= v)
                throw new ArgumentOutOfRangeException(nameof(targets), $"target {targets[t]} of row {t} is outside [0, {v}) and is not −1 (ignore)");
        return (rows, v);
    }
}
