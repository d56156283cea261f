using System.Text.Json;
using Spark.Native.Generation;
using Spark.Native.IO;
using Spark.Native.Tests.Cli;
using Spark.Native.Tests.Fixtures;
using Spark.Native.Text;
using Spark.Native.Text.Templates;
using Spark.Native.Training;

namespace Spark.Native.Tests.Training;

public class SftTrainerTests
{
    private static readonly (string Prompt, string Answer)[] Facts =
        [("sky?", "blue"), ("grass?", "green"), ("snow?", "white"), ("coal?", "black"), ("sun?", "yellow"), ("rose?", "red")];

    private static string WriteData(string dir, params string[] extraLines)
    {
        string path = Path.Combine(dir, "data.jsonl");
        File.WriteAllLines(path, Facts.Select(f => JsonSerializer.Serialize(new { prompt = f.Prompt, completion = f.Answer })).Concat(extraLines));
        return path;
    }

    private static TinyCheckpoint ByteModel()
    {
        var ckpt = new TinyCheckpoint(new TinySpec { Vocab = 257, Eos = [256], Hidden = 32, Intermediate = 64, Heads = 4, KvHeads = 2, Seed = 12 });
        ByteTokenizer.Write(ckpt.Directory);
        return ckpt;
    }

    private static SftDataset Load(TinyCheckpoint ckpt, string data) =>
        SftDataset.Load(data, Tokenizer.Load(ckpt.Directory), ChatTemplate.FromTokenizerConfig(Path.Combine(ckpt.Directory, "tokenizer_config.json")),
            new SftFields.PromptCompletion(), maxLength: 64);

    [Theory]
    [InlineData("Fp32")]
    [InlineData("StochasticRounding")]
    public void TrainsOnCudaWithBf16Weights(string masterWeights)
    {
        Cuda.CudaTestEnvironment.RequireCudaBackend();
        using var ckpt = ByteModel();
        var data = Load(ckpt, WriteData(ckpt.Directory));
        using var model = SparkModel.Load(ckpt.Directory, new ModelLoadOptions { Device = Device.Cuda });
        var losses = new List<double>();
        var options = new SftOptions
        {
            Epochs = 40, BatchSize = 3, Optimizer = new OptimizerSettings { LearningRate = 1e-2 }, Schedule = ScheduleKind.Constant, Seed = 3,
            MasterWeights = Enum.Parse<MasterWeights>(masterWeights), StopAfterSteps = 60,
        };
        string run = Path.Combine(ckpt.Directory, "run");
        SftTrainer.Train(model, data, options, run, ckpt.Directory, onStep: p => losses.Add(p.Loss));
        Assert.All(losses, l => Assert.True(double.IsFinite(l)));
        // bf16 weights learn the six facts as the F32 CPU run does (which falls > 5× in 160 steps): at least 3× in 60
        Assert.True(losses.Take(4).Average() > 3 * losses.TakeLast(4).Average(), $"loss {losses.Take(4).Average():F3} → {losses.TakeLast(4).Average():F3}");
        // the checkpoint carries the master weights when there are some, and the run resumes from it
        string checkpoint = Directory.GetDirectories(run).Single(d => Path.GetFileName(d).StartsWith("checkpoint-", StringComparison.Ordinal));
        using var state = SafeTensorsFile.Open(Path.Combine(checkpoint, "training_state.safetensors"));
        Assert.Equal(masterWeights == "Fp32", state.Tensors.Any(t => t.Name.StartsWith("master.", StringComparison.Ordinal)));
        using var resumed = SparkModel.Load(checkpoint, new ModelLoadOptions { Device = Device.Cuda });
        var more = new List<double>();
        SftTrainer.Train(resumed, data, options with { StopAfterSteps = 2 }, run, ckpt.Directory, checkpoint, p => more.Add(p.Loss));
        Assert.Equal(2, more.Count);
        Assert.All(more, l => Assert.True(double.IsFinite(l)));
    }

    [Fact]
    public void LossFallsAndTheModelAnswersWhatItLearned()
    {
        using var ckpt = ByteModel();
        var data = Load(ckpt, WriteData(ckpt.Directory));
        // only the assistant's answer and its end token are learned
        var first = data.Examples[0];
        Assert.Equal("blue<|end|>".Length - "<|end|>".Length + 1, first.Targets().Count(t => t >= 0));

        using var model = SparkModel.Load(ckpt.Directory);
        var losses = new List<double>();
        var options = new SftOptions
        {
            Epochs = 80, BatchSize = 3, Optimizer = new OptimizerSettings { LearningRate = 1e-2 }, Schedule = ScheduleKind.Constant, Seed = 3,
        };
        SftTrainer.Train(model, data, options, Path.Combine(ckpt.Directory, "run"), ckpt.Directory, onStep: p => losses.Add(p.Loss));
        Assert.Equal(160, losses.Count);
        Assert.True(losses.Take(4).Average() > 5 * losses.TakeLast(4).Average(), $"loss {losses.Take(4).Average():F3} → {losses.TakeLast(4).Average():F3}");

        // the exported final checkpoint generates the learned answers
        using var trained = SparkModel.Load(Path.Combine(ckpt.Directory, "run", SftTrainer.FinalCheckpoint));
        var tokenizer = Tokenizer.Load(Path.Combine(ckpt.Directory, "run", SftTrainer.FinalCheckpoint));
        foreach (var (prompt, answer) in Facts)
        {
            var ids = tokenizer.Encode($"[user] {prompt}<|end|>[assistant] ", SpecialTokens.Omit);
            var result = trained.Generate(ids, GenerationOptions.Greedy(10));
            Assert.Equal(answer, tokenizer.Decode(result.Tokens.ToArray(), SkipSpecialTokens.Yes));
            Assert.Equal(FinishReason.Stop, result.FinishReason);
        }
    }

