namespace Spark.Native.Text;

/// <summary>
/// The GPT-2 byte↔unicode map: bytes 0x21–0x7E, 0xA1–0xAC, 0xAE–0xFF map to the char of the same value; the other 68
/// bytes, in increasing order, map to U+0100 + n (0x20 → 'Ġ', 0x0A → 'Ċ').
/// </summary>
internal static class ByteLevelMap
{
    /// <summary>byte → char.</summary>
    public static readonly char[] ByteToChar = BuildByteToChar();

    /// <summary>char → byte for chars below U+0144, -1 where the char is not in the map.</summary>
    public static readonly short[] CharToByte = BuildCharToByte();

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool self = b is >= 0x21 and <= 0x7E or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = self ? (char)b : (char)(0x100 + n++);
        }
        return map;
    }

    private static short[] BuildCharToByte()
    {
        var map = new short[0x144];
        Array.Fill(map, (short)-1);
        for (int b = 0; b < 256; b++) map[ByteToChar[b]] = (short)b;
        return map;
    }

    /// <summary>Encodes <paramref name="text"/> as UTF-8 and maps every byte to its char.</summary>
    public static string Encode(ReadOnlySpan<char> text)
    {
        int byteCount = System.Text.Encoding.UTF8.GetByteCount(text);
        Span<byte> bytes = byteCount <= 512 ? stackalloc byte[byteCount] : new byte[byteCount];
        System.Text.Encoding.UTF8.GetBytes(text, bytes);
        return string.Create(byteCount, bytes.ToArray(), static (dst, src) =>
        {
            for (int i = 0; i < src.Length; i++) dst[i] = ByteToChar[src[i]];
        });
    }

    /// <summary>Appends the bytes of <paramref name="token"/>: mapped chars back to bytes, or the token's own UTF-8
    /// bytes when any char is outside the map (as the reference decoder does).</summary>
    public static void AppendBytes(string token, List<byte> output)
    {
        foreach (char c in token)
        {
            if (c >= CharToByte.Length || CharToByte[c] < 0)
            {
                output.AddRange(System.Text.Encoding.UTF8.GetBytes(token));
                return;
            }
        }
        foreach (char c in token) output.Add((byte)CharToByte[c]);
    }
}
