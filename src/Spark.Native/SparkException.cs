namespace Spark.Native;

/// <summary>
/// An error the user can act on: bad input (a file, a tensor, a config field, an id) or an unsupported feature.
/// The message is one line and names what failed and what was expected.
/// </summary>
public class SparkException : Exception
{
    /// <summary>Creates the exception with a one-line message.</summary>
    public SparkException(string message) : base(message) { }

    /// <summary>Creates the exception with a one-line message and the underlying cause.</summary>
    public SparkException(string message, Exception inner) : base(message, inner) { }
}
