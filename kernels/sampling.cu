// Token sampling on the GPU from bf16 logit rows [R, V]: greedy, or temperature → top-k → top-p → inverse-CDF draw,
// with the CPU SamplingRule's order, ties and boundaries (src/Spark.Native/Generation/Sampling.cs) and the uniform the
// host draws for the row. Only the token ids leave the GPU.
//
// Dimension legend: R rows, V vocabulary. One block of 1024 threads per row.
//
// The logits are bf16, so a row has at most 65 536 distinct values ("levels"), and every token of a level has the same
// probability. The CPU's order is levels by descending logit, then tokens of a level by increasing id; so instead of a
// sort the kernel works on per-level token counts:
//   A. the max, its first and last index (one pass over the row); greedy rows stop here;
//   B. candidates (logit ≥ max − 40·T, the CPU's floor) counted per high byte of the order key (256 bins, one pass);
//      the bin counts say which bin holds the k-th value and how many tokens can be kept;
//   C. exact per-level counts of the kept non-empty bins, 32 bins (8192 levels) per pass in shared memory (a
//      "window"; real rows need one, the worst row 8): the k-th value, each window's mass, the top-p cut and the drawn
//      level come from block scans over those counts, in the CPU's order;
//   D. the drawn token is the j-th id (in id order) of the drawn level (one pass, warp ballots).
// Masses are fixed point: level mass = count · round(p · 2^s), p the CPU's float probability exp((x − max) / T)
// (computed in double, rounded to float, as the CPU does), with s chosen so that N · 2^s < 2^63 for the N tokens that
// can be kept (s = 45 for a whole 151 936-token row). Prefix sums are then exact, order-free and deterministic; they
// differ from the CPU's double sums by under N · 2^-(s+1) of the mass, and a token with p < 2^-(s+1) gets no mass.
// So the GPU picks the CPU's token except when the uniform (or the top-p threshold) lies within about 1e-9 of a CDF
// boundary, well inside float rounding.
#include "common.cuh"

#define SAMPLE_THREADS 1024
#define WINDOW_BINS 32          // high-byte bins per window: 32 · 256 levels · 4 bytes = 32 KiB of shared counts
#define MAX_WINDOWS 8           // 256 bins / 32
#define NAN_KEY 0x10000u        // above every number: Argmax takes the first NaN, as the CPU's
#define NO_KEY 0x20000u
#define FULL_MASK 0xffffffffu

// Per-row settings, laid out as the host's SampleSettings (32 bytes).
struct SampleSettings
{
    float temperature;       // ≤ 0: greedy
    int top_k;               // ≤ 0: off
    float top_p;             // not < 1: off
    int unused;
    double uniform;          // CounterRng.Uniform(seed, counter), the CPU's draw
    double inv_temperature;  // 1.0 / (double)temperature, as the CPU computes it
};

struct SampleShared
{
    unsigned int hist[WINDOW_BINS * 256];    // tokens per level of the current window, levels in descending order
    unsigned int bin_count[256];             // candidates per high byte of the order key
    unsigned int bin_above[256];             // candidates in higher bins
    int bin_rank[256];                       // rank of a kept non-empty bin (descending), −1 for the others
    int window_bin[WINDOW_BINS];             // the bin of each slot of the current window
    unsigned long long window_mass[MAX_WINDOWS];
    unsigned long long scan[33];
    unsigned long long reduce[32];
    unsigned long long cross_before, cross_unit;   // the crossing level a walk found: mass before it, per token,
    unsigned int cross_key, cross_count;           // its key and (cut-limited) token count
    int hk;                                        // the lowest kept bin
    int token;
};

// bf16 bits → a 17-bit key whose unsigned order is the float order: −0 and +0 are one key (the CPU sees them equal),
// every NaN is NAN_KEY.
__device__ __forceinline__ unsigned int order_key(unsigned int b)
{
    if ((b & 0x7fffu) > 0x7f80u) return NAN_KEY;
    if (b == 0x8000u) b = 0;
    return (b & 0x8000u) ? (~b & 0xffffu) : (b | 0x8000u);
}

