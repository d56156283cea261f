using Spark.Native.Backends.Cuda;
using Spark.Native.Benchmarks;

namespace Spark.Native.Tests.Benchmarks;

/// <summary>What the GPU benchmarks measure and how they count, checked without a GPU.</summary>
public class KernelPlanTests
{
    private static readonly KernelPlanSettings All = new(BenchModel.Known, [512, 2048, 8192]);

    [Fact]
    public void ParameterCountsAreTheCheckpoints()
    {
        Assert.Equal(1_543_714_304L, BenchModel.Qwen25_1_5B.ParameterCount);
        Assert.Equal(7_615_616_512L, BenchModel.Qwen25_7B.ParameterCount);
    }

    [Fact]
    public void NamesAreUniqueAndEveryCaseHasWorkAndModels()
    {
        var cases = KernelPlan.Build(All);
        Assert.Equal(cases.Count, cases.Select(c => c.Name).Distinct().Count());
        Assert.Equal(2 * 27, cases.Count);
        Assert.All(cases, c =>
        {
            Assert.Equal($"{c.Model}:{c.Op}:{c.Shape}", c.Name);
            Assert.True(c.Flops > 0 && c.Bytes > 0, c.Name);
            Assert.False(string.IsNullOrWhiteSpace(c.FlopModel));
            Assert.False(string.IsNullOrWhiteSpace(c.ByteModel));
            Assert.NotNull(c.Prepare);
        });
    }

    [Fact]
    public void AttentionBatchesHoldEightToSixteenThousandTokens()
    {
        foreach (var c in KernelPlan.Build(All).Where(c => c.Op is "attention.fwd" or "attention.bwd"))
        {
            var parts = c.Shape.TrimStart('B').Split("xS");
            int tokens = int.Parse(parts[0]) * int.Parse(parts[1]);
            Assert.InRange(tokens, 8192, 16384);
        }
    }

    [Fact]
    public void AdamWOverThe7BIsAStatedSlice()
    {
        var adamw = KernelPlan.Build(All).Where(c => c.Op.StartsWith("adamw", StringComparison.Ordinal)).Select(c => c.Name).ToList();
        Assert.Contains("qwen2.5-1.5b:adamw.master:P1543714304", adamw);
        Assert.Contains("qwen2.5-7b:adamw.sr:P1600000000of7615616512", adamw);
    }

    [Fact]
    public void CausalAttentionFlopsCountTheVisiblePairs()
    {
        // brute force: Σ over query i of (i + 1) keys, 4·HD FLOPs per pair per head
        int b = 3, s = 37, heads = 5, hd = 64;
        double pairs = 0;
        for (int i = 0; i < s; i++) pairs += i + 1;
        Assert.Equal(b * heads * pairs * 4 * hd, KernelPlan.CausalAttentionFlops(b, s, heads, hd));
    }

    [Fact]
    public void ModelAndLengthListsParse()
    {
        Assert.Equal(BenchModel.Known, BenchModel.Parse("all"));
        Assert.Equal([BenchModel.Qwen25_7B], BenchModel.Parse(" Qwen2.5-7B "));
        Assert.Equal([512, 8192], BenchModel.ParseSequenceLengths("512,8192,512"));
        Assert.Throws<SparkException>(() => BenchModel.Parse(""));
        Assert.Throws<SparkException>(() => BenchModel.ParseSequenceLengths("512,"));
    }

    [Fact]
    public void KernelArgumentsAreLittleEndianValues()
    {
        Assert.Equal(0xFFFFFFFFUL, ((KernelArg)(-1)).Bits); // a 32-bit int: the driver reads the low 4 bytes
        Assert.Equal(0x3F800000UL, ((KernelArg)1f).Bits);
        Assert.Equal(ulong.MaxValue, ((KernelArg)(-1L)).Bits);
    }
}

