using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Spark.Native.Interop;

/// <summary>cudaDataType_t (library_types.h).</summary>
internal enum CudaDataType
{
    R32F = 0,   // CUDA_R_32F
    R64F = 1,   // CUDA_R_64F
    R16F = 2,   // CUDA_R_16F
    R16BF = 14, // CUDA_R_16BF
    R8FE4M3 = 28, // CUDA_R_8F_E4M3
    R8FE5M2 = 29, // CUDA_R_8F_E5M2
}

/// <summary>cublasComputeType_t (cublas_api.h).</summary>
internal enum CublasComputeType
{
    Compute16F = 64,         // CUBLAS_COMPUTE_16F
    Compute32F = 68,         // CUBLAS_COMPUTE_32F
    Compute32FPedantic = 69, // CUBLAS_COMPUTE_32F_PEDANTIC
    Compute64F = 70,         // CUBLAS_COMPUTE_64F
    Compute32FFast16BF = 75, // CUBLAS_COMPUTE_32F_FAST_16BF
    Compute32FFastTF32 = 77, // CUBLAS_COMPUTE_32F_FAST_TF32
}

/// <summary>cublasOperation_t (cublas_api.h).</summary>
internal enum CublasOperation
{
    None = 0,      // CUBLAS_OP_N
    Transpose = 1, // CUBLAS_OP_T
}

/// <summary>cublasLtMatmulDescAttributes_t (cublasLt.h); the value type of each attribute in its comment.</summary>
internal enum CublasLtMatmulDescAttribute
{
    ComputeType = 0,      // CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, int32 (cublasComputeType_t)
    ScaleType = 1,        // CUBLASLT_MATMUL_DESC_SCALE_TYPE, int32 (cudaDataType_t)
    PointerMode = 2,      // CUBLASLT_MATMUL_DESC_POINTER_MODE, int32
    TransA = 3,           // CUBLASLT_MATMUL_DESC_TRANSA, int32 (cublasOperation_t)
    TransB = 4,           // CUBLASLT_MATMUL_DESC_TRANSB, int32
    TransC = 5,           // CUBLASLT_MATMUL_DESC_TRANSC, int32
    Epilogue = 7,         // CUBLASLT_MATMUL_DESC_EPILOGUE, uint32 (cublasLtEpilogue_t)
    BiasPointer = 8,      // CUBLASLT_MATMUL_DESC_BIAS_POINTER, void* (device)
    BiasBatchStride = 10, // CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, int64
    EpilogueAuxPointer = 11, // CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, void*
    EpilogueAuxLd = 12,   // CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, int64
    FastAccum = 25,       // CUBLASLT_MATMUL_DESC_FAST_ACCUM, int8
    BiasDataType = 26,    // CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, int32 (cudaDataType_t)
}

/// <summary>cublasLtEpilogue_t (cublasLt.h).</summary>
internal enum CublasLtEpilogue : uint
{
    Default = 1,     // CUBLASLT_EPILOGUE_DEFAULT
    Relu = 2,        // CUBLASLT_EPILOGUE_RELU
    Bias = 4,        // CUBLASLT_EPILOGUE_BIAS
    ReluBias = 6,    // CUBLASLT_EPILOGUE_RELU_BIAS
    Gelu = 32,       // CUBLASLT_EPILOGUE_GELU
    GeluBias = 36,   // CUBLASLT_EPILOGUE_GELU_BIAS
    BGradA = 256,    // CUBLASLT_EPILOGUE_BGRADA: bias gradient = row sums of A
    BGradB = 512,    // CUBLASLT_EPILOGUE_BGRADB: bias gradient = column sums of B
}

/// <summary>cublasLtMatrixLayoutAttribute_t (cublasLt.h).</summary>
internal enum CublasLtMatrixLayoutAttribute
{
    Type = 0,               // CUBLASLT_MATRIX_LAYOUT_TYPE, uint32 (cudaDataType)
    Order = 1,              // CUBLASLT_MATRIX_LAYOUT_ORDER, int32 (cublasLtOrder_t: COL = 0, ROW = 1)
    Rows = 2,               // CUBLASLT_MATRIX_LAYOUT_ROWS, uint64
    Cols = 3,               // CUBLASLT_MATRIX_LAYOUT_COLS, uint64
    Ld = 4,                 // CUBLASLT_MATRIX_LAYOUT_LD, int64
    BatchCount = 5,         // CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, int32
    StridedBatchOffset = 6, // CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, int64 (elements)
}

/// <summary>cublasLtOrder_t (cublasLt.h).</summary>
internal enum CublasLtOrder
{
    Col = 0, // CUBLASLT_ORDER_COL
    Row = 1, // CUBLASLT_ORDER_ROW
}