__device__ __forceinline__ float key_value(unsigned int k)
{
    return bf16_to_float((bf16)(k >= 0x8000u ? (k & 0x7fffu) : (~k & 0xffffu)));
}

__device__ __forceinline__ unsigned long long max_u64(unsigned long long a, unsigned long long b) { return a > b ? a : b; }

__device__ __forceinline__ unsigned long long block_max_u64(unsigned long long v, unsigned long long* scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v = max_u64(v, __shfl_xor_sync(FULL_MASK, v, o));
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0ull;
    for (int o = 16; o > 0; o >>= 1) v = max_u64(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

// Exclusive prefix sum over the block in thread order; `total` gets the sum. `scratch` holds 33 values.
__device__ __forceinline__ unsigned long long block_exclusive_scan(unsigned long long v, unsigned long long* scratch,
                                                                   unsigned long long& total)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    unsigned long long inclusive = v;
    for (int o = 1; o < 32; o <<= 1)
    {
        unsigned long long n = __shfl_up_sync(FULL_MASK, inclusive, o);
        if (lane >= o) inclusive += n;
    }
    __syncthreads();
    if (lane == 31) scratch[warp] = inclusive;
    __syncthreads();
    if (warp == 0)
    {
        unsigned long long w = lane < warps ? scratch[lane] : 0ull, wi = w;
        for (int o = 1; o < 32; o <<= 1)
        {
            unsigned long long n = __shfl_up_sync(FULL_MASK, wi, o);
            if (lane >= o) wi += n;
        }
        scratch[lane] = wi - w;
        if (lane == 31) scratch[32] = wi;
    }
    __syncthreads();
    total = scratch[32];
    return scratch[warp] + inclusive - v;
}

// Calls f(id, key, ok) for every token of the row, each once with ok = true. Trip counts are warp-uniform (lanes past
// the end get ok = false), so f may use warp collectives. 16-byte loads when the row is aligned.
template <typename F>
__device__ __forceinline__ void for_each_key(const bf16* __restrict__ row, int v, F&& f)
{
    const int lane = threadIdx.x & 31;
    const int first = threadIdx.x - lane;
    int done = 0;
    if ((reinterpret_cast<unsigned long long>(row) & 15ull) == 0)
    {
        const int vectors = v >> 3;
        const uint4* rv = reinterpret_cast<const uint4*>(row);
        for (int i0 = first; i0 < vectors; i0 += blockDim.x)
        {
            int i = i0 + lane;
            bool ok = i < vectors;
            uint4 w = make_uint4(0u, 0u, 0u, 0u);
            if (ok) w = rv[i];
            unsigned int words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
            for (int e = 0; e < 8; e++) f(i * 8 + e, order_key((words[e >> 1] >> ((e & 1) * 16)) & 0xffffu), ok);
        }
        done = vectors << 3;
    }
    for (int i0 = done + first; i0 < v; i0 += blockDim.x)
    {
        int i = i0 + lane;
        bool ok = i < v;
        f(i, ok ? order_key(row[i]) : 0u, ok);
    }
}

// counts[pos] += 1 for each lane with pos ≥ 0, one shared atomic per distinct pos of the warp (hot bins and tied
// logits would otherwise serialise 32 atomics on one address).
__device__ __forceinline__ void warp_count(unsigned int* counts, int pos)
{
    unsigned int peers = __match_any_sync(FULL_MASK, pos);
    if (pos >= 0 && (int)(threadIdx.x & 31) == __ffs(peers) - 1) atomicAdd(counts + pos, (unsigned int)__popc(peers));
}

// Counts the candidates (key ≥ floor_key) of window w (the bins ranked 32w … 32w+31) per level.
__device__ void build_window(SampleShared& sh, const bf16* __restrict__ row, int v, unsigned int floor_key, int w)
{
    for (int b = threadIdx.x; b < 256; b += blockDim.x)
    {
        int r = sh.bin_rank[b];
        if (r >= 0 && (r >> 5) == w) sh.window_bin[r & 31] = b;
    }
    for (int i = threadIdx.x; i < WINDOW_BINS * 256; i += blockDim.x) sh.hist[i] = 0u;
    __syncthreads();
    for_each_key(row, v, [&](int, unsigned int key, bool ok) {
        int pos = -1;
        if (ok && key >= floor_key)
        {
            int r = sh.bin_rank[key >> 8];
            if (r >= 0 && (r >> 5) == w) pos = ((r & 31) << 8) | (int)(255u - (key & 255u));
        }
        warp_count(sh.hist, pos);
    });
    __syncthreads();
}

// What a walk adds up per level: token counts, or fixed-point masses count · round(p · 2^s).
struct LevelValue
{
    bool masses;
    unsigned int low;                  // levels below are not kept
    unsigned int cut_key, cut_count;   // the top-p cut: this level keeps at most cut_count tokens
    float max_logit;
    double inv_temperature, scale;

    __device__ __forceinline__ unsigned int tokens(unsigned int count, unsigned int key) const
    {
        if (key < low) return 0u;
        return key == cut_key ? min(count, cut_count) : count;
    }

    // The CPU's probability, bit for bit up to exp's last double ulp: (float)exp((x − max) · (1 / T)) in double.
    __device__ __forceinline__ unsigned long long unit(unsigned int key) const
    {
        if (!masses) return 1ull;
        double z = __dmul_rn(__dsub_rn((double)key_value(key), (double)max_logit), inv_temperature);
        float p = (float)exp(z);
        return __double2ull_rn(__dmul_rn((double)p, scale));
    }
};

// Walks the levels of the current window (`slots` bins) in the CPU's order, 8 per thread (a warp per bin). Returns
// the window's total. When base + (prefix up to some level) > target, the first such level is the crossing: it is
// left in sh.cross_* (exactly one thread finds it: the prefix sums are exact integers).
__device__ unsigned long long walk_window(SampleShared& sh, int slots, const LevelValue& value,
                                          unsigned long long base, unsigned long long target)
{
    const int t = threadIdx.x, slot = t >> 5, lane = t & 31;
    const unsigned int bin = slot < slots ? (unsigned int)sh.window_bin[slot] : 0u;
    unsigned long long own = 0;
    if (slot < slots)
        for (int i = 0; i < 8; i++)
        {
            unsigned int key = (bin << 8) | (255u - (unsigned int)(lane * 8 + i));
            unsigned int n = value.tokens(sh.hist[t * 8 + i], key);
            if (n != 0u) own += n * value.unit(key);
        }
    unsigned long long total;
    unsigned long long before = base + block_exclusive_scan(own, sh.scan, total);
    if (before <= target && target - before < own)
    {
        for (int i = 0; i < 8; i++)
        {
            unsigned int key = (bin << 8) | (255u - (unsigned int)(lane * 8 + i));
            unsigned int n = value.tokens(sh.hist[t * 8 + i], key);
            if (n == 0u) continue;
            unsigned long long u = value.unit(key);
            if (target - before < n * u)
            {
                sh.cross_before = before;
                sh.cross_unit = u;
                sh.cross_key = key;
                sh.cross_count = n;
                break;
            }
            before += n * u;
        }
    }
    __syncthreads();
    return total;
}

// The n-th (from 0) id of the row whose key is `key`, in id order. Each warp scans a contiguous segment.
__device__ int nth_id_with_key(SampleShared& sh, const bf16* __restrict__ row, int v, unsigned int key, unsigned int n)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const int segment = ((v + warps - 1) / warps + 31) & ~31;
    if (threadIdx.x == 0) sh.token = -2;   // not found: a bug, the host throws
    const int start = min(v, warp * segment), end = min(v, start + segment);
    unsigned int found = 0;
    for (int i0 = start; i0 < end; i0 += 32)
    {
        int i = i0 + lane;
        found += __popc(__ballot_sync(FULL_MASK, i < end && order_key(row[i]) == key));
    }
    unsigned long long total;
    unsigned long long before = block_exclusive_scan(lane == 0 ? found : 0u, sh.scan, total);
    unsigned int seen = (unsigned int)__shfl_sync(FULL_MASK, before, 0);
    if (seen <= n && n - seen < found)
    {
        for (int i0 = start; i0 < end; i0 += 32)
        {
            int i = i0 + lane;
            bool hit = i < end && order_key(row[i]) == key;
            unsigned int hits = __ballot_sync(FULL_MASK, hit);
            unsigned int c = __popc(hits);
            if (n - seen < c)
            {
                if (hit && (unsigned int)__popc(hits & ((1u << lane) - 1u)) == n - seen) sh.token = i;
                break;
            }
            seen += c;
        }
    }
    __syncthreads();
    return sh.token;
}