/// <summary>The kernel lab: its registry, its sources and its float64 references, checked without a GPU.</summary>
public class KernelLabTests
{
    [Fact]
    public void EveryVersionIsNumberedFromOneAndItsSourceIsEmbedded()
    {
        var sources = KernelCompiler.Sources.Select(s => s.Name).ToHashSet();
        foreach (var family in KernelLab.Families)
        {
            var versions = KernelLab.Versions.Where(v => v.Family == family).ToList();
            Assert.Equal(Enumerable.Range(1, versions.Count), versions.Select(v => v.Number));
            foreach (var v in versions.Where(v => v.Source is not null))
            {
                // embedded, so KernelCompilerTests.EveryEmbeddedKernelCompilesToACubin and `spark kernels compile` compile it
                Assert.Contains(v.Source!, sources);
                Assert.StartsWith($"lab/{family}/v{v.Number}_", v.Source, StringComparison.Ordinal);
            }
        }
        var registered = KernelLab.Versions.Select(v => v.Source).OfType<string>().ToHashSet();
        var labFiles = sources.Where(s => s.StartsWith("lab/", StringComparison.Ordinal) && s != "lab/fill.cu");
        Assert.All(labFiles, f => Assert.Contains(f, registered));
    }

    [Fact]
    public void EachLabSourceSaysWhatChangedAndWhy()
    {
        foreach (var v in KernelLab.Versions.Where(v => v.Source is not null))
        {
            string text = KernelCompiler.Sources.Single(s => s.Name == v.Source).Text;
            string header = string.Concat(text.Split('\n').TakeWhile(l => l.StartsWith("//", StringComparison.Ordinal)));
            Assert.StartsWith($"// Lab: ", header, StringComparison.Ordinal);
            Assert.Contains($"v{v.Number}", header, StringComparison.Ordinal);
            Assert.Contains(v.Number == 1 ? "What" : "What changed", header, StringComparison.Ordinal);
            Assert.Contains("Why", header, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void NmseIsRelativeAndNaNFails()
    {
        Assert.Equal(0, KernelLab.Nmse([1f, 2f], [1.0, 2.0]));
        Assert.Equal(0.2, KernelLab.Nmse([2f, 2f], [1.0, 2.0]), 12); // (1² + 0) / (1 + 4)
        Assert.True(double.IsNaN(KernelLab.Nmse([float.NaN, 2f], [1.0, 2.0])));
    }

    [Fact]
    public void RoundToBf16IsNearestEven()
    {
        Assert.Equal(1f, KernelLab.RoundToBf16(1f + 1f / 512)); // exactly half an ulp above 1: ties to even (1)
        Assert.Equal(1f + 1f / 64, KernelLab.RoundToBf16(1f + 1f / 64 + 1f / 4096));
        Assert.Equal(3f, KernelLab.RoundToBf16(3f));
    }

    [Fact]
    public void TheReferencesComputeTheMath()
    {
        double[] norm = KernelLab.RmsNormReference([3f, 4f], [1f, 2f], 1, 2, 0);
        double s = 1 / Math.Sqrt(12.5);
        Assert.Equal(3 * s, norm[0], 12);
        Assert.Equal(8 * s, norm[1], 12);

        // the first query row of a sequence sees only its own key: the output is its value row
        float[] q = [1f, 0f, 0f, 1f], k = [0.5f, 0.5f, 2f, -1f], v = [7f, -3f, 1f, 1f];
        double[] attention = KernelLab.AttentionReference(q, k, v, b: 1, s: 2, heads: 1, kvHeads: 1, headDim: 2);
        Assert.Equal(7, attention[0], 12);
        Assert.Equal(-3, attention[1], 12);
        // row 1 sees keys 0 and 1: scores q1·k0/√2 = 0.5/√2 and q1·k1/√2 = −1/√2
        double e0 = Math.Exp(0.5 / Math.Sqrt(2)), e1 = Math.Exp(-1 / Math.Sqrt(2));
        Assert.Equal((e0 * 7 + e1 * 1) / (e0 + e1), attention[2], 12);

        // equal logits: every log-prob is −log V and the entropy log V; a target of −1 gives 0
        var (logProbs, entropies) = KernelLab.LogProbReference([1f, 1f, 1f, 1f], new float[6], [2, -1], rows: 2, width: 2, vocab: 3);
        Assert.Equal(-Math.Log(3), logProbs[0], 12);
        Assert.Equal(0, logProbs[1]);
        Assert.Equal(Math.Log(3), entropies[1], 12);
    }
}
