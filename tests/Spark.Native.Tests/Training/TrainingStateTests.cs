using Spark.Native.Backends.Cpu;
using Spark.Native.Models;
using Spark.Native.Tests.Fixtures;
using Spark.Native.Tests.IO;
using Spark.Native.Training;

namespace Spark.Native.Tests.Training;

public class TrainingStateTests
{
    private static ParameterLayout Layout(TinySpec spec) => new(ModelConfig.Parse(TinyCheckpoint.BuildConfig(spec).ToJsonString()));

    private static void FillRandom(CpuBackend backend, TrainingState state, int seed)
    {
        var rng = new Random(seed);
        foreach (var e in state.Layout.Entries)
        {
            backend.Upload(state.FirstMoment[e.Name], Enumerable.Range(0, (int)e.Length).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray());
            backend.Upload(state.SecondMoment[e.Name], Enumerable.Range(0, (int)e.Length).Select(_ => (float)rng.NextDouble()).ToArray());
        }
    }

    private static float[] Read(CpuBackend backend, ParameterArena arena, string name)
    {
        var view = arena[name];
        var values = new float[view.Length];
        backend.Download(values, view);
        return values;
    }

    [Fact]
    public void MasterWeightsAreCopiedSavedAndRequiredOnResume()
    {
        using var backend = new CpuBackend();
        var layout = Layout(new TinySpec { Tied = true });
        var settings = new OptimizerSettings { LearningRate = 1e-4 };
        using var weights = new ParameterArena(backend, layout);
        var rng = new Random(7);
        foreach (var e in layout.Entries)
            backend.Upload(weights[e.Name], Enumerable.Range(0, (int)e.Length).Select(_ => (float)rng.NextDouble()).ToArray());
        using var dir = new TempDir();
        using (var state = new TrainingState(backend, layout, settings, masterFrom: weights) { Step = 3 })
        {
            Assert.NotNull(state.Master);
            foreach (var e in layout.Entries) Assert.Equal(Read(backend, weights, e.Name), Read(backend, state.Master!, e.Name));
            state.Save(dir.Path);
        }
        using (var loaded = TrainingState.Load(dir.Path, backend, layout, needsMaster: true))
            foreach (var e in layout.Entries) Assert.Equal(Read(backend, weights, e.Name), Read(backend, loaded.Master!, e.Name));
        using (var withoutMaster = TrainingState.Load(dir.Path, backend, layout))
            Assert.Null(withoutMaster.Master); // a run that keeps no master copy ignores it

        using var plain = new TempDir();
        using (var state = new TrainingState(backend, layout, settings)) state.Save(plain.Path);
        var e2 = Assert.Throws<SparkException>(() => TrainingState.Load(plain.Path, backend, layout, needsMaster: true));
        Assert.Contains("training_state.safetensors: has no master weights", e2.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SaveLoadRoundTrip()
    {
        using var backend = new CpuBackend();
        var layout = Layout(new TinySpec { Tied = false });
        var settings = new OptimizerSettings { LearningRate = 3e-6, WeightDecay = 0.01, MaxGradNorm = 0.5, Beta2 = 0.95 };
        using var dir = new TempDir();
        using (var state = new TrainingState(backend, layout, settings) { Step = 42, Epoch = 2, SamplePosition = 1234, RngState = 0xFEDC_BA98_7654_3210UL })
        {
            Assert.All(Read(backend, state.FirstMoment, "lm_head.weight"), v => Assert.Equal(0f, v)); // fresh moments are zero
            FillRandom(backend, state, 1);
            state.Save(dir.Path);
        }
        Assert.Equal(["training_state.json", "training_state.safetensors"], Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order());

        using var loaded = TrainingState.Load(dir.Path, backend, layout);
        Assert.Equal((42L, 2, 1234L, 0xFEDC_BA98_7654_3210UL), (loaded.Step, loaded.Epoch, loaded.SamplePosition, loaded.RngState));
        Assert.Equal(settings, loaded.Settings);
        using var expected = new TrainingState(backend, layout, settings);
        FillRandom(backend, expected, 1);
        foreach (var e in layout.Entries)
        {
            Assert.Equal(Read(backend, expected.FirstMoment, e.Name), Read(backend, loaded.FirstMoment, e.Name));
            Assert.Equal(Read(backend, expected.SecondMoment, e.Name), Read(backend, loaded.SecondMoment, e.Name));
        }
    }

    [Fact]
    public void MismatchedShapeIsRejectedNamingFileAndTensor()
    {
        using var backend = new CpuBackend();
        using var dir = new TempDir();
        using (var state = new TrainingState(backend, Layout(new TinySpec { Vocab = 67 }), new OptimizerSettings()))
            state.Save(dir.Path);
        var e = Assert.Throws<SparkException>(() => TrainingState.Load(dir.Path, backend, Layout(new TinySpec { Vocab = 68 })));
        Assert.Contains("training_state.safetensors: tensor 'exp_avg.model.embed_tokens.weight' has shape [67, 24] but parameter 'model.embed_tokens.weight' has [68, 24]", e.Message);

        var untied = Assert.Throws<SparkException>(() => TrainingState.Load(dir.Path, backend, Layout(new TinySpec { Vocab = 67, Tied = false })));
        Assert.Contains("tensor 'exp_avg.lm_head.weight' is missing", untied.Message);
    }

    [Fact]
    public void TornSaveIsDetected()
    {
        using var backend = new CpuBackend();
        var layout = Layout(new TinySpec());
        using var dir = new TempDir();
        using (var state = new TrainingState(backend, layout, new OptimizerSettings()) { Step = 7 })
            state.Save(dir.Path);
        string json = dir.File(TrainingState.JsonFileName);
        File.WriteAllText(json, File.ReadAllText(json).Replace("\"step\": 7", "\"step\": 8"));
        Assert.Contains("the save was interrupted", Assert.Throws<SparkException>(() => TrainingState.Load(dir.Path, backend, layout)).Message);
        File.Delete(json);
        Assert.Contains("training_state.json: no such file", Assert.Throws<SparkException>(() => TrainingState.Load(dir.Path, backend, layout)).Message);
    }
}