    [Fact]
    public void AnInterruptedAndResumedRunEqualsTheUninterruptedOneBitForBit()
    {
        using var ckpt = ByteModel();
        var data = Load(ckpt, WriteData(ckpt.Directory));
        var options = new SftOptions
        {
            Epochs = 4, BatchSize = 2, Optimizer = new OptimizerSettings { LearningRate = 5e-3, WeightDecay = 0.1 },
            WarmupSteps = 2, Seed = 9, SaveEvery = 5,
        };
        string straight = Path.Combine(ckpt.Directory, "straight"), interrupted = Path.Combine(ckpt.Directory, "interrupted");
        var a = new List<double>();
        using (var model = SparkModel.Load(ckpt.Directory))
            SftTrainer.Train(model, data, options, straight, ckpt.Directory, onStep: p => a.Add(p.Loss));

        // stop after 7 steps (checkpoint-5 from --save-every, checkpoint-7 from the stop), then resume from step 5:
        // the two steps past it are recomputed and their metric lines replaced
        var b = new List<double>();
        using (var model = SparkModel.Load(ckpt.Directory))
            SftTrainer.Train(model, data, options with { StopAfterSteps = 7 }, interrupted, ckpt.Directory, onStep: p => b.Add(p.Loss));
        Assert.True(Directory.Exists(Path.Combine(interrupted, "checkpoint-7")));
        string resumeFrom = Path.Combine(interrupted, "checkpoint-5");
        b.RemoveRange(5, 2);
        using (var model = SparkModel.Load(resumeFrom))
            SftTrainer.Train(model, data, options, interrupted, ckpt.Directory, resumeFrom, onStep: p => b.Add(p.Loss));
        var steps = File.ReadAllLines(Path.Combine(interrupted, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64());
        Assert.Equal(Enumerable.Range(1, 12).Select(i => (long)i), steps);

        // a resume with other batching is refused rather than silently diverging
        using (var model = SparkModel.Load(resumeFrom))
        {
            var e = Assert.Throws<SparkException>(() => SftTrainer.Train(model, data, options with { BatchSize = 3 }, interrupted, ckpt.Directory, resumeFrom));
            Assert.Contains("batch=2", e.Message);
            Assert.Contains("batch=3", e.Message);
        }

        Assert.Equal(12, a.Count);
        Assert.Equal(a, b); // exact doubles
        Assert.Equal(File.ReadAllBytes(Path.Combine(straight, "final", "model.safetensors")),
            File.ReadAllBytes(Path.Combine(interrupted, "final", "model.safetensors")));
    }

    [Fact]
    public void TheCliTrainsTheSameWeightsWithOneThreadOrTwo()
    {
        using var ckpt = ByteModel();
        string data = WriteData(ckpt.Directory, "{not json", "{\"prompt\": \"x\", \"completion\": \"\"}");
        string[] Args(string outDir) =>
            ["train", "sft", "--model", ckpt.Directory, "--data", data, "--out", outDir, "--epochs", "2", "--batch-size", "2",
             "--lr", "0.003", "--seed", "4", "--skip-bad-lines"];
        var two = CliTests.Spark(Args(Path.Combine(ckpt.Directory, "two")));
        Assert.True(two.Code == 0, two.Err);
        Assert.Contains("2 bad lines skipped", two.Err);
        Assert.Contains("step 6/6", two.Err);
        var one = CliTests.Spark(new Dictionary<string, string> { ["DOTNET_PROCESSOR_COUNT"] = "1" }, Args(Path.Combine(ckpt.Directory, "one")));
        Assert.True(one.Code == 0, one.Err);
        Assert.Equal(File.ReadAllBytes(Path.Combine(ckpt.Directory, "two", "final", "model.safetensors")),
            File.ReadAllBytes(Path.Combine(ckpt.Directory, "one", "final", "model.safetensors")));
        Assert.Equal(6, File.ReadAllLines(Path.Combine(ckpt.Directory, "two", "metrics.jsonl")).Length);

        var strict = CliTests.Spark(["train", "sft", "--model", ckpt.Directory, "--data", data, "--out", Path.Combine(ckpt.Directory, "x")]);
        Assert.Equal(1, strict.Code);
        Assert.Contains("data.jsonl:7: invalid JSON", strict.Err);
    }
}
