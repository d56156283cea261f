namespace Spark.Native.IO;

/// <summary>Sizes and safetensors names of <see cref="DType"/> values.</summary>
public static class DTypes
{
    /// <summary>Bytes per element of <paramref name="dtype"/>.</summary>
    public static int SizeOf(DType dtype) => dtype switch
    {
        DType.BOOL or DType.U8 or DType.I8 or DType.F8_E4M3 or DType.F8_E5M2 => 1,
        DType.I16 or DType.U16 or DType.F16 or DType.BF16 => 2,
        DType.I32 or DType.U32 or DType.F32 => 4,
        DType.F64 or DType.I64 or DType.U64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a DType"),
    };

    /// <summary>
    /// Parses a safetensors dtype name exactly (case-sensitive). Names this engine does not support,
    /// such as <c>F8_E8M0</c>, <c>F6_E2M3</c>, <c>F4</c> or <c>C64</c>, return false.
    /// </summary>
    public static bool TryParse(string safetensorsName, out DType dtype)
    {
        int i = Array.IndexOf(Names, safetensorsName);
        dtype = (DType)Math.Max(i, 0);
        return i >= 0;
    }

    /// <summary>The safetensors name of <paramref name="dtype"/>, e.g. <c>"BF16"</c>.</summary>
    public static string Name(DType dtype) =>
        (uint)dtype < (uint)Names.Length ? Names[(int)dtype]
        : throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a DType");

    private static readonly string[] Names = Enum.GetNames<DType>();
}
