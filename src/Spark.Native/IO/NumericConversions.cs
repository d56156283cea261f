using System.Buffers.Binary;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Spark.Native.IO;

/// <summary>
/// Exact conversions between little-endian tensor bytes and <see cref="float"/> / <see cref="long"/>.
/// Sources may sit at any byte address: loads go through <c>LoadUnsafe</c>, <see cref="BinaryPrimitives"/>
/// or byte copies, never through aligned pointers. Assumes a little-endian host, as safetensors data is little-endian.
/// </summary>
internal static class NumericConversions
{
    /// <summary>Whether <see cref="ToF32"/> accepts <paramref name="dtype"/>.</summary>
    public static bool CanReadF32(DType dtype) =>
        dtype is DType.F32 or DType.BF16 or DType.F16 or DType.F64 or DType.I64 or DType.I32;

    /// <summary>Whether <see cref="ToI64"/> accepts <paramref name="dtype"/> (every integer dtype that fits a long).</summary>
    public static bool CanReadI64(DType dtype) =>
        dtype is DType.I64 or DType.I32 or DType.U32 or DType.I16 or DType.U16 or DType.I8 or DType.U8 or DType.BOOL;

    /// <summary>
    /// Effectively computes <c>dst[i] = (float)src[i]</c> for <paramref name="src"/> holding <c>dst.Length</c> elements
    /// of <paramref name="dtype"/>. BF16, F16 and F32 are exact; F64 and 64/32-bit integers round to nearest even.
    /// </summary>
    public static void ToF32(DType dtype, ReadOnlySpan<byte> src, Span<float> dst)
    {
        CheckLengths(dtype, src.Length, dst.Length);
        switch (dtype)
        {
            case DType.F32: src.CopyTo(MemoryMarshal.AsBytes(dst)); break;
            case DType.BF16: BF16ToF32(src, dst); break;
            case DType.F16: TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(src), dst); break;
            case DType.F64: for (int i = 0; i < dst.Length; i++) dst[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(src[(8 * i)..]); break;
            case DType.I64: for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadInt64LittleEndian(src[(8 * i)..]); break;
            case DType.I32: for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadInt32LittleEndian(src[(4 * i)..]); break;
            default: throw new NotSupportedException($"cannot convert {DTypes.Name(dtype)} to F32");
        }
    }

    /// <summary>Effectively computes <c>dst[i] = (long)src[i]</c> for integer (and BOOL) <paramref name="dtype"/>.</summary>
    public static void ToI64(DType dtype, ReadOnlySpan<byte> src, Span<long> dst)
    {
        CheckLengths(dtype, src.Length, dst.Length);
        switch (dtype)
        {
            case DType.I64: src.CopyTo(MemoryMarshal.AsBytes(dst)); break;
            case DType.I32: for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadInt32LittleEndian(src[(4 * i)..]); break;
            case DType.U32: for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadUInt32LittleEndian(src[(4 * i)..]); break;
            case DType.I16: for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadInt16LittleEndian(src[(2 * i)..]); break;
            case DType.U16: for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]); break;
            case DType.I8: for (int i = 0; i < dst.Length; i++) dst[i] = (sbyte)src[i]; break;
            case DType.U8 or DType.BOOL: for (int i = 0; i < dst.Length; i++) dst[i] = src[i]; break;
            default: throw new NotSupportedException($"cannot convert {DTypes.Name(dtype)} to I64");
        }
    }

    /// <summary>Effectively computes <c>dst[i] = float(bits[i] &lt;&lt; 16)</c>: BF16 is the upper half of an F32.</summary>
    public static void BF16ToF32(ReadOnlySpan<byte> src, Span<float> dst)
    {
        CheckLengths(DType.BF16, src.Length, dst.Length);
        ref ushort s = ref Unsafe.As<byte, ushort>(ref MemoryMarshal.GetReference(src));
        ref uint d = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(dst));
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            for (; i <= dst.Length - Vector<ushort>.Count; i += Vector<ushort>.Count)
            {
                Vector.Widen(Vector.LoadUnsafe(ref s, (nuint)i), out Vector<uint> lo, out Vector<uint> hi);
                Vector.StoreUnsafe(lo << 16, ref d, (nuint)i);
                Vector.StoreUnsafe(hi << 16, ref d, (nuint)(i + Vector<uint>.Count));
            }
        }
        for (; i < dst.Length; i++)
            dst[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]) << 16);
    }

    /// <summary>
    /// Writes <paramref name="src"/> as <paramref name="dtype"/> (F32, BF16 or F16) little-endian bytes.
    /// BF16 and F16 round to nearest even; overflow gives ±infinity; NaN stays NaN.
    /// </summary>
    public static void FromF32(DType dtype, ReadOnlySpan<float> src, Span<byte> dst)
    {
        CheckLengths(dtype, dst.Length, src.Length);
        switch (dtype)
        {
            case DType.F32: MemoryMarshal.AsBytes(src).CopyTo(dst); break;
            case DType.F16: TensorPrimitives.ConvertToHalf(src, MemoryMarshal.Cast<byte, Half>(dst)); break;
            case DType.BF16:
                for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], ToBF16Bits(src[i]));
                break;
            default: throw new NotSupportedException($"cannot convert F32 to {DTypes.Name(dtype)}");
        }
    }

    /// <summary>The BF16 nearest to <paramref name="x"/> (ties to even); NaN maps to a quiet NaN of the same sign.</summary>
    public static ushort ToBF16Bits(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        if (float.IsNaN(x)) return (ushort)((bits >> 16) | 0x0040);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    private static void CheckLengths(DType dtype, int byteLength, int elementCount)
    {
        if ((long)elementCount * DTypes.SizeOf(dtype) != byteLength)
            throw new ArgumentException($"{byteLength} bytes of {DTypes.Name(dtype)} do not hold {elementCount} elements");
    }
}
