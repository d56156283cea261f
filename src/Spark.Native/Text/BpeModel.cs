using System.Collections.Concurrent;

namespace Spark.Native.Text;

/// <summary>
/// Byte-pair encoding as Hugging Face <c>tokenizers</c> runs it: one symbol per char (unknown chars become
/// <c>&lt;0xNN&gt;</c> byte tokens with byte_fallback, else unk, fused when fuse_unk), then repeatedly the adjacent pair
/// with the lowest merge rank is merged (ties: leftmost). A min-heap over (rank, position) with a linked list of
/// symbols makes a word of n chars O(n log n). Results are cached per word (bounded).
/// </summary>
internal sealed class BpeModel
{
    private const int MaxCachedWordLength = 256;
    private const int CacheCapacity = 50_000;

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabSpan;
    private readonly Dictionary<long, Merge> _merges;
    private readonly int[] _byteIds;          // [256], -1 where <0xNN> is not in the vocab
    private readonly int _unkId;              // -1 when no unk token
    private readonly bool _fuseUnk;
    private readonly bool _byteFallback;
    private readonly bool _ignoreMerges;
    private readonly string? _prefix;
    private readonly string? _suffix;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private int _cacheCount;

    internal readonly record struct Merge(int Rank, int Id);

    /// <summary>Hashes a pair key well: <c>long.GetHashCode</c> is <c>a ^ b</c>, which piles the merges of small ids
    /// into a few buckets (tens of times slower lookups on real vocabularies).</summary>
    internal sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();
        public bool Equals(long x, long y) => x == y;
        public int GetHashCode(long key) => (int)(((ulong)key * 0x9E3779B97F4A7C15UL) >> 32);
    }

    public BpeModel(Dictionary<string, int> vocab, Dictionary<long, Merge> merges, int unkId, bool fuseUnk,
        bool byteFallback, bool ignoreMerges, string? continuingSubwordPrefix, string? endOfWordSuffix)
    {
        _vocab = vocab;
        _vocabSpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _merges = merges;
        _unkId = unkId;
        _fuseUnk = fuseUnk;
        _byteFallback = byteFallback;
        _ignoreMerges = ignoreMerges;
        _prefix = string.IsNullOrEmpty(continuingSubwordPrefix) ? null : continuingSubwordPrefix;
        _suffix = string.IsNullOrEmpty(endOfWordSuffix) ? null : endOfWordSuffix;
        _byteIds = new int[256];
        for (int b = 0; b < 256; b++) _byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
    }

    public IReadOnlyDictionary<string, int> Vocab => _vocab;

    public static long PairKey(int a, int b) => ((long)a << 32) | (uint)b;

    /// <summary>Appends the ids of one pre-tokenized word.</summary>
    public void Encode(string word, List<int> output)
    {
        if (word.Length == 0) return;
        if (_ignoreMerges && _vocab.TryGetValue(word, out int whole))
        {
            output.Add(whole);
            return;
        }
        if (_cache.TryGetValue(word, out var cached))
        {
            output.AddRange(cached);
            return;
        }
        int[] ids = EncodeUncached(word);
        output.AddRange(ids);
        if (word.Length <= MaxCachedWordLength && _cacheCount < CacheCapacity && _cache.TryAdd(word, ids))
            Interlocked.Increment(ref _cacheCount);
    }

    private int[] EncodeUncached(string word)
    {
        // Initial symbols.
        var symbols = new List<int>(word.Length);
        int pendingUnk = -1; // unk pending fusion (only its presence matters for ids)
        for (int i = 0; i < word.Length;)
        {
            int len = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            bool isFirst = i == 0, isLast = i + len == word.Length;
            ReadOnlySpan<char> ch = word.AsSpan(i, len);
            i += len;
            string? decorated = null;
            if ((_prefix is not null && !isFirst) || (_suffix is not null && isLast))
                decorated = (_prefix is not null && !isFirst ? _prefix : "") + ch.ToString() + (_suffix is not null && isLast ? _suffix : "");
            bool known = decorated is null ? _vocabSpan.TryGetValue(ch, out int id) : _vocab.TryGetValue(decorated, out id);
            if (known)
            {
                if (pendingUnk >= 0) { symbols.Add(pendingUnk); pendingUnk = -1; }
                symbols.Add(id);
                continue;
            }
            if (_byteFallback && TryAddBytes(decorated is null ? ch : decorated.AsSpan(), symbols)) continue;
            if (_unkId >= 0)
            {
                if (pendingUnk >= 0 && !_fuseUnk) symbols.Add(pendingUnk);
                pendingUnk = _unkId;
            }
        }
        if (pendingUnk >= 0) symbols.Add(pendingUnk);
        if (symbols.Count < 2) return symbols.ToArray();
        return MergeAll(symbols);
    }

    private bool TryAddBytes(ReadOnlySpan<char> s, List<int> symbols)
    {
        Span<byte> bytes = stackalloc byte[16];
        int n = System.Text.Encoding.UTF8.GetBytes(s, bytes);
        for (int k = 0; k < n; k++) if (_byteIds[bytes[k]] < 0) return false;
        for (int k = 0; k < n; k++) symbols.Add(_byteIds[bytes[k]]);
        return true;
    }

    private int[] MergeAll(List<int> initial)
    {
        int n = initial.Count;
        var ids = initial.ToArray();
        var prev = new int[n];
        var next = new int[n];
        for (int i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
        // Priority: rank in the high 32 bits, position in the low 32 bits: lowest rank first, then leftmost.
        var heap = new PriorityQueue<int, long>(n);
        for (int i = 0; i + 1 < n; i++)
            if (_merges.TryGetValue(PairKey(ids[i], ids[i + 1]), out var m)) heap.Enqueue(i, ((long)m.Rank << 32) | (uint)i);
        int alive = n;
        while (heap.TryDequeue(out int pos, out long priority))
        {
            int j = next[pos];
            if (ids[pos] < 0 || j < 0) continue;
            if (!_merges.TryGetValue(PairKey(ids[pos], ids[j]), out var m) || m.Rank != (int)(priority >> 32)) continue;
            ids[pos] = m.Id;
            ids[j] = -1;
            next[pos] = next[j];
            if (next[j] >= 0) prev[next[j]] = pos;
            alive--;
            int p = prev[pos];
            if (p >= 0 && _merges.TryGetValue(PairKey(ids[p], ids[pos]), out var left))
                heap.Enqueue(p, ((long)left.Rank << 32) | (uint)p);
            int q = next[pos];
            if (q >= 0 && _merges.TryGetValue(PairKey(ids[pos], ids[q]), out var right))
                heap.Enqueue(pos, ((long)right.Rank << 32) | (uint)pos);
        }
        var result = new int[alive];
        int k2 = 0;
        for (int i = 0; i >= 0; i = next[i]) result[k2++] = ids[i];
        return result;
    }
}
