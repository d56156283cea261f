using Spark.Native.Tests.Cli;
using Spark.Native.Tests.Fixtures;
using Spark.Native.Tests.IO;
using Spark.Native.Training;
using Spark.Native.Training.Grpo;

namespace Spark.Native.Tests.Training.Grpo;

public class GrpoConfigTests
{
    private const string Minimal = """{"model": "m", "output": "o", "data": {"task": "arithmetic"}}""";

    private static SparkException Fails(string json, params string[] overrides) =>
        Assert.Throws<SparkException>(() => GrpoConfig.Parse(json, "config.json", overrides));

    [Fact]
    public void DefaultsMatchTheTrainersAndTheTable()
    {
        var config = GrpoConfig.Parse(Minimal, "config.json");
        Assert.Equal("m", config.Model);
        Assert.Equal("o", config.Output);
        Assert.Equal("arithmetic", config.TaskName);
        Assert.Null(config.DataFile);
        Assert.Equal(Device.Cpu, config.Device);
        var o = config.ToOptions();
        var defaults = new GrpoOptions();
        Assert.Equal(GrpoLoss.Grpo(256), o.Loss);
        Assert.Equal(defaults.PromptsPerStep, o.PromptsPerStep);
        Assert.Equal(defaults.GroupSize, o.GroupSize);
        Assert.Equal(defaults.Temperature, o.Temperature);
        Assert.Equal(defaults.TopK, o.TopK);
        Assert.Equal(defaults.TopP, o.TopP);
        Assert.Empty(o.StopStrings);
        Assert.Equal(defaults.Slots, o.Slots);
        Assert.Equal(defaults.MiniBatches, o.MiniBatches);
        Assert.Equal(defaults.GradientAccumulation, o.GradientAccumulation);
        Assert.Equal(defaults.Steps, o.Steps);
        Assert.Equal(defaults.Seed, o.Seed);
        Assert.Equal(defaults.MasterWeights, o.MasterWeights);
        Assert.Equal(defaults.MaxSamplingAttempts, o.MaxSamplingAttempts);
        Assert.Equal(new OptimizerSettings(), o.Optimizer);
        // every key holds its table default
        foreach (var key in GrpoConfig.Keys.Where(k => k.Path is not ("model" or "output" or "data.task")))
            Assert.Equal(key.Default, config[key.Path]);
    }

    [Theory]
    [InlineData("grpo")]
    [InlineData("dapo")]
    [InlineData("dr_grpo")]
    [InlineData("bnpo")]
    [InlineData("gspo")]
    public void EveryVariantIsItsPreset(string variant)
    {
        var loss = GrpoConfig.Parse(Minimal, "config.json", [$"algorithm.variant={variant}", "algorithm.max_completion_tokens=100"]).ToOptions().Loss;
        var expected = variant switch
        {
            "dapo" => GrpoLoss.Dapo(100, 20),
            "dr_grpo" => GrpoLoss.DrGrpo(100),
            "bnpo" => GrpoLoss.Bnpo(100),
            "gspo" => GrpoLoss.Gspo(100),
            _ => GrpoLoss.Grpo(100),
        };
        Assert.Equal(expected, loss);
    }

    [Fact]
    public void ExplicitKeysOverrideThePresetAndSetOverridesTheFile()
    {
        const string json = """
            {
              // comments and trailing commas are fine
              "model": "m", "output": "o",
              "data": {"file": "x.jsonl", "verifier": "numeric", "prompt_field": "q"},
              "algorithm": {"variant": "dapo", "beta": 0.01, "epsilon_high": 0.3, "dynamic_sampling": false, "reward_scaling": "batch", "overlong_cache": 0},
              "rollout": {"group_size": 4, "stop": ["\n\n"], "temperature": 0.7},
              "optimizer": {"learning_rate": 2e-6, "mini_batches": 2},
              "run": {"steps": 5, "seed": 9, "device": "cuda", "master_weights": "stochastic_rounding"},
            }
            """;
        var config = GrpoConfig.Parse(json, "config.json", ["algorithm.beta=0.02", "rollout.group_size=6", "rollout.stop=</answer>", "algorithm.epsilon_high=null"]);
        var o = config.ToOptions();
        Assert.Equal(GrpoLoss.Dapo(256, 0) with { Beta = 0.02, DynamicSampling = false, RewardScaling = RewardScaling.Batch }, o.Loss);
        Assert.Equal(6, o.GroupSize);
        Assert.Equal(["</answer>"], o.StopStrings);
        Assert.Equal(0.7f, o.Temperature);
        Assert.Equal(2e-6, o.Optimizer.LearningRate);
        Assert.Equal(2, o.MiniBatches);
        Assert.Equal(5, o.Steps);
        Assert.Equal(9UL, o.Seed);
        Assert.Equal(MasterWeights.StochasticRounding, o.MasterWeights);
        Assert.Equal(Device.Cuda, config.Device);
        Assert.Equal("x.jsonl", config.DataFile);
        Assert.Equal("q", config["data.prompt_field"]);
    }

