namespace Spark.Native;

/// <summary>
/// Element types, named as safetensors names them. The engine computes in <see cref="F32"/> on the CPU;
/// checkpoints may store <see cref="BF16"/>, <see cref="F16"/> or <see cref="F32"/> weights, which are converted exactly.
/// </summary>
public enum DType
{
    /// <summary>1-byte boolean.</summary>
    BOOL,
    /// <summary>Unsigned 8-bit integer.</summary>
    U8,
    /// <summary>Signed 8-bit integer.</summary>
    I8,
    /// <summary>Signed 16-bit integer.</summary>
    I16,
    /// <summary>Unsigned 16-bit integer.</summary>
    U16,
    /// <summary>IEEE 754 half precision.</summary>
    F16,
    /// <summary>bfloat16: the upper 16 bits of an IEEE single.</summary>
    BF16,
    /// <summary>Signed 32-bit integer.</summary>
    I32,
    /// <summary>Unsigned 32-bit integer.</summary>
    U32,
    /// <summary>IEEE 754 single precision.</summary>
    F32,
    /// <summary>IEEE 754 double precision.</summary>
    F64,
    /// <summary>Signed 64-bit integer.</summary>
    I64,
    /// <summary>Unsigned 64-bit integer.</summary>
    U64,
    /// <summary>8-bit float, 4 exponent bits, 3 mantissa bits (OCP FP8 E4M3FN).</summary>
    F8_E4M3,
    /// <summary>8-bit float, 5 exponent bits, 2 mantissa bits.</summary>
    F8_E5M2,
}
