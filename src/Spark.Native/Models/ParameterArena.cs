using Spark.Native.Backends;
using Spark.Native.Tensors;

namespace Spark.Native.Models;

/// <summary>All parameters of a model in one backend allocation, with a named view per layout entry.</summary>
internal sealed class ParameterArena : IDisposable
{
    private readonly Tensor _buffer;
    private readonly Dictionary<string, Tensor> _views = new(StringComparer.Ordinal);

    /// <summary>An arena of <paramref name="dtype"/> elements: weights use the backend's activation type, gradients and optimizer state F32.</summary>
    public ParameterArena(IBackend backend, ParameterLayout layout, DType dtype = DType.F32)
    {
        Layout = layout;
        // [rows, 1024] so arenas past 2^31 elements (7B in F32) fit int dimensions; views address by offset.
        _buffer = backend.Allocate(dtype, checked((int)((layout.TotalLength + 1023) / 1024)), 1024);
        foreach (var e in layout.Entries)
            _views[e.Name] = new Tensor(backend, _buffer.Memory, e.Offset, e.Shape, ownsMemory: false);
    }

    public ParameterLayout Layout { get; }

    /// <summary>The arena itself, for single-pass bulk ops.</summary>
    public Tensor Buffer => _buffer;

    public Tensor this[string name] =>
        _views.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"no parameter named '{name}' in the arena");

    public Tensor? Optional(string name) => _views.GetValueOrDefault(name);

    public void Dispose() => _buffer.Dispose();
}
