using Spark.Native.IO;
using Spark.Native.Tensors;

namespace Spark.Native.Models;

/// <summary>Fills a parameter arena from a safetensors checkpoint, checking names, shapes and dtypes.</summary>
internal static class CheckpointLoader
{
    /// <summary>Buffers some exporters write that carry no weights: skipped with a notice.</summary>
    private static readonly string[] HarmlessSuffixes = ["rotary_emb.inv_freq"];

    private static readonly DType[] LoadableDTypes = [DType.F32, DType.BF16, DType.F16];

    /// <summary>Checks the checkpoint against the layout without reading weights; returns the notices.</summary>
    public static List<string> Validate(ParameterLayout layout, SafeTensorsCheckpoint checkpoint)
    {
        var notices = new List<string>();
        string where = checkpoint.Directory;
        foreach (var entry in layout.Entries)
        {
            if (!checkpoint.TryGet(entry.Name, out var info))
                throw new SparkException($"{where}: missing tensor '{entry.Name}' (expected shape {Tensor.ShapeString(entry.Shape)})");
            if (!info.Shape.Select(d => (long)d).SequenceEqual(entry.Shape.Select(d => (long)d)))
                throw new SparkException($"{checkpoint.FileOf(entry.Name).Path}: tensor '{entry.Name}' has shape [{string.Join(", ", info.Shape)}], expected {Tensor.ShapeString(entry.Shape)}");
            if (Array.IndexOf(LoadableDTypes, info.DType) < 0)
                throw new SparkException($"{checkpoint.FileOf(entry.Name).Path}: tensor '{entry.Name}' has dtype {info.DType}; expected F32, BF16 or F16");
        }
        foreach (string name in checkpoint.Names.Order(StringComparer.Ordinal))
        {
            if (layout.TryGet(name, out _)) continue;
            if (HarmlessSuffixes.Any(s => name.EndsWith(s, StringComparison.Ordinal)))
                notices.Add($"skipped '{name}' (a buffer the model recomputes)");
            else if (name == ParameterLayout.LmHead && layout.Config.TieWordEmbeddings)
                notices.Add($"skipped '{name}' (tie_word_embeddings is true, the head reuses the embedding)");
            else
                throw new SparkException($"{checkpoint.FileOf(name).Path}: unexpected tensor '{name}' (not part of a {layout.Config.Architecture} model with this config.json)");
        }
        return notices;
    }

    /// <summary>Validates, then reads every parameter into the arena (converted exactly to F32).</summary>
    public static List<string> Load(ParameterArena arena, SafeTensorsCheckpoint checkpoint)
    {
        var notices = Validate(arena.Layout, checkpoint);
        var backend = arena.Buffer.Backend;
        float[] staging = [];
        foreach (var entry in arena.Layout.Entries)
        {
            int n = checked((int)entry.Length);
            if (staging.Length < n) staging = new float[n];
            checkpoint.ReadF32(entry.Name, staging.AsSpan(0, n));
            backend.Upload(arena[entry.Name], staging.AsSpan(0, n));
        }
        return notices;
    }
}
