using System.Buffers.Binary;
using Spark.Native.IO;

namespace Spark.Native.Tests.IO;

public class NumericConversionsTests
{
    private static readonly uint[] EdgeF32Bits =
    [
        0x00000000, 0x80000000, 0x3F800000, 0xBF800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F7F7FFF, 0x7F7F8000,
        0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FBFFFFF,
        0x00000001, 0x80000001, 0x00008000, 0x00018000, 0x00010000, 0x007FFFFF, 0x00800000,
        0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0x477FE000, 0x477FF000, 0x477FEFFF, 0x33800000, 0x33000000,
    ];

    [Fact]
    public void BF16ToF32IsExactForEveryBitPatternAtAnyAlignment()
    {
        for (int offset = 0; offset < 2; offset++)
        {
            var src = new byte[offset + 2 * 65536];
            for (int b = 0; b < 65536; b++) BinaryPrimitives.WriteUInt16LittleEndian(src.AsSpan(offset + 2 * b), (ushort)b);
            var dst = new float[65536];
            NumericConversions.ToF32(DType.BF16, src.AsSpan(offset), dst);
            for (int b = 0; b < 65536; b++)
                Assert.Equal((uint)b << 16, BitConverter.SingleToUInt32Bits(dst[b]));
        }
    }

    [Fact]
    public void F16ToF32IsExactForEveryBitPatternAtAnyAlignment()
    {
        for (int offset = 0; offset < 2; offset++)
        {
            var src = new byte[offset + 2 * 65536];
            for (int b = 0; b < 65536; b++) BinaryPrimitives.WriteUInt16LittleEndian(src.AsSpan(offset + 2 * b), (ushort)b);
            var dst = new float[65536];
            NumericConversions.ToF32(DType.F16, src.AsSpan(offset), dst);
            for (int b = 0; b < 65536; b++)
                AssertSameFloat((float)BitConverter.UInt16BitsToHalf((ushort)b), dst[b]);
        }
    }

    [Fact]
    public void F32ToBF16RoundsToNearestEven()
    {
        var bits = EdgeF32Bits.Concat(RandomBits(100_000)).ToArray();
        var src = bits.Select(BitConverter.UInt32BitsToSingle).ToArray();
        var dst = new byte[2 * src.Length + 1];
        NumericConversions.FromF32(DType.BF16, src, dst.AsSpan(1));
        for (int i = 0; i < src.Length; i++)
        {
            ushort actual = BinaryPrimitives.ReadUInt16LittleEndian(dst.AsSpan(1 + 2 * i));
            if (float.IsNaN(src[i]))
            {
                Assert.True(float.IsNaN(BitConverter.UInt32BitsToSingle((uint)actual << 16)), $"NaN {bits[i]:X8} -> {actual:X4}");
                Assert.Equal(bits[i] >> 31, (uint)actual >> 15);
            }
            else Assert.True(ReferenceBF16(src[i]) == actual, $"{bits[i]:X8}: expected {ReferenceBF16(src[i]):X4}, got {actual:X4}");
        }
    }

    [Fact]
    public void F32ToF16MatchesScalarHalf()
    {
        var src = EdgeF32Bits.Concat(RandomBits(100_000)).Select(BitConverter.UInt32BitsToSingle).ToArray();
        var dst = new byte[2 * src.Length];
        NumericConversions.FromF32(DType.F16, src, dst);
        for (int i = 0; i < src.Length; i++)
            AssertSameFloat((float)(Half)src[i], (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(dst.AsSpan(2 * i))));
    }

    [Fact]
    public void F64AndIntegersRoundToNearestF32()
    {
        double[] doubles = [1 + Math.Pow(2, -24), 1 + 3 * Math.Pow(2, -24), -0.0, double.MaxValue, double.Epsilon, double.NaN, 0.1];
        var src = new byte[8 * doubles.Length + 3];
        for (int i = 0; i < doubles.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(src.AsSpan(3 + 8 * i), doubles[i]);
        var dst = new float[doubles.Length];
        NumericConversions.ToF32(DType.F64, src.AsSpan(3), dst);
        Assert.Equal([1f, 1 + MathF.Pow(2, -22), -0f, float.PositiveInfinity, 0f, float.NaN, 0.1f], dst);
        Assert.True(float.IsNegative(dst[2]));

        long[] longs = [(1L << 24) + 1, (1L << 24) + 3, long.MinValue, -7];
        var longBytes = new byte[8 * longs.Length];
        for (int i = 0; i < longs.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(longBytes.AsSpan(8 * i), longs[i]);
        var fromLongs = new float[longs.Length];
        NumericConversions.ToF32(DType.I64, longBytes, fromLongs);
        Assert.Equal([16777216f, 16777220f, -9223372036854775808f, -7f], fromLongs);
    }

    [Fact]
    public void IntegersWidenToI64()
    {
        var dst = new long[2];
        NumericConversions.ToI64(DType.I32, [0xFF, 0xFF, 0xFF, 0xFF, 7, 0, 0, 0], dst);
        Assert.Equal([-1L, 7L], dst);
        NumericConversions.ToI64(DType.U32, [0xFF, 0xFF, 0xFF, 0xFF, 7, 0, 0, 0], dst);
        Assert.Equal([4294967295L, 7L], dst);
        NumericConversions.ToI64(DType.I8, [0x80, 0x7F], dst);
        Assert.Equal([-128L, 127L], dst);
        NumericConversions.ToI64(DType.BOOL, [1, 0], dst);
        Assert.Equal([1L, 0L], dst);
        Assert.Throws<ArgumentException>(() => NumericConversions.ToI64(DType.I64, new byte[8], dst));
    }

    /// <summary>Round to nearest, ties to even, by comparing distances to the two neighbouring BF16 values.</summary>
    internal static ushort ReferenceBF16(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        uint sign = bits & 0x8000_0000;
        uint lo = (bits & 0x7FFF_FFFF) >> 16;
        uint hi = lo + 1;
        double magnitude = Math.Abs((double)x);
        double vlo = BitConverter.UInt32BitsToSingle(lo << 16);
        double vhi = hi == 0x7F80 ? Math.Pow(2, 128) : BitConverter.UInt32BitsToSingle(hi << 16);
        uint chosen = (magnitude - vlo).CompareTo(vhi - magnitude) switch
        {
            < 0 => lo,
            > 0 => hi,
            _ => (lo & 1) == 0 ? lo : hi,
        };
        if (float.IsInfinity(x)) chosen = 0x7F80;
        return (ushort)((sign >> 16) | chosen);
    }

    private static IEnumerable<uint> RandomBits(int count)
    {
        var random = new Random(1234);
        for (int i = 0; i < count; i++) yield return (uint)random.NextInt64(0, 1L << 32);
    }

    private static void AssertSameFloat(float expected, float actual)
    {
        if (float.IsNaN(expected)) Assert.True(float.IsNaN(actual) && float.IsNegative(expected) == float.IsNegative(actual));
        else Assert.Equal(BitConverter.SingleToUInt32Bits(expected), BitConverter.SingleToUInt32Bits(actual));
    }
}
