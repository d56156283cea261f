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

    public static void Length(Tensor t, long expected, string operand)
    {
        if (t.Length != expected)
            throw new ArgumentException($"{operand} has {expected} elements, the tensor {t} has {t.Length}", operand);
    }
}
