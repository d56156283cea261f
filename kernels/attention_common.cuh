// Shared pieces of the attention kernels (attention.cu, attention_backward.cu): tensor-core primitives as inline PTX
// (sm_80+), the tile loader, and the scalar dot product of the generic row kernels.
// Dimensions: NH query heads, NKV key/value heads, HD head dim; bf16 storage, fp32 arithmetic.
//
// Softmax runs in the log2 domain: s = q·k · scaleLog2 with scaleLog2 = log2(e)/√HD, p = exp2(s − max), and the
// log-sum-exp the backward recomputes (lse) is in the same units, so p = exp2(s − lse).
#pragma once
#include "common.cuh"

#define ATTN_NEG_INF __int_as_float(0xff800000)
#define ATTN_POS_INF __int_as_float(0x7f800000)

// Dynamic shared memory of every attention kernel (one declaration for all template instances).
extern __shared__ __align__(16) unsigned char attention_smem[];

// ---- tensor-core primitives (mma.sync m16n8k16, bf16 in, fp32 accumulate)
//
// Fragment layouts (PTX ISA, "Matrix fragments for mma.m16n8k16"), g = lane / 4, t = lane % 4, two bf16 per register
// (lower column in the low half):
//   A 16×16 row-major: a0 (row g, cols 2t, 2t+1), a1 (row g+8, same cols), a2 (row g, cols 2t+8, +9), a3 (row g+8, cols 2t+8, +9)
//   B 16×8 (k × n):    b0 (k 2t, 2t+1; n g), b1 (k 2t+8, 2t+9; n g)
//   C 16×8 fp32:       c0, c1 (row g, cols 2t, 2t+1), c2, c3 (row g+8, cols 2t, 2t+1)
// So two adjacent C tiles (n 0–7 and 8–15) of one 16-row strip are, packed to bf16, the A fragment of that strip with
// k = those 16 columns: a0 = C0[0,1], a1 = C0[2,3], a2 = C1[0,1], a3 = C1[2,3] (pack_a below).

__device__ __forceinline__ unsigned smem_addr(const void* p)
{
    unsigned r;
    asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(r) : "l"(p));
    return r;
}

// Four 8×8 bf16 matrices from shared memory; lane l gives the address of row l % 8 of matrix l / 8. Without .trans
// register i holds, of matrix i, row g and columns 2t, 2t+1; with .trans, rows 2t, 2t+1 of column g.
__device__ __forceinline__ void ldsm_x4(unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3, unsigned addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}

__device__ __forceinline__ void ldsm_x4_trans(unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3, unsigned addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}

// c += a · b (16×16 · 16×8, fp32 accumulators).
__device__ __forceinline__ void mma_bf16(float* c, const unsigned* a, unsigned b0, unsigned b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as bf16x2, round to nearest even: lo in the low half.
__device__ __forceinline__ unsigned pack_bf16(float lo, float hi)
{
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// The A fragment (16 rows × 16 k) made of two adjacent fp32 C tiles c0 (k 0–7) and c1 (k 8–15).
__device__ __forceinline__ void pack_a(unsigned* a, const float* c0, const float* c1)
{
    a[0] = pack_bf16(c0[0], c0[1]);
    a[1] = pack_bf16(c0[2], c0[3]);
    a[2] = pack_bf16(c1[0], c1[1]);
    a[3] = pack_bf16(c1[2], c1[3]);
}

// Shared-memory operand addresses for a 16-row strip starting at `tile` (row-major, LD elements per row), k block of
// 16 columns at `col`:
//   a_addr:      the A fragment of rows 0–15 (matrices: rows 0–7|8–15 × cols 0–7, then × cols 8–15) = ldsm_x4
//   b_pair_addr: B fragments of two n tiles where the stored rows are n (keys) and columns k: matrices (n 0–7, k 0–7),
//                (n 0–7, k 8–15), (n 8–15, k 0–7), (n 8–15, k 8–15) → b0, b1 of n tile 0, then b0, b1 of n tile 1 = ldsm_x4
//   a_addr + ldsm_x4_trans: B fragments of two n tiles where the stored rows are k and columns n (row-major B, e.g.
//                V with k = key, n = d): matrices (k 0–7, n 0–7), (k 8–15, n 0–7), (k 0–7, n 8–15), (k 8–15, n 8–15)
//                transposed → b0, b1 of n tile 0, then of n tile 1.
template <int LD>
__device__ __forceinline__ unsigned a_addr(const bf16* tile, int row, int col, int lane)
{
    return smem_addr(tile + (row + (lane & 15)) * LD + col + (lane >> 4) * 8);
}

template <int LD>
__device__ __forceinline__ unsigned b_pair_addr(const bf16* tile, int row, int col, int lane)
{
    return smem_addr(tile + (row + (lane & 7) + (lane >> 4) * 8) * LD + col + ((lane >> 3) & 1) * 8);
}

// ---- asynchronous copies global → shared (16 bytes, zero-filled past the valid rows)

__device__ __forceinline__ void cp_async16(unsigned dst, const void* src, int bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(dst), "l"(src), "r"(bytes));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }

template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" :: "n"(N)); }

// ROWS × HD bf16 from global rows `stride` elements apart into shared rows of LD elements; rows ≥ valid become zeros
// (their source address is the tile base, which cp.async does not read with a source size of 0).
template <int HD, int LD, int ROWS, int THREADS>
__device__ __forceinline__ void load_tile(bf16* shared, const bf16* global, long long stride, int valid)
{
    constexpr int CHUNKS = HD / 8; // 16-byte chunks per row
    for (int c = threadIdx.x; c < ROWS * CHUNKS; c += THREADS)
    {
        int r = c / CHUNKS, x = (c % CHUNKS) * 8;
        bool ok = r < valid;
        cp_async16(smem_addr(shared + r * LD + x), ok ? global + r * stride + x : global, ok ? 16 : 0);
    }
}

// ---- generic row kernels (any head dim)

// Σ a[d]·b[d] over n bf16; vec: n % 8 == 0 and both 16-byte aligned (uint4 loads). The order of the sum depends only
// on (n, vec), so the forward, the statistics pass and the backward recompute the same scores.
__device__ __forceinline__ float dot_bf16(const bf16* __restrict__ a, const bf16* __restrict__ b, int n, int vec)
{
    float s = 0.0f;
    if (vec)
    {
        const uint4* a4 = (const uint4*)a;
        const uint4* b4 = (const uint4*)b;
        for (int i = 0; i < n / 8; i++)
        {
            uint4 x = a4[i], y = b4[i];
            unsigned xs[4] = {x.x, x.y, x.z, x.w}, ys[4] = {y.x, y.y, y.z, y.w};
#pragma unroll
            for (int j = 0; j < 4; j++)
            {
                s += __uint_as_float(xs[j] << 16) * __uint_as_float(ys[j] << 16);
                s += __uint_as_float(xs[j] & 0xffff0000u) * __uint_as_float(ys[j] & 0xffff0000u);
            }
        }
    }
    else
    {
        for (int d = 0; d < n; d++) s += bf16_to_float(a[d]) * bf16_to_float(b[d]);
    }
    return s;
}

// Head dims each lane of a generic row kernel accumulates per pass: lane, lane + 32, … (256 dims a pass; larger head
// dims take several passes, recomputing the scores).
#define ATTN_ROW_DIMS 8
#define ATTN_ROW_PASS (32 * ATTN_ROW_DIMS)