    [Theory]
    [InlineData("""{"model": "m", "output": "o", "modle": 1, "data": {"task": "arithmetic"}}""", "config.json: unknown key 'modle'; valid keys: model, output, data, reward, algorithm, rollout, optimizer, run, spark")]
    [InlineData("""{"model": "m", "output": "o", "data": {"task": "arithmetic", "tsk": 1}}""", "config.json: unknown key 'data.tsk'; valid keys: data.task, data.file,")]
    [InlineData("""{"model": "m", "output": "o", "data": {"task": "arithmetic"}, "algorithm": {"betta": 1}}""", "config.json: unknown key 'algorithm.betta'; valid keys: algorithm.variant, algorithm.beta,")]
    [InlineData("""{"model": "m", "output": "o", "data": {"task": "arithmetic"}, "rollout": {"groups": 1}}""", "config.json: unknown key 'rollout.groups'; valid keys: rollout.prompts_per_step,")]
    [InlineData("""{"model": "m", "output": "o", "data": {"task": "arithmetic"}, "optimizer": {"lr": 1}}""", "config.json: unknown key 'optimizer.lr'; valid keys: optimizer.learning_rate,")]
    [InlineData("""{"model": "m", "output": "o", "data": {"task": "arithmetic"}, "run": {"step": 1}}""", "config.json: unknown key 'run.step'; valid keys: run.steps, run.seed, run.device, run.master_weights")]
    public void UnknownKeysAreNamedWithTheValidOnes(string json, string start)
    {
        var e = Fails(json);
        Assert.StartsWith(start, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void UnknownOverrideKeysAndSectionsAreNamed()
    {
        Assert.StartsWith("--set algorithm.betta=0.1: unknown key 'algorithm.betta'; valid keys: algorithm.variant", Fails(Minimal, "algorithm.betta=0.1").Message, StringComparison.Ordinal);
        Assert.Equal("--set algo.beta=0.1: unknown section 'algo'; valid sections: data, reward, algorithm, rollout, optimizer, run, spark", Fails(Minimal, "algo.beta=0.1").Message);
        Assert.StartsWith("--set beta: expected key=value", Fails(Minimal, "beta").Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"rollout": {"group_size": "eight"}}""", "config.json: 'rollout.group_size' must be an integer ≥ 2 (got \"eight\")")]
    [InlineData("""{"rollout": {"group_size": 1}}""", "config.json: 'rollout.group_size' must be an integer ≥ 2 (got 1)")]
    [InlineData("""{"rollout": {"group_size": 2.5}}""", "config.json: 'rollout.group_size' must be an integer ≥ 2 (got 2.5)")]
    [InlineData("""{"rollout": {"temperature": 0}}""", "config.json: 'rollout.temperature' must be a number > 0 (got 0)")]
    [InlineData("""{"rollout": {"stop": [1]}}""", "config.json: 'rollout.stop' must be an array of strings (got [1])")]
    [InlineData("""{"algorithm": {"variant": "ppo"}}""", "config.json: 'algorithm.variant' must be one of \"grpo\", \"dapo\", \"dr_grpo\", \"bnpo\", \"gspo\" (got \"ppo\")")]
    [InlineData("""{"algorithm": {"beta": -1}}""", "config.json: 'algorithm.beta' must be a number ≥ 0 (or null) (got -1)")]
    [InlineData("""{"algorithm": {"dynamic_sampling": "yes"}}""", "config.json: 'algorithm.dynamic_sampling' must be true or false (or null) (got \"yes\")")]
    [InlineData("""{"run": {"steps": null}}""", "config.json: 'run.steps' must be an integer ≥ 1 (got null)")]
    [InlineData("""{"run": {"device": "tpu"}}""", "config.json: 'run.device' must be one of \"cpu\", \"cuda\" (got \"tpu\")")]
    [InlineData("""{"model": 3}""", "config.json: 'model' must be a string (got 3)")]
    [InlineData("""{"rollout": 3}""", "config.json: 'rollout' must be an object (a section)")]
    public void WrongTypesNameTheKeyAndTheRule(string section, string message)
    {
        // the section JSON is merged into a valid config, so the only problem is the one under test
        var node = System.Text.Json.Nodes.JsonNode.Parse(Minimal)!.AsObject();
        foreach (var (k, v) in System.Text.Json.Nodes.JsonNode.Parse(section)!.AsObject().ToList())
            node[k] = v?.DeepClone();
        Assert.Equal(message, Fails(node.ToJsonString()).Message);
    }

    [Fact]
    public void OverridesAreCheckedByTheSameTable()
    {
        Assert.Equal("--set rollout.group_size=eight: 'rollout.group_size' must be an integer ≥ 2 (got \"eight\")", Fails(Minimal, "rollout.group_size=eight").Message);
        Assert.Equal("arithmetic", GrpoConfig.Parse(Minimal, "c", ["data.task=arithmetic"]).TaskName);
    }

    [Fact]
    public void WholeConfigProblemsAreOneLine()
    {
        Assert.Equal("config.json: 'model' is required", Fails("""{"output": "o", "data": {"task": "arithmetic"}}""").Message);
        Assert.Equal("config.json: set exactly one of 'data.task' and 'data.file'", Fails("""{"model": "m", "output": "o"}""").Message);
        Assert.Equal("config.json: set exactly one of 'data.task' and 'data.file'", Fails(Minimal, "data.file=x.jsonl").Message);
        Assert.StartsWith("config.json: not valid JSON:", Fails("{\"model\": ").Message, StringComparison.Ordinal);
        Assert.Equal("config.json: the configuration must be a JSON object", Fails("[1]").Message);
        // the trainer's own checks run at load time, prefixed with the file
        Assert.StartsWith("config.json: mini-batches is 100", Fails(Minimal, "optimizer.mini_batches=100").Message, StringComparison.Ordinal);
        Assert.StartsWith("config.json: gradient accumulation is 65", Fails(Minimal, "optimizer.gradient_accumulation=65").Message, StringComparison.Ordinal);
        Assert.StartsWith("config.json: 'reward.format_weight' is 1.5; expected 0 … 1", Fails(Minimal, "reward.format_weight=1.5").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SparkKeysBuildTheSparkSourceOnlyWhenOn()
    {
        var prompts = new[] { new GrpoPrompt([1, 2], new Native.Rewards.Tasks.RlProblem("a", "q", "1")) };
        var policy = new ShuffledPrompts(prompts, (_, _) => default, 0);
        using var dir = new TempDir();
        ByteTokenizer.Write(dir.Path);
        var builder = new Native.Rewards.Tasks.RlPromptBuilder(Native.Text.Tokenizer.Load(dir.Path), null);
        Assert.Null(GrpoConfig.Parse(Minimal, "c").CreateSparkSource(policy, builder, 1024));
        var on = GrpoConfig.Parse(Minimal, "c", ["spark.mode=mixed", "spark.mix_share=0.25", "algorithm.max_completion_tokens=100"]).CreateSparkSource(policy, builder, 1024)!;
        Assert.Equal(Native.Training.Recycling.SparkMode.Mixed, on.Mode);
        Assert.Equal(0.25, on.MixShare);
        Assert.Equal(924, on.MaxPromptTokens);
        Assert.StartsWith("config.json: 'spark.mix_share' is 2; expected 0 … 1", Fails(Minimal, "spark.mix_share=2").Message, StringComparison.Ordinal);
        var missing = Assert.Throws<SparkException>(() => GrpoConfig.Parse(Minimal, "c", ["spark.mode=reward_periods", $"spark.templates={Path.Combine(dir.Path, "none")}"]).CreateSparkSource(policy, builder, 1024));
        Assert.Contains("neither a built-in pool (builtin, terse) nor a folder", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FormatWeightMixesTheFormatCheckButAccuracyCountsTheVerifier()
    {
        var config = GrpoConfig.Parse(Minimal, "c", ["data.train_count=2", "reward.format_weight=0.25", "optimizer.gradient_accumulation=4"]);
        Assert.Equal(4, config.ToOptions().GradientAccumulation);
        var problem = config.LoadProblems()[0];
        var reward = config.Reward();
        Assert.Equal(new RewardScore(1, true), reward(problem, $"so \\boxed{{{problem.Answer}}}"));
        Assert.Equal(new RewardScore(0.75, true), reward(problem, $"\\boxed{{{problem.Answer}}} " + new string('x', 120)));
        Assert.Equal(new RewardScore(0.25, false), reward(problem, "\\boxed{-123456789}"));
        Assert.Equal(new RewardScore(0, false), reward(problem, "no idea"));
        // off by default: the verifier alone
        Assert.Equal(new RewardScore(0, false), GrpoConfig.Parse(Minimal, "c", ["data.train_count=2"]).Reward()(problem, "\\boxed{-123456789}"));
    }

    [Fact]
    public void DescribeCoversEveryKey()
    {
        string text = GrpoConfig.Describe();
        foreach (var key in GrpoConfig.Keys)
            Assert.Contains($"| `{key.Path}` | {key.Rule.Replace("|", "\\|", StringComparison.Ordinal)} | {key.DefaultDisplay} |", text, StringComparison.Ordinal);
        Assert.Equal(GrpoConfig.Keys.Count, GrpoConfig.Keys.Select(k => k.Path).Distinct().Count());
    }

    [Fact]
    public void TheCommittedDocsAreDescribesOutput()
    {
        Assert.NotNull(TestPaths.RepoRoot);
        string docs = Path.Combine(TestPaths.RepoRoot, "docs", "grpo-config.md");
        Assert.True(File.Exists(docs), $"{docs} is missing; generate it with: spark train grpo --list-options > docs/grpo-config.md");
        Assert.True(File.ReadAllText(docs).ReplaceLineEndings("\n") == GrpoConfig.Describe(),
            "docs/grpo-config.md is stale; regenerate it with: spark train grpo --list-options > docs/grpo-config.md");
    }

    [Fact]
    public void TaskProblemsCarryTheirVerifierAndScore()
    {
        var config = GrpoConfig.Parse(Minimal, "c", ["data.train_count=5", "data.test_count=3", "data.system_prompt=Be brief."]);
        var problems = config.LoadProblems();
        Assert.Equal(5, problems.Count);
        Assert.All(problems, p => Assert.Equal("Be brief.", p.SystemPrompt));
        var reward = GrpoConfig.VerifierReward();
        Assert.Equal(1.0, reward(problems[0], $"\\boxed{{{problems[0].Answer}}}"));
        Assert.Equal(0.0, reward(problems[0], "no idea"));
    }
}

public class TrainGrpoCliTests
{
    [Fact]
    public void TrainsTwoStepsOnTheFixtureModel()
    {
        using var ckpt = new TinyCheckpoint(new TinySpec { Vocab = 257, Eos = [256], Hidden = 32, Intermediate = 64, Heads = 4, KvHeads = 2, Seed = 31 });
        ByteTokenizer.Write(ckpt.Directory);
        using var dir = new TempDir();
        string output = Path.Combine(dir.Path, "run");
        string config = Path.Combine(dir.Path, "config.json");
        File.WriteAllText(config, System.Text.Json.JsonSerializer.Serialize(new
        {
            model = ckpt.Directory,
            output,
            data = new { task = "arithmetic", train_count = 8, test_count = 4 },
            algorithm = new { max_completion_tokens = 4 },
            rollout = new { group_size = 2, prompts_per_step = 2 },
            optimizer = new { learning_rate = 1e-4 },
            run = new { steps = 3, eval_every = 2, eval_k = 2, save_every = 1 },
        }));
        // beta stays at grpo's 0.04, so the reference model is loaded too
        var (code, _, err) = CliTests.Spark("train", "grpo", "--config", config, "--set", "run.steps=2");
        Assert.True(code == 0, err);
        Assert.Contains("step 2/2", err, StringComparison.Ordinal);
        Assert.Contains("reference model: a frozen copy", err, StringComparison.Ordinal);
        Assert.Contains("  kl ", err, StringComparison.Ordinal);
        var metrics = File.ReadAllLines(Path.Combine(output, RunReport.MetricsFile));
        Assert.Equal(2, metrics.Length);
        Assert.True(File.Exists(Path.Combine(output, RunReport.ReportFile)));
        // held-out evaluation after step 2 (the last), its numbers in that step's metrics line
        Assert.Contains("eval on 4 held-out problems: accuracy", err, StringComparison.Ordinal);
        Assert.Contains("\"eval_pass_at_2\"", metrics[1], StringComparison.Ordinal);
        // checkpoints in Hugging Face format with the tokenizer files, and a resume continues the run
        Assert.True(File.Exists(Path.Combine(output, "checkpoint-1", "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(output, GrpoTrainer.FinalCheckpoint, "tokenizer.json")));
        var resumed = CliTests.Spark("train", "grpo", "--config", config, "--set", "run.steps=2", "--set", $"run.resume={Path.Combine(output, "checkpoint-1")}");
        Assert.True(resumed.Code == 0, resumed.Err);
        Assert.DoesNotContain("step 1/2", resumed.Err, StringComparison.Ordinal);
        Assert.Contains("step 2/2", resumed.Err, StringComparison.Ordinal);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(output, RunReport.MetricsFile)).Length);

        // the same binary runs SPARK: recycled items are counted in every metrics line
        string sparkOutput = Path.Combine(dir.Path, "spark");
        var spark = CliTests.Spark("train", "grpo", "--config", config, "--set", "run.steps=2", "--set", "algorithm.beta=0",
            "--set", "spark.mode=reward_periods", "--set", $"output={sparkOutput}");
        Assert.True(spark.Code == 0, spark.Err);
        Assert.Contains("spark: reward_periods, recycled prompts up to 124 tokens, built-in templates", spark.Err, StringComparison.Ordinal);
        Assert.All(File.ReadAllLines(Path.Combine(sparkOutput, RunReport.MetricsFile)), l => Assert.Contains("\"reward_period\"", l, StringComparison.Ordinal));
        // with SPARK on, the held-out evaluation also has the model judge those answers (its metrics when defined)
        Assert.Contains("judge on ", spark.Err, StringComparison.Ordinal);
        Assert.Contains("\"eval_judge_answers\"", File.ReadAllLines(Path.Combine(sparkOutput, RunReport.MetricsFile))[1], StringComparison.Ordinal);
        Assert.DoesNotContain("judge on ", err, StringComparison.Ordinal); // plain GRPO does not, unless run.eval_judge says so
    }

    [Fact]
    public void ConfigErrorsAreOneLineAndListOptionsPrintsTheTable()
    {
        using var dir = new TempDir();
        string config = Path.Combine(dir.Path, "config.json");
        File.WriteAllText(config, """{"model": "m", "output": "o", "data": {"task": "arithmetic"}, "algorithm": {"betta": 0.1}}""");
        var (code, _, err) = CliTests.Spark("train", "grpo", "--config", config);
        Assert.Equal(1, code);
        Assert.StartsWith("error: config.json: unknown key 'algorithm.betta'; valid keys: algorithm.variant", err, StringComparison.Ordinal);
        var (listCode, listOut, _) = CliTests.Spark("train", "grpo", "--list-options");
        Assert.Equal(0, listCode);
        Assert.Equal(GrpoConfig.Describe(), listOut.ReplaceLineEndings("\n"));
    }
}
