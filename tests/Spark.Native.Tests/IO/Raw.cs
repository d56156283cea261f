using System.Buffers.Binary;
using System.Text;

namespace Spark.Native.Tests.IO;

/// <summary>Hand-made safetensors bytes: 8-byte length prefix, header, data, then optional zero padding.</summary>
internal static class Raw
{
    public static void Write(string path, string header, byte[] data, long extraLength = 0, ulong? headerLength = null) =>
        Write(path, Encoding.UTF8.GetBytes(header), data, extraLength, headerLength);

    public static void Write(string path, byte[] header, byte[] data, long extraLength = 0, ulong? headerLength = null)
    {
        using var stream = File.Create(path);
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, headerLength ?? (ulong)header.Length);
        stream.Write(prefix);
        stream.Write(header);
        stream.Write(data);
        if (extraLength > 0) stream.SetLength(stream.Length + extraLength);
    }
}