/// <summary>cublasLtMatmulPreferenceAttributes_t (cublasLt.h).</summary>
internal enum CublasLtMatmulPreferenceAttribute
{
    SearchMode = 0,        // CUBLASLT_MATMUL_PREF_SEARCH_MODE, uint32
    MaxWorkspaceBytes = 1, // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64
    MinAlignmentABytes = 5, // CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, uint32 (default 256)
    MinAlignmentBBytes = 6, // CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, uint32
    MinAlignmentCBytes = 7, // CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, uint32
    MinAlignmentDBytes = 8, // CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, uint32
}

/// <summary>cublasLtMatmulAlgo_t: an opaque 8 × uint64 (64 bytes) structure.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct CublasLtMatmulAlgo
{
    public fixed ulong Data[8];
}

/// <summary>cublasLtMatmulHeuristicResult_t: algo, workspaceSize (size_t), state (cublasStatus_t), wavesCount (float), reserved int[4]; 96 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct CublasLtMatmulHeuristicResult
{
    public CublasLtMatmulAlgo Algo;
    public nuint WorkspaceSize;
    public int State;
    public float WavesCount;
    public fixed int Reserved[4];
}

/// <summary>
/// cuBLASLt (cublasLt.h): the matmul library. Bindings plus checked helpers; cublasStatus_t is an int and
/// <see cref="Check"/> turns non-zero (CUBLAS_STATUS_SUCCESS = 0) into <see cref="CudaException"/>.
/// Device pointers are CUdeviceptr values (ulong); cudaStream_t and CUstream are the same handle.
/// </summary>
internal static unsafe partial class CublasLt
{
    static CublasLt() => NativeLibraries.EnsureRegistered();

    private const string Lib = NativeLibraries.CublasLt;

    [LibraryImport(Lib)] internal static partial int cublasLtCreate(IntPtr* handle);
    [LibraryImport(Lib)] internal static partial int cublasLtDestroy(IntPtr handle);
    [LibraryImport(Lib)] internal static partial nuint cublasLtGetVersion();
    [LibraryImport(Lib)] internal static partial int cublasLtMatmulDescCreate(IntPtr* desc, CublasComputeType computeType, CudaDataType scaleType);
    [LibraryImport(Lib)] internal static partial int cublasLtMatmulDescDestroy(IntPtr desc);
    [LibraryImport(Lib)] internal static partial int cublasLtMatmulDescSetAttribute(IntPtr desc, CublasLtMatmulDescAttribute attribute, void* value, nuint size);
    [LibraryImport(Lib)] internal static partial int cublasLtMatrixLayoutCreate(IntPtr* layout, CudaDataType type, ulong rows, ulong cols, long ld);
    [LibraryImport(Lib)] internal static partial int cublasLtMatrixLayoutDestroy(IntPtr layout);
    [LibraryImport(Lib)] internal static partial int cublasLtMatrixLayoutSetAttribute(IntPtr layout, CublasLtMatrixLayoutAttribute attribute, void* value, nuint size);
    [LibraryImport(Lib)] internal static partial int cublasLtMatmulPreferenceCreate(IntPtr* preference);
    [LibraryImport(Lib)] internal static partial int cublasLtMatmulPreferenceDestroy(IntPtr preference);
    [LibraryImport(Lib)] internal static partial int cublasLtMatmulPreferenceSetAttribute(IntPtr preference, CublasLtMatmulPreferenceAttribute attribute, void* value, nuint size);
    [LibraryImport(Lib)]
    internal static partial int cublasLtMatmulAlgoGetHeuristic(IntPtr handle, IntPtr operation, IntPtr a, IntPtr b, IntPtr c, IntPtr d,
        IntPtr preference, int requestedCount, CublasLtMatmulHeuristicResult* results, int* returnedCount);
    [LibraryImport(Lib)]
    internal static partial int cublasLtMatmul(IntPtr handle, IntPtr operation, void* alpha, ulong a, IntPtr aLayout, ulong b, IntPtr bLayout,
        void* beta, ulong c, IntPtr cLayout, ulong d, IntPtr dLayout, CublasLtMatmulAlgo* algo, ulong workspace, nuint workspaceBytes, IntPtr stream);
    [LibraryImport(Lib)] internal static partial byte* cublasLtGetStatusName(int status);
    [LibraryImport(Lib)] internal static partial byte* cublasLtGetStatusString(int status);

    public static void Check(int status, [CallerArgumentExpression(nameof(status))] string? call = null)
    {
        if (status != 0) throw Error(status, call);
    }

    public static CudaException Error(int status, string? call) =>
        new(NativeLibraries.CublasLt, status, Marshal.PtrToStringUTF8((IntPtr)cublasLtGetStatusName(status)) ?? $"cublasStatus {status}",
            Marshal.PtrToStringUTF8((IntPtr)cublasLtGetStatusString(status)) ?? "", call);