// tokens[r] = the token drawn from logits[r, :] with settings[r], or −1 when a sampled row holds a NaN (the CPU
// throws). grid (R), block (1024).
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS, 1)
sample_rows(int* __restrict__ tokens, const bf16* __restrict__ logits, const SampleSettings* __restrict__ settings, int v)
{
    __shared__ SampleShared sh;
    const int t = threadIdx.x;
    const bf16* row = logits + (long long)blockIdx.x * v;
    const SampleSettings s = settings[blockIdx.x];

    // A. max key with its first and last index
    unsigned long long first = 0, last = 0;
    for_each_key(row, v, [&](int i, unsigned int key, bool ok) {
        if (!ok) return;
        unsigned long long k = (unsigned long long)key << 32;
        first = max_u64(first, k | (0xffffffffu - (unsigned int)i));
        last = max_u64(last, k | (unsigned int)i);
    });
    first = block_max_u64(first, sh.reduce);
    last = block_max_u64(last, sh.reduce);
    const unsigned int max_key = (unsigned int)(first >> 32);
    const int first_max = (int)(0xffffffffu - (unsigned int)first), last_max = (int)(unsigned int)last;
    if (!(s.temperature > 0.0f))
    {
        if (t == 0) tokens[blockIdx.x] = first_max;
        return;
    }
    if (max_key == NAN_KEY)
    {
        if (t == 0) tokens[blockIdx.x] = -1;
        return;
    }
    const float max_logit = key_value(max_key);
    if (max_key == 0xff80u || max_key == 0x7fu)   // +inf, or −inf (every logit is −inf)
    {
        // (x − max) is NaN for the tokens at ±inf, the only candidates: the CPU's sums are NaN and it returns its
        // last kept token, which is the first of them after a top-p cut (one token kept) and the last otherwise
        if (t == 0) tokens[blockIdx.x] = s.top_p < 1.0f ? first_max : last_max;
        return;
    }

    // B. candidates per high byte; floor and its key exactly as the CPU's float arithmetic
    const float floor_logit = __fsub_rn(max_logit, __fmul_rn(40.0f, s.temperature));
    unsigned int floor_key;
    {
        unsigned int lo = 0x7fu, hi = max_key;   // 0x7f is −inf; key_value(max_key) ≥ floor
        while (lo < hi)
        {
            unsigned int mid = (lo + hi) >> 1;
            if (key_value(mid) >= floor_logit) hi = mid; else lo = mid + 1;
        }
        floor_key = lo;
    }
    for (int b = t; b < 256; b += blockDim.x) sh.bin_count[b] = 0u;
    __syncthreads();
    for_each_key(row, v, [&](int, unsigned int key, bool ok) { warp_count(sh.bin_count, ok && key >= floor_key ? (int)(key >> 8) : -1); });
    __syncthreads();

    // bins in descending order: candidates above each, the bin of the k-th value (top-k as the CPU: on when
    // 0 < k < candidates), then the rank of each kept non-empty bin
    const int b = 255 - t;
    const unsigned int n = t < 256 ? sh.bin_count[b] : 0u;
    unsigned long long candidates;
    const unsigned long long above = block_exclusive_scan(n, sh.scan, candidates);
    const bool top_k = s.top_k > 0 && (unsigned long long)s.top_k < candidates;
    if (t < 256)
    {
        sh.bin_above[b] = (unsigned int)above;
        if (top_k && above < (unsigned long long)s.top_k && (unsigned long long)s.top_k <= above + n) sh.hk = b;
    }
    if (!top_k && t == 0) sh.hk = (int)(floor_key >> 8);
    __syncthreads();
    const int hk = sh.hk;
    const bool kept_bin = t < 256 && n > 0u && b >= hk;
    unsigned long long bins;
    const unsigned long long rank = block_exclusive_scan(kept_bin ? 1u : 0u, sh.scan, bins);
    if (t < 256) sh.bin_rank[b] = kept_bin ? (int)rank : -1;
    __syncthreads();
    const int windows = (int)((bins + WINDOW_BINS - 1) / WINDOW_BINS);

    // fixed point: at most `keepable` tokens, each p ≤ 1, so the total stays below 2^63
    const unsigned int keepable = sh.bin_above[hk] + sh.bin_count[hk];
    const int shift = 63 - (32 - __clz((int)keepable));
    LevelValue value;
    value.masses = true;
    value.low = floor_key;
    value.cut_key = NO_KEY;
    value.cut_count = 0xffffffffu;
    value.max_logit = max_logit;
    value.inv_temperature = s.inv_temperature;
    value.scale = __hiloint2double((1023 + shift) << 20, 0);

    // C. window masses top-down; the last window holds the k-th value
    int resident = -1;
    for (int w = 0; w < windows; w++)
    {
        build_window(sh, row, v, floor_key, w);
        resident = w;
        int slots = min(WINDOW_BINS, (int)bins - w * WINDOW_BINS);
        if (w == windows - 1 && top_k)
        {
            LevelValue counts = value;
            counts.masses = false;
            walk_window(sh, slots, counts, sh.bin_above[sh.window_bin[0]], (unsigned long long)(s.top_k - 1));
            value.low = sh.cross_key;
        }
        unsigned long long mass = walk_window(sh, slots, value, 0ull, ~0ull);
        if (t == 0) sh.window_mass[w] = mass;
        __syncthreads();
    }
    unsigned long long total = 0;
    for (int w = 0; w < windows; w++) total += sh.window_mass[w];

    // top-p: keep the smallest prefix whose mass reaches p · total (the CPU's `cumulative < TopP * sum` loop)
    unsigned long long kept = total;
    int last_window = windows - 1;
    if (s.top_p < 1.0f)
    {
        double threshold = __dmul_rn((double)s.top_p, (double)total);
        if (!(threshold > 0.0))
        {
            if (t == 0) tokens[blockIdx.x] = first_max;   // the CPU keeps one token
            return;
        }
        unsigned long long target = __double2ull_ru(threshold) - 1ull;   // mass ≥ threshold ⇔ mass > target
        unsigned long long base = 0;
        int w = 0;
        while (w < windows && base + sh.window_mass[w] <= target) base += sh.window_mass[w++];
        if (w < windows)
        {
            if (w != resident) { build_window(sh, row, v, floor_key, w); resident = w; }
            walk_window(sh, min(WINDOW_BINS, (int)bins - w * WINDOW_BINS), value, base, target);
            unsigned long long keep = (target - sh.cross_before) / sh.cross_unit + 1ull;
            keep = min(keep, (unsigned long long)sh.cross_count);
            kept = sh.cross_before + keep * sh.cross_unit;
            value.cut_key = sh.cross_key;
            value.cut_count = (unsigned int)keep;
            last_window = w;
        }
    }

    // the draw: the first token whose cumulative mass exceeds u · kept (the CPU's `u < acc`)
    unsigned long long target = __double2ull_rd(__dmul_rn(s.uniform, (double)kept));
    if (target >= kept) target = kept - 1ull;   // u · kept rounded up to kept: the last kept token with mass
    unsigned long long base = 0;
    int w = 0;
    while (w < last_window && base + sh.window_mass[w] <= target) base += sh.window_mass[w++];
    if (w != resident) build_window(sh, row, v, floor_key, w);
    walk_window(sh, min(WINDOW_BINS, (int)bins - w * WINDOW_BINS), value, base, target);
    const unsigned int key = sh.cross_key;
    const unsigned int index = (unsigned int)min((target - sh.cross_before) / sh.cross_unit, (unsigned long long)(sh.cross_count - 1u));

    // D. the index-th token of the drawn level, in id order
    int token = nth_id_with_key(sh, row, v, key, index);
    if (t == 0) tokens[blockIdx.x] = token;
}
