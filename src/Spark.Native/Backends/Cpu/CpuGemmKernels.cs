// Micro-kernels of CpuGemm: C[MR,NR] (+)= Apanel[KC][MR]ᵀ · Bpanel[KC][NR] with the tile in registers.
// Each keeps its MR×NR accumulators in named locals so the JIT holds them in registers (checked with
// DOTNET_JitDisasm: the k loop is NR/16 aligned loads, MR broadcasts and MR·NR/16 FMAs, no spills).

using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Spark.Native.Backends.Cpu;

internal static unsafe partial class CpuGemm
{
    /// <summary>A register-blocked micro-kernel: C[MR,NR] (+)= Apanel[KC][MR]ᵀ · Bpanel[KC][NR].</summary>
    private interface IMicroKernel
    {
        /// <summary>Rows of the register tile.</summary>
        static abstract int MR { get; }

        /// <summary>Columns of the register tile.</summary>
        static abstract int NR { get; }

        /// <summary>
        /// c[i,j] = Σ_p a[p·MR+i]·b[p·NR+j] (+ bias[j] when bias is not null) (+ c[i,j] when addToC), for
        /// i &lt; MR, j &lt; NR; rows of c are ldc floats apart. b is aligned to its vector width (packed panels
        /// start at multiples of NR·KC floats in a 64-byte aligned buffer).
        /// </summary>
        static abstract void Run(int kc, float* a, float* b, float* c, nint ldc, float* bias, bool addToC);
    }

    /// <summary>
    /// 12×32 AVX-512 tile: 24 zmm accumulators + 2 B vectors + 1 broadcast A value of 32 registers. In L1 the
    /// shapes 12×32, 14×32, 8×48 and 6×64 all reach the FMA peak (≈ 136 GFLOP/s per core, 2 FMAs of 16 lanes per
    /// cycle); in the whole GEMM 12×32 and 8×48 tie and 6×64 loses on N = 256. 32 divides the usual model widths.
    /// </summary>
    private struct Avx512Kernel12x32 : IMicroKernel
    {
        public static int MR => 12;

        public static int NR => 32;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run(int kc, float* a, float* b, float* c, nint ldc, float* bias, bool addToC)
        {
            Vector512<float> c00 = default, c01 = default;
            Vector512<float> c10 = default, c11 = default;
            Vector512<float> c20 = default, c21 = default;
            Vector512<float> c30 = default, c31 = default;
            Vector512<float> c40 = default, c41 = default;
            Vector512<float> c50 = default, c51 = default;
            Vector512<float> c60 = default, c61 = default;
            Vector512<float> c70 = default, c71 = default;
            Vector512<float> c80 = default, c81 = default;
            Vector512<float> c90 = default, c91 = default;
            Vector512<float> c100 = default, c101 = default;
            Vector512<float> c110 = default, c111 = default;
            for (int p = 0; p < kc; p++, a += 12, b += 32)
            {
                Vector512<float> b0 = Vector512.LoadAligned(b), b1 = Vector512.LoadAligned(b + 16);
                Vector512<float> ai = Vector512.Create(a[0]);
                c00 = Vector512.FusedMultiplyAdd(ai, b0, c00); c01 = Vector512.FusedMultiplyAdd(ai, b1, c01);
                ai = Vector512.Create(a[1]);
                c10 = Vector512.FusedMultiplyAdd(ai, b0, c10); c11 = Vector512.FusedMultiplyAdd(ai, b1, c11);
                ai = Vector512.Create(a[2]);
                c20 = Vector512.FusedMultiplyAdd(ai, b0, c20); c21 = Vector512.FusedMultiplyAdd(ai, b1, c21);
                ai = Vector512.Create(a[3]);
                c30 = Vector512.FusedMultiplyAdd(ai, b0, c30); c31 = Vector512.FusedMultiplyAdd(ai, b1, c31);
                ai = Vector512.Create(a[4]);
                c40 = Vector512.FusedMultiplyAdd(ai, b0, c40); c41 = Vector512.FusedMultiplyAdd(ai, b1, c41);
                ai = Vector512.Create(a[5]);
                c50 = Vector512.FusedMultiplyAdd(ai, b0, c50); c51 = Vector512.FusedMultiplyAdd(ai, b1, c51);
                ai = Vector512.Create(a[6]);
                c60 = Vector512.FusedMultiplyAdd(ai, b0, c60); c61 = Vector512.FusedMultiplyAdd(ai, b1, c61);
                ai = Vector512.Create(a[7]);
                c70 = Vector512.FusedMultiplyAdd(ai, b0, c70); c71 = Vector512.FusedMultiplyAdd(ai, b1, c71);
                ai = Vector512.Create(a[8]);
                c80 = Vector512.FusedMultiplyAdd(ai, b0, c80); c81 = Vector512.FusedMultiplyAdd(ai, b1, c81);
                ai = Vector512.Create(a[9]);
                c90 = Vector512.FusedMultiplyAdd(ai, b0, c90); c91 = Vector512.FusedMultiplyAdd(ai, b1, c91);
                ai = Vector512.Create(a[10]);
                c100 = Vector512.FusedMultiplyAdd(ai, b0, c100); c101 = Vector512.FusedMultiplyAdd(ai, b1, c101);
                ai = Vector512.Create(a[11]);
                c110 = Vector512.FusedMultiplyAdd(ai, b0, c110); c111 = Vector512.FusedMultiplyAdd(ai, b1, c111);
            }
            Vector512<float> bias0 = bias == null ? default : Vector512.Load(bias);
            Vector512<float> bias1 = bias == null ? default : Vector512.Load(bias + 16);
            Store(c, c00, bias0, addToC); Store(c + 16, c01, bias1, addToC); c += ldc;
            Store(c, c10, bias0, addToC); Store(c + 16, c11, bias1, addToC); c += ldc;
            Store(c, c20, bias0, addToC); Store(c + 16, c21, bias1, addToC); c += ldc;
            Store(c, c30, bias0, addToC); Store(c + 16, c31, bias1, addToC); c += ldc;
            Store(c, c40, bias0, addToC); Store(c + 16, c41, bias1, addToC); c += ldc;
            Store(c, c50, bias0, addToC); Store(c + 16, c51, bias1, addToC); c += ldc;
            Store(c, c60, bias0, addToC); Store(c + 16, c61, bias1, addToC); c += ldc;
            Store(c, c70, bias0, addToC); Store(c + 16, c71, bias1, addToC); c += ldc;
            Store(c, c80, bias0, addToC); Store(c + 16, c81, bias1, addToC); c += ldc;
            Store(c, c90, bias0, addToC); Store(c + 16, c91, bias1, addToC); c += ldc;
            Store(c, c100, bias0, addToC); Store(c + 16, c101, bias1, addToC); c += ldc;
            Store(c, c110, bias0, addToC); Store(c + 16, c111, bias1, addToC);
        }
    }

