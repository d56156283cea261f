using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Spark.Native.Interop;

/// <summary>nvrtcResult (nvrtc.h).</summary>
internal enum NvrtcResult
{
    Success = 0,
    OutOfMemory = 1,
    ProgramCreationFailure = 2,
    InvalidInput = 3,
    InvalidProgram = 4,
    InvalidOption = 5,
    Compilation = 6,
    BuiltinOperationFailure = 7,
    NoNameExpressionsAfterCompilation = 8,
    NoLoweredNamesBeforeCompilation = 9,
    NameExpressionNotValid = 10,
    InternalError = 11,
}

/// <summary>An nvrtcProgram, destroyed by nvrtcDestroyProgram.</summary>
internal sealed class NvrtcProgramHandle : SafeHandle
{
    public NvrtcProgramHandle() : base(IntPtr.Zero, ownsHandle: true) { }
    public override bool IsInvalid => handle == IntPtr.Zero;
    protected override unsafe bool ReleaseHandle()
    {
        IntPtr p = handle;
        return Nvrtc.nvrtcDestroyProgram(&p) == NvrtcResult.Success;
    }
}

/// <summary>NVRTC (nvrtc.h): the runtime CUDA C++ compiler. Bindings plus a few checked helpers.</summary>
internal static unsafe partial class Nvrtc
{
    static Nvrtc() => NativeLibraries.EnsureRegistered();

    private const string Lib = NativeLibraries.Nvrtc;

    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcVersion(int* major, int* minor);
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcGetNumSupportedArchs(int* count);
    [LibraryImport(Lib)]
    internal static partial NvrtcResult nvrtcCreateProgram(IntPtr* program, byte* source, byte* name, int headerCount, byte** headers, byte** includeNames);
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcCompileProgram(IntPtr program, int optionCount, byte** options);
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcGetProgramLogSize(IntPtr program, nuint* size);
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcGetProgramLog(IntPtr program, byte* log);
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcGetPTXSize(IntPtr program, nuint* size);
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcGetPTX(IntPtr program, byte* ptx);
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcGetCUBINSize(IntPtr program, nuint* size);
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcGetCUBIN(IntPtr program, byte* cubin);
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcDestroyProgram(IntPtr* program);
    [LibraryImport(Lib)] internal static partial byte* nvrtcGetErrorString(NvrtcResult result);

    /// <summary>Throws <see cref="CudaException"/> unless the call succeeded; the message carries the call expression.</summary>
    public static void Check(NvrtcResult result, [CallerArgumentExpression(nameof(result))] string? call = null)
    {
        if (result != NvrtcResult.Success) throw Error(result, call);
    }

    public static CudaException Error(NvrtcResult result, string? call, string log = "") =>
        new(NativeLibraries.Nvrtc, (int)result, ErrorName(result), Describe(result), call, log);

    public static string ErrorName(NvrtcResult result)
    {
        try { return Marshal.PtrToStringUTF8((IntPtr)nvrtcGetErrorString(result)) ?? $"NVRTC error {(int)result}"; }
        catch (DllNotFoundException) { return $"NVRTC error {(int)result}"; }
    }

    private static string Describe(NvrtcResult result) => result switch
    {
        NvrtcResult.OutOfMemory => "out of host memory",
        NvrtcResult.InvalidOption => "an option is not accepted by this NVRTC version",
        NvrtcResult.Compilation => "the CUDA source does not compile",
        NvrtcResult.InvalidInput => "invalid argument",
        _ => "",
    };

    /// <summary>NVRTC's version as (major, minor), e.g. (12, 8).</summary>
    public static (int Major, int Minor) Version()
    {
        int major, minor;
        Check(nvrtcVersion(&major, &minor));
        return (major, minor);
    }

    /// <summary>The sm_XX numbers this NVRTC compiles for, or empty when the query is absent (before 11.2).</summary>
    public static int[] SupportedArchs()
    {
        if (!NativeLibraries.TryGetExport(NativeLibraries.Nvrtc, "nvrtcGetSupportedArchs", out var address)) return [];
        int count;
        Check(nvrtcGetNumSupportedArchs(&count));
        var archs = new int[count];
        fixed (int* p = archs)
            Check(((delegate* unmanaged<int*, NvrtcResult>)address)(p));
        return archs;
    }

    /// <summary>Creates a program from a source and its headers (each header's include name and text).</summary>
    public static NvrtcProgramHandle CreateProgram(string source, string name, IReadOnlyList<(string IncludeName, string Text)> headers)
    {
        var strings = new List<IntPtr>();
        try
        {
            byte* Utf8(string s) { var p = Marshal.StringToCoTaskMemUTF8(s); strings.Add(p); return (byte*)p; }
            var headerTexts = stackalloc byte*[Math.Max(1, headers.Count)];
            var includeNames = stackalloc byte*[Math.Max(1, headers.Count)];
            for (int i = 0; i < headers.Count; i++)
            {
                headerTexts[i] = Utf8(headers[i].Text);
                includeNames[i] = Utf8(headers[i].IncludeName);
            }
            IntPtr program;
            Check(nvrtcCreateProgram(&program, Utf8(source), Utf8(name), headers.Count, headerTexts, includeNames));
            var handle = new NvrtcProgramHandle();
            Marshal.InitHandle(handle, program);
            return handle;
        }
        finally
        {
            foreach (var p in strings) Marshal.FreeCoTaskMem(p);
        }
    }

    /// <summary>Compiles; returns false (and leaves the log to <see cref="ProgramLog"/>) when the source does not compile.</summary>
    public static bool Compile(NvrtcProgramHandle program, IReadOnlyList<string> options)
    {
        var strings = new IntPtr[options.Count];
        try
        {
            var argv = stackalloc byte*[Math.Max(1, options.Count)];
            for (int i = 0; i < options.Count; i++) argv[i] = (byte*)(strings[i] = Marshal.StringToCoTaskMemUTF8(options[i]));
            var result = nvrtcCompileProgram(program.DangerousGetHandle(), options.Count, argv);
            if (result == NvrtcResult.Compilation) return false;
            if (result != NvrtcResult.Success)
                throw Error(result, $"nvrtcCompileProgram({string.Join(' ', options)})", ProgramLog(program));
            return true;
        }
        finally
        {
            foreach (var p in strings) if (p != IntPtr.Zero) Marshal.FreeCoTaskMem(p);
        }
    }

    public static string ProgramLog(NvrtcProgramHandle program)
    {
        nuint size;
        Check(nvrtcGetProgramLogSize(program.DangerousGetHandle(), &size));
        var bytes = new byte[(int)size];
        fixed (byte* p = bytes) Check(nvrtcGetProgramLog(program.DangerousGetHandle(), p));
        return System.Text.Encoding.UTF8.GetString(bytes).TrimEnd('\0');
    }

    public static byte[] Cubin(NvrtcProgramHandle program)
    {
        nuint size;
        Check(nvrtcGetCUBINSize(program.DangerousGetHandle(), &size));
        var bytes = new byte[(int)size];
        fixed (byte* p = bytes) Check(nvrtcGetCUBIN(program.DangerousGetHandle(), p));
        return bytes;
    }

    public static string Ptx(NvrtcProgramHandle program)
    {
        nuint size;
        Check(nvrtcGetPTXSize(program.DangerousGetHandle(), &size));
        var bytes = new byte[(int)size];
        fixed (byte* p = bytes) Check(nvrtcGetPTX(program.DangerousGetHandle(), p));
        return System.Text.Encoding.UTF8.GetString(bytes).TrimEnd('\0');
    }
}
