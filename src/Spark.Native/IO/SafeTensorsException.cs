namespace Spark.Native.IO;

/// <summary>
/// A safetensors file or checkpoint index is malformed. The message starts with the file path.
/// (An <see cref="IOException"/> because <see cref="InvalidDataException"/> is sealed.)
/// </summary>
public class SafeTensorsException : IOException
{
    /// <summary>Creates the exception with message <c>"{filePath}: {problem}"</c>.</summary>
    public SafeTensorsException(string filePath, string problem, Exception? inner = null)
        : base($"{filePath}: {problem}", inner) => FilePath = filePath;

    /// <summary>The file that failed validation.</summary>
    public string FilePath { get; }
}