    /// <summary>c[0..16) = x + bias (+ c). A zero bias vector stands for no bias: x + 0 = x for every x but −0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector512<float> x, Vector512<float> bias, bool addToC)
    {
        x += bias;
        if (addToC)
            x += Vector512.Load(c);
        Vector512.Store(x, c);
    }

    /// <summary>6×16 AVX2 tile: 12 ymm accumulators + 2 B vectors + 1 broadcast of 16 registers.</summary>
    private struct Avx2Kernel6x16 : IMicroKernel
    {
        public static int MR => 6;

        public static int NR => 16;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Run(int kc, float* a, float* b, float* c, nint ldc, float* bias, bool addToC)
        {
            Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
            Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
            for (int p = 0; p < kc; p++, a += 6, b += 16)
            {
                Vector256<float> b0 = Vector256.LoadAligned(b), b1 = Vector256.LoadAligned(b + 8);
                Vector256<float> ai = Vector256.Create(a[0]);
                c00 = MulAdd(ai, b0, c00); c01 = MulAdd(ai, b1, c01);
                ai = Vector256.Create(a[1]);
                c10 = MulAdd(ai, b0, c10); c11 = MulAdd(ai, b1, c11);
                ai = Vector256.Create(a[2]);
                c20 = MulAdd(ai, b0, c20); c21 = MulAdd(ai, b1, c21);
                ai = Vector256.Create(a[3]);
                c30 = MulAdd(ai, b0, c30); c31 = MulAdd(ai, b1, c31);
                ai = Vector256.Create(a[4]);
                c40 = MulAdd(ai, b0, c40); c41 = MulAdd(ai, b1, c41);
                ai = Vector256.Create(a[5]);
                c50 = MulAdd(ai, b0, c50); c51 = MulAdd(ai, b1, c51);
            }
            Vector256<float> bias0 = bias == null ? default : Vector256.Load(bias);
            Vector256<float> bias1 = bias == null ? default : Vector256.Load(bias + 8);
            StoreRow(c, c00, c01, bias0, bias1, addToC); c += ldc;
            StoreRow(c, c10, c11, bias0, bias1, addToC); c += ldc;
            StoreRow(c, c20, c21, bias0, bias1, addToC); c += ldc;
            StoreRow(c, c30, c31, bias0, bias1, addToC); c += ldc;
            StoreRow(c, c40, c41, bias0, bias1, addToC); c += ldc;
            StoreRow(c, c50, c51, bias0, bias1, addToC);
        }

        /// <summary>Fused where the hardware has FMA (a JIT-time constant), else multiply then add.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> MulAdd(Vector256<float> x, Vector256<float> y, Vector256<float> z)
            => System.Runtime.Intrinsics.X86.Fma.IsSupported ? Vector256.FusedMultiplyAdd(x, y, z) : x * y + z;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void StoreRow(float* c, Vector256<float> x0, Vector256<float> x1,
            Vector256<float> bias0, Vector256<float> bias1, bool addToC)
        {
            x0 += bias0;
            x1 += bias1;
            if (addToC)
            {
                x0 += Vector256.Load(c);
                x1 += Vector256.Load(c + 8);
            }
            Vector256.Store(x0, c);
            Vector256.Store(x1, c + 8);
        }
    }

    /// <summary>4×4 portable tile for machines without wide vectors.</summary>
    private struct ScalarKernel4x4 : IMicroKernel
    {
        public static int MR => 4;

        public static int NR => 4;

        public static void Run(int kc, float* a, float* b, float* c, nint ldc, float* bias, bool addToC)
        {
            float* acc = stackalloc float[16];
            for (int p = 0; p < kc; p++, a += 4, b += 4)
            {
                for (int i = 0; i < 4; i++)
                {
                    float ai = a[i];
                    acc[i * 4 + 0] += ai * b[0];
                    acc[i * 4 + 1] += ai * b[1];
                    acc[i * 4 + 2] += ai * b[2];
                    acc[i * 4 + 3] += ai * b[3];
                }
            }
            for (int i = 0; i < 4; i++, c += ldc)
            {
                for (int j = 0; j < 4; j++)
                {
                    float value = acc[i * 4 + j] + (bias == null ? 0f : bias[j]);
                    c[j] = addToC ? c[j] + value : value;
                }
            }
        }
    }
}
