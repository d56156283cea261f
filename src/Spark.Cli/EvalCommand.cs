using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spark.Native;
using Spark.Native.Generation;
using Spark.Native.Judging;
using Spark.Native.Rewards;
using Spark.Native.Rewards.Tasks;
using Spark.Native.Text;
using Spark.Native.Text.Templates;

namespace Spark.Cli;

internal static class EvalCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder (with tokenizer files; its chat template is applied when it has one)", Required = true };
        var data = new Option<string?>("--data") { Description = "JSONL problems (one object per line)" };
        var promptField = new Option<string>("--prompt-field") { Description = "With --data: field holding the question", DefaultValueFactory = _ => "prompt" };
        var answerField = new Option<string>("--answer-field") { Description = "With --data: field holding the reference answer", DefaultValueFactory = _ => "answer" };
        var idField = new Option<string?>("--id-field") { Description = "With --data: field holding a stable id (default: file:line)" };
        var verifier = new Option<string>("--verifier") { Description = $"With --data: how answers are checked ({string.Join(", ", EvalScorers.Names)})", DefaultValueFactory = _ => VerifierNames.Math };
        var systemPrompt = new Option<string?>("--system-prompt") { Description = "With --data: system message for every problem" };
        var promptSuffix = new Option<string>("--prompt-suffix") { Description = "With --data: appended verbatim to every prompt", DefaultValueFactory = _ => "" };
        var task = new Option<string?>("--task") { Description = $"A synthetic task instead of --data ({string.Join(", ", SyntheticTasks.Names)})" };
        var count = new Option<int>("--count") { Description = "With --task: problems to generate (the held-out test split of a training run with the same --seed)", DefaultValueFactory = _ => 100 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the task's problems and of sampling", DefaultValueFactory = _ => 0UL };
        var k = new Option<int>("--k") { Description = "Samples per problem: pass@1…k and maj@k are reported", DefaultValueFactory = _ => 1 };
        var temperature = new Option<float?>("--temperature") { Description = "Sampling temperature; 0 = greedy, which forces k = 1 (default: 0 when k = 1, else 1)" };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling mass; 1 = off", DefaultValueFactory = _ => 1f };
        var topK = new Option<int>("--top-k") { Description = "Keep the k most likely tokens; 0 = off", DefaultValueFactory = _ => 0 };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Most tokens per completion", DefaultValueFactory = _ => 512 };
        var limit = new Option<int?>("--limit") { Description = "Evaluate only the first N problems" };
        var slots = new Option<int>("--slots") { Description = "Sequences decoding at once", DefaultValueFactory = _ => 32 };
        var output = new Option<string?>("--out") { Description = "Write per-problem results (samples, rewards, answers) as JSONL to this file" };
        var json = new Option<bool>("--json") { Description = "Print the summary as one JSON object instead of a table" };
        var device = CliApp.DeviceOption();
        var judging = new SelfJudgeCli();
        var command = new Command("eval", "Evaluate a model on verifiable problems: accuracy, pass@k, maj@k, mean length; " +
            "with --judge, --reflect N or --best-of N, the model as its own judge")
        {
            model, data, promptField, answerField, idField, verifier, systemPrompt, promptSuffix, task, count, seed,
            k, temperature, topP, topK, maxNew, limit, slots, output, json, device,
        };
        foreach (var option in judging.All) command.Options.Add(option);
        command.SetAction(parse =>
        {
            string? dataPath = parse.GetValue(data);
            string? taskName = parse.GetValue(task);
            if ((dataPath is null) == (taskName is null)) throw new SparkException("give either --data or --task");
            ulong seedValue = parse.GetValue(seed);
            IReadOnlyList<RlProblem> problems;
            string source;
            if (taskName is not null)
            {
                var synthetic = SyntheticTasks.Get(taskName);
                int n = parse.GetValue(count);
                if (n < 1) throw new SparkException($"--count is {n}; expected ≥ 1");
                problems = SyntheticTasks.Split(synthetic, seedValue, 0, n).Test;
                source = $"task {taskName} (seed {seedValue})";
            }
            else
            {
                string verifierName = parse.GetValue(verifier)!;
                if (!EvalScorers.Names.Contains(verifierName, StringComparer.Ordinal))
                    throw new SparkException($"unknown verifier '{verifierName}'; expected one of: {string.Join(", ", EvalScorers.Names)}");
                var dataset = RlDataset.Load(dataPath!, new RlDataOptions
                {
                    PromptField = parse.GetValue(promptField)!, AnswerField = parse.GetValue(answerField)!, IdField = parse.GetValue(idField),
                    SystemPrompt = parse.GetValue(systemPrompt), PromptSuffix = parse.GetValue(promptSuffix)!, Verifier = verifierName,
                });
                problems = dataset.Problems;
                source = dataPath!;
            }
            EvalScorers.Validate(problems);
            judging.Validate(parse);
            if (judging.Any(parse) && parse.GetValue(output) is not null)
                throw new SparkException("--out writes the plain evaluation's per-problem results; it does not apply to --judge, --reflect or --best-of (use --json for their summaries)");
            if ((parse.GetValue(judging.Reflect) is not null || parse.GetValue(judging.BestOf) is not null)
                && (parse.GetResult(topP) is { Implicit: false } || parse.GetResult(topK) is { Implicit: false }))
                throw new SparkException("--top-p and --top-k do not apply to --reflect or --best-of, which sample at --temperature only");

            int kValue = parse.GetValue(k);
            float t = parse.GetValue(temperature) ?? (kValue == 1 ? 0f : 1f);
            var options = new EvalOptions
            {
                K = kValue, Temperature = t, TopP = parse.GetValue(topP), TopK = parse.GetValue(topK), MaxCompletionTokens = parse.GetValue(maxNew),
                Seed = seedValue, Slots = parse.GetValue(slots), Limit = parse.GetValue(limit),
            };
            if (t == 0f && kValue > 1) Console.Error.WriteLine($"note: temperature 0 is greedy decoding, whose samples are identical: k is forced from {kValue} to 1");

            string dir = parse.GetRequiredValue(model);
            var tokenizer = Tokenizer.Load(dir);
            ChatTemplate? template = TrainCommand.HasTemplate(dir) ? ChatTemplate.FromTokenizerConfig(ChatTemplateCommand.TokenizerConfigPath(dir)) : null;
            using var m = SparkModel.Load(dir, new ModelLoadOptions { Device = parse.GetValue(device) });
            foreach (string notice in m.LoadNotices) Console.Error.WriteLine($"note: {notice}");
            int evaluated = options.Limit is { } l ? Math.Min(l, problems.Count) : problems.Count;
            Console.Error.WriteLine($"eval: {evaluated} problems from {source}, {options.EffectiveK} sample(s) each" +
                (template is null ? ", plain prompts" : ", chat template applied"));

            if (judging.Any(parse))
            {
                SelfJudgement(parse, judging, m, tokenizer, template, problems, options, parse.GetResult(k) is { Implicit: false }, parse.GetValue(temperature), parse.GetValue(json));
                return 0;
            }
            var report = Evaluator.Run(m, tokenizer, template, problems, EvalScorers.ByVerifierName(), options, Progress());
            if (parse.GetValue(output) is { } outPath) WriteJsonl(outPath, report);
            Console.Write(parse.GetValue(json) ? SummaryJson(report, options) + "\n" : SummaryTable(report, options));
            return 0;
        });
        return command;
    }

    /// <summary>
    /// --judge, --reflect N and --best-of N (any together): the judge evaluation samples k answers per problem (4 at
    /// temperature 1 unless given), the reflect loop decodes greedily (or at --temperature), best-of-N samples at
    /// temperature 1 (or --temperature).
    /// </summary>
    private static void SelfJudgement(ParseResult parse, SelfJudgeCli judging, SparkModel m, Tokenizer tokenizer, ChatTemplate? template,
        IReadOnlyList<RlProblem> problems, EvalOptions options, bool kGiven, float? temperature, bool asJson)
    {
        var judge = judging.Create(parse, m, tokenizer, template);
        var scorer = EvalScorers.ByVerifierName();
        var input = judging.Input(parse);
        var summary = new JsonObject();
        if (parse.GetValue(judging.Judge))
        {
            int kJudge = kGiven ? options.K : 4;
            var sampling = options with { K = kJudge, Temperature = temperature ?? 1f };
            Console.Error.WriteLine($"judge: {sampling.EffectiveK} answer(s) per problem, judged by the model itself (\"{judge.Pointwise.Text}\")");
            var r = JudgeEvaluation.Run(m, tokenizer, template, problems, scorer, judge, new JudgeEvalOptions { Sampling = sampling, Input = input }, Progress());
            if (asJson) summary["judge"] = SelfJudgeCli.JudgeJson(r);
            else Console.Write("== judge\n" + SelfJudgeCli.JudgeTable(r));
        }
        var testTime = new Native.Judging.TestTimeOptions
        {
            MaxCompletionTokens = options.MaxCompletionTokens, Temperature = temperature, Seed = options.Seed, Slots = options.Slots,
            Limit = options.Limit, Input = input,
        };
        if (parse.GetValue(judging.Reflect) is { } rounds)
        {
            Console.Error.WriteLine($"reflect: up to {rounds} revision round(s) per problem");
            var r = TestTimeScaling.Reflect(m, tokenizer, template, problems, scorer, judge, judging.Pool(parse), rounds, testTime);
            if (asJson) summary["reflect"] = SelfJudgeCli.ReflectJson(r);
            else Console.Write($"== reflect {rounds}\n" + SelfJudgeCli.ReflectTable(r));
        }
        if (parse.GetValue(judging.BestOf) is { } n)
        {
            Console.Error.WriteLine($"best-of-{n}: {n} samples per problem, picked by P(Yes)");
            var r = TestTimeScaling.BestOf(m, tokenizer, template, problems, scorer, judge, n, testTime);
            if (asJson) summary["best_of"] = SelfJudgeCli.BestOfJson(r);
            else Console.Write($"== best-of-{n}\n" + SelfJudgeCli.BestOfTable(r));
        }
        if (asJson) Console.WriteLine(SelfJudgeCli.Json(summary));
    }

    /// <summary>Progress on stderr: a live line on a terminal, else a line at each tenth of the samples.</summary>
    private static Action<RolloutProgress> Progress()
    {
        bool live = !Console.IsErrorRedirected;
        int lastTenth = 0;
        return p =>
        {
            string line = $"{p.FinishedSamples}/{p.TotalSamples} samples, {p.GeneratedTokens} tokens, " +
                $"{p.GeneratedTokens / Math.Max(1e-9, p.Elapsed.TotalSeconds):F1} tokens/s";
            if (live)
            {
                Console.Error.Write($"\r{line}   ");
                if (p.FinishedSamples == p.TotalSamples) Console.Error.WriteLine();
                return;
            }
            int tenth = p.TotalSamples == 0 ? 10 : p.FinishedSamples * 10 / p.TotalSamples;
            if (tenth > lastTenth)
            {
                lastTenth = tenth;
                Console.Error.WriteLine(line);
            }
        };
    }

    /// <summary>pass@j rows shown in the table: powers of two below k, and k itself (--json and --out hold every j).</summary>
    private static IEnumerable<int> ShownPassAt(int k)
    {
        for (int j = 1; j < k; j *= 2) yield return j;
        yield return k;
    }

    private static string SummaryTable(EvalReport r, EvalOptions o)
    {
        var inv = CultureInfo.InvariantCulture;
        var rows = new List<(string, string)>
        {
            ("problems", r.Problems.Count.ToString(inv)),
            ("samples/problem", r.Temperature == 0f ? "1 (greedy)" : string.Create(inv, $"{r.K} (temperature {r.Temperature:0.###}, top-p {o.TopP:0.###}, top-k {o.TopK})")),
            ("accuracy", string.Create(inv, $"{r.Accuracy:P1} (first sample)")),
        };
        foreach (int j in ShownPassAt(r.K)) rows.Add(($"pass@{j}", string.Create(inv, $"{r.PassAtK[j - 1]:P1}")));
        rows.Add(($"maj@{r.K}", string.Create(inv, $"{r.MajorityAtK:P1}")));
        rows.Add(("mean length", string.Create(inv, $"{r.MeanCompletionTokens:F1} tokens ({r.TruncatedFraction:P1} truncated at {o.MaxCompletionTokens})")));
        rows.Add(("tokens/s", string.Create(inv, $"{r.TokensPerSecond:F1} ({r.Stats.GeneratedTokens} tokens in {r.Stats.Elapsed.TotalSeconds:F2} s)")));
        int width = rows.Max(x => x.Item1.Length) + 2;
        return string.Concat(rows.Select(x => x.Item1.PadRight(width) + x.Item2 + "\n"));
    }

    private static string SummaryJson(EvalReport r, EvalOptions o)
    {
        var passAt = new JsonObject();
        for (int j = 1; j <= r.K; j++) passAt[j.ToString(CultureInfo.InvariantCulture)] = r.PassAtK[j - 1];
        return new JsonObject
        {
            ["problems"] = r.Problems.Count,
            ["k"] = r.K,
            ["temperature"] = r.Temperature,
            ["top_p"] = o.TopP,
            ["top_k"] = o.TopK,
            ["max_new_tokens"] = o.MaxCompletionTokens,
            ["seed"] = o.Seed,
            ["accuracy"] = r.Accuracy,
            ["pass_at"] = passAt,
            ["maj_at_k"] = r.MajorityAtK,
            ["mean_completion_tokens"] = r.MeanCompletionTokens,
            ["truncated_fraction"] = r.TruncatedFraction,
            ["generated_tokens"] = r.Stats.GeneratedTokens,
            ["prompt_tokens"] = r.Stats.PromptTokens,
            ["elapsed_s"] = r.Stats.Elapsed.TotalSeconds,
            ["tokens_per_s"] = r.TokensPerSecond,
        }.ToJsonString();
    }

    private static void WriteJsonl(string path, EvalReport report)
    {
        using var writer = new StreamWriter(path, append: false, new System.Text.UTF8Encoding(false));
        foreach (var p in report.Problems)
        {
            var samples = new JsonArray();
            foreach (var s in p.Samples)
                samples.Add(new JsonObject
                {
                    ["text"] = s.Text, ["tokens"] = s.Tokens, ["finish"] = s.FinishReason.ToString().ToLowerInvariant(),
                    ["reward"] = s.Reward, ["answer"] = s.Answer, ["correct"] = s.Correct,
                });
            var line = new JsonObject
            {
                ["id"] = p.Id, ["prompt"] = p.Prompt, ["reference"] = p.Reference, ["correct"] = p.CorrectCount, ["k"] = p.Samples.Count,
                ["pass_at"] = new JsonArray([.. p.PassAtK.Select(x => (JsonNode?)x)]),
                ["majority_answer"] = p.MajorityAnswer, ["majority_correct"] = p.MajorityCorrect, ["samples"] = samples,
            };
            writer.Write(line.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            writer.Write('\n');
        }
    }
}
