using Spark.Native.Backends;
using Spark.Native.Tensors;

namespace Spark.Native.Models;

/// <summary>
/// Post-RoPE keys and values of every layer for a fixed number of sequence slots.
/// Keys and values are each one allocation of [L · slots · capacity, NKV·HD].
/// </summary>
internal sealed class KvCache : IDisposable
{
    private readonly Tensor _keys;   // [L·slots·capacity, NKV·HD]
    private readonly Tensor _values; // [L·slots·capacity, NKV·HD]

    public KvCache(IBackend backend, ModelConfig config, int slots, int capacity)
    {
        if (slots <= 0 || capacity <= 0) throw new ArgumentException($"a KV cache needs at least one slot and position (got {slots} × {capacity})");
        Slots = slots;
        Capacity = capacity;
        Layers = config.LayerCount;
        int rows = checked(config.LayerCount * slots * capacity);
        _keys = backend.Allocate(backend.ActivationDType, rows, config.KeyValueHeadCount * config.HeadDim);
        _values = backend.Allocate(backend.ActivationDType, rows, config.KeyValueHeadCount * config.HeadDim);
    }

    public int Slots { get; }
    public int Capacity { get; }
    public int Layers { get; }

    /// <summary>Keys of one layer and slot: [capacity, NKV·HD].</summary>
    public Tensor Keys(int layer, int slot) => _keys.Rows(RowOf(layer, slot), Capacity);

    /// <summary>Values of one layer and slot: [capacity, NKV·HD].</summary>
    public Tensor Values(int layer, int slot) => _values.Rows(RowOf(layer, slot), Capacity);

    /// <summary>Keys of every slot of one layer: [slots · capacity, NKV·HD]; slot s, position p is row s·capacity + p.</summary>
    public Tensor LayerKeys(int layer) => _keys.Rows(RowOf(layer, 0), Slots * Capacity);

    /// <summary>Values of every slot of one layer, laid out as <see cref="LayerKeys"/>.</summary>
    public Tensor LayerValues(int layer) => _values.Rows(RowOf(layer, 0), Slots * Capacity);

    /// <summary>Row of (slot, position) inside <see cref="LayerKeys"/> and <see cref="LayerValues"/>.</summary>
    public int RowInLayer(int slot, int position) => slot * Capacity + position;

    private int RowOf(int layer, int slot)
    {
        if ((uint)layer >= (uint)Layers || (uint)slot >= (uint)Slots)
            throw new ArgumentOutOfRangeException(nameof(slot), $"layer {layer}, slot {slot} outside a cache of {Layers} layers × {Slots} slots");
        return (layer * Slots + slot) * Capacity;
    }

    public void Dispose()
    {
        _keys.Dispose();
        _values.Dispose();
    }
}
