namespace Spark.Native;

/// <summary>
/// A failed call into the CUDA driver, NVRTC or cuBLASLt. The message names the library, the failing call
/// expression, the error name and its text; for a failed kernel compile it ends with the NVRTC program log.
/// </summary>
public sealed class CudaException : SparkException
{
    /// <summary>Which library failed: "cuda", "nvrtc" or "cublasLt".</summary>
    public string Library { get; }

    /// <summary>The numeric status code (CUresult, nvrtcResult or cublasStatus_t).</summary>
    public int Code { get; }

    /// <summary>The status name, e.g. CUDA_ERROR_OUT_OF_MEMORY or NVRTC_ERROR_COMPILATION.</summary>
    public string ErrorName { get; }

    /// <summary>The NVRTC program log of a failed compile; empty otherwise.</summary>
    public string Log { get; }

    internal CudaException(string library, int code, string errorName, string errorText, string? call, string log = "")
        : base(Format(library, code, errorName, errorText, call, log))
    {
        Library = library;
        Code = code;
        ErrorName = errorName;
        Log = log;
    }

    private static string Format(string library, int code, string name, string text, string? call, string log)
    {
        string head = $"{library}: {call ?? "call"} failed with {name} ({code})";
        if (text.Length > 0 && text != name) head += $": {text}";
        return log.Length > 0 ? $"{head}\n{log.TrimEnd()}" : head;
    }
}