    /// <summary>cuBLASLt's version, e.g. 130001 → (13, 0, 1) (CUBLAS_VERSION = major·10000 + minor·100 + patch).</summary>
    public static (int Major, int Minor, int Patch) Version()
    {
        int v = (int)cublasLtGetVersion();
        return (v / 10000, v / 100 % 100, v % 100);
    }

    public static CublasLtHandle Create()
    {
        IntPtr h;
        Check(cublasLtCreate(&h));
        var handle = new CublasLtHandle();
        Marshal.InitHandle(handle, h);
        return handle;
    }

    public static CublasLtMatmulDescHandle CreateMatmulDesc(CublasComputeType compute, CudaDataType scale)
    {
        IntPtr h;
        Check(cublasLtMatmulDescCreate(&h, compute, scale));
        var handle = new CublasLtMatmulDescHandle();
        Marshal.InitHandle(handle, h);
        return handle;
    }

    public static void SetAttribute<T>(CublasLtMatmulDescHandle desc, CublasLtMatmulDescAttribute attribute, T value) where T : unmanaged =>
        Check(cublasLtMatmulDescSetAttribute(desc.DangerousGetHandle(), attribute, &value, (nuint)sizeof(T)));

    public static CublasLtMatrixLayoutHandle CreateLayout(CudaDataType type, long rows, long cols, long ld)
    {
        IntPtr h;
        Check(cublasLtMatrixLayoutCreate(&h, type, (ulong)rows, (ulong)cols, ld));
        var handle = new CublasLtMatrixLayoutHandle();
        Marshal.InitHandle(handle, h);
        return handle;
    }

    public static void SetAttribute<T>(CublasLtMatrixLayoutHandle layout, CublasLtMatrixLayoutAttribute attribute, T value) where T : unmanaged =>
        Check(cublasLtMatrixLayoutSetAttribute(layout.DangerousGetHandle(), attribute, &value, (nuint)sizeof(T)));

    /// <summary>Makes a layout a strided batch: <paramref name="count"/> matrices, <paramref name="strideElements"/> apart.</summary>
    public static void SetBatch(CublasLtMatrixLayoutHandle layout, int count, long strideElements)
    {
        SetAttribute(layout, CublasLtMatrixLayoutAttribute.BatchCount, count);
        SetAttribute(layout, CublasLtMatrixLayoutAttribute.StridedBatchOffset, strideElements);
    }

    public static CublasLtMatmulPreferenceHandle CreatePreference(ulong maxWorkspaceBytes)
    {
        IntPtr h;
        Check(cublasLtMatmulPreferenceCreate(&h));
        var handle = new CublasLtMatmulPreferenceHandle();
        Marshal.InitHandle(handle, h);
        Check(cublasLtMatmulPreferenceSetAttribute(h, CublasLtMatmulPreferenceAttribute.MaxWorkspaceBytes, &maxWorkspaceBytes, sizeof(ulong)));
        return handle;
    }

    public static void SetAttribute<T>(CublasLtMatmulPreferenceHandle preference, CublasLtMatmulPreferenceAttribute attribute, T value) where T : unmanaged =>
        Check(cublasLtMatmulPreferenceSetAttribute(preference.DangerousGetHandle(), attribute, &value, (nuint)sizeof(T)));
}

internal sealed class CublasLtHandle : SafeHandle
{
    public CublasLtHandle() : base(IntPtr.Zero, ownsHandle: true) { }
    public override bool IsInvalid => handle == IntPtr.Zero;
    protected override bool ReleaseHandle() => CublasLt.cublasLtDestroy(handle) == 0;
}

internal sealed class CublasLtMatmulDescHandle : SafeHandle
{
    public CublasLtMatmulDescHandle() : base(IntPtr.Zero, ownsHandle: true) { }
    public override bool IsInvalid => handle == IntPtr.Zero;
    protected override bool ReleaseHandle() => CublasLt.cublasLtMatmulDescDestroy(handle) == 0;
}

internal sealed class CublasLtMatrixLayoutHandle : SafeHandle
{
    public CublasLtMatrixLayoutHandle() : base(IntPtr.Zero, ownsHandle: true) { }
    public override bool IsInvalid => handle == IntPtr.Zero;
    protected override bool ReleaseHandle() => CublasLt.cublasLtMatrixLayoutDestroy(handle) == 0;
}

internal sealed class CublasLtMatmulPreferenceHandle : SafeHandle
{
    public CublasLtMatmulPreferenceHandle() : base(IntPtr.Zero, ownsHandle: true) { }
    public override bool IsInvalid => handle == IntPtr.Zero;
    protected override bool ReleaseHandle() => CublasLt.cublasLtMatmulPreferenceDestroy(handle) == 0;
}
