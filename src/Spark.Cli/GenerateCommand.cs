using System.CommandLine;
using System.Diagnostics;
using Spark.Native;
using Spark.Native.Generation;
using Spark.Native.Judging;
using Spark.Native.Rewards;
using Spark.Native.Rewards.Tasks;
using Spark.Native.Text;
using Spark.Native.Text.Templates;

namespace Spark.Cli;

internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder", Required = true };
        var ids = new Option<string[]>("--ids") { Description = "Comma-separated prompt token ids; repeat for a batch (prints ids)" };
        var prompt = new Option<string?>("--prompt") { Description = "Prompt text, encoded with the model's tokenizer (prints text as it is generated)" };
        var chat = new Option<bool>("--chat") { Description = "With --prompt: wrap it as a user message in the model's chat template" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Most tokens to generate per prompt", DefaultValueFactory = _ => 64 };
        var temperature = new Option<float>("--temperature") { Description = "Sampling temperature; 0 = greedy (default: generation_config.json, else 1)" };
        var topK = new Option<int>("--top-k") { Description = "Keep the k most likely tokens; 0 = off (default: generation_config.json, else off)" };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling mass; 1 = off (default: generation_config.json, else off)" };
        var decoding = new Option<DecodingStrategy?>("--decoding")
        {
            Description = "greedy or sample (default: generation_config.json's do_sample, else greedy; --temperature > 0, --top-k or --top-p imply sample)",
        };
        var device = CliApp.DeviceOption();
        var seed = new Option<ulong>("--seed") { Description = "Random seed (same seed, same output)", DefaultValueFactory = _ => 0UL };
        var judging = new SelfJudgeCli();
        var verifier = new Option<string>("--verifier")
        {
            Description = $"With --reflect/--best-of: how the final answer is read from an attempt ({string.Join(", ", Verifiers.Names)})",
            DefaultValueFactory = _ => VerifierNames.Math,
        };
        var command = new Command("generate", "Generate continuations of token-id prompts (one line of ids per prompt), or of --prompt text; " +
            "with --reflect N or --best-of N, let the model judge and revise or pick its own answers")
            { model, ids, prompt, chat, maxNew, decoding, temperature, topK, topP, seed, device, judging.Reflect, judging.BestOf, judging.Templates,
              judging.VerdictPrefix, judging.JudgeInput, judging.JudgeReasoning, verifier };
        command.SetAction(parse =>
        {
            string dir = parse.GetRequiredValue(model);
            string[] idTexts = parse.GetValue(ids) ?? [];
            string? promptText = parse.GetValue(prompt);
            if ((idTexts.Length == 0) == (promptText is null)) throw new SparkException("give either --ids or --prompt");
            if (parse.GetValue(chat) && promptText is null) throw new SparkException("--chat needs --prompt");
            judging.Validate(parse);
            if (judging.Any(parse))
            {
                if (promptText is null) throw new SparkException("--reflect and --best-of need --prompt");
                if (parse.GetResult(topK) is not null || parse.GetResult(topP) is not null || parse.GetValue(decoding) is not null)
                    throw new SparkException("--decoding, --top-k and --top-p do not apply to --reflect or --best-of, which decode greedily (reflect) or sample at --temperature");
                SelfJudged(parse, judging, dir, promptText, parse.GetValue(chat), parse.GetValue(verifier)!, parse.GetValue(maxNew),
                    parse.GetResult(temperature) is null ? null : parse.GetValue(temperature), parse.GetValue(seed), parse.GetValue(device));
                return 0;
            }
            Tokenizer? tokenizer = promptText is null ? null : Tokenizer.Load(dir);
            IReadOnlyList<int>[] prompts = promptText is null
                ? idTexts.Select(s => (IReadOnlyList<int>)CliApp.ParseIds(s, "--ids")).ToArray()
                : [EncodePrompt(tokenizer!, dir, promptText, parse.GetValue(chat))];
            // generation_config.json gives the defaults, as in Hugging Face generate; flags override them
            var options = SparkModel.LoadGenerationDefaults(dir, out var ignored) with { MaxNewTokens = parse.GetValue(maxNew) };
            foreach (string setting in ignored) Console.Error.WriteLine($"note: generation_config.json sets {setting}, which is not applied");
            bool impliesSampling = false, zeroTemperature = false;
            if (parse.GetResult(temperature) is not null)
            {
                float t = parse.GetValue(temperature);
                zeroTemperature = t == 0f;
                if (!zeroTemperature) (options, impliesSampling) = (options with { Temperature = t }, true);
            }
            if (parse.GetResult(topK) is not null) (options, impliesSampling) = (options with { TopK = parse.GetValue(topK) }, true);
            if (parse.GetResult(topP) is not null) (options, impliesSampling) = (options with { TopP = parse.GetValue(topP) }, true);
            if (parse.GetValue(decoding) is { } strategy) options = options with { Strategy = strategy };
            else if (zeroTemperature) options = options with { Strategy = DecodingStrategy.Greedy };
            else if (impliesSampling) options = options with { Strategy = DecodingStrategy.Sample };
            options = options with { Seed = parse.GetValue(seed) };
            using var m = SparkModel.Load(dir, new ModelLoadOptions { Device = parse.GetValue(device) });
            foreach (string notice in m.LoadNotices) Console.Error.WriteLine($"note: {notice}");
            var clock = Stopwatch.StartNew();
            int produced = 0;
            var streamer = tokenizer?.CreateIncrementalDecoder(SkipSpecialTokens.Yes);
            var results = m.Generate(prompts, options, token =>
            {
                produced++;
                if (streamer is not null) Console.Write(streamer.Append(token.Token));
                else if (produced % 16 == 0 && !Console.IsErrorRedirected)
                    Console.Error.Write($"\r{produced} tokens, {produced / clock.Elapsed.TotalSeconds:F1} tokens/s");
            });
            if (streamer is not null) Console.WriteLine(streamer.Flush());
            else
            {
                if (!Console.IsErrorRedirected) Console.Error.Write("\r");
                foreach (var r in results) Console.WriteLine(string.Join(",", r.Tokens));
            }
            Console.Error.WriteLine($"{produced} tokens in {clock.Elapsed.TotalSeconds:F2} s ({produced / Math.Max(1e-9, clock.Elapsed.TotalSeconds):F1} tokens/s); " +
                $"finish: {string.Join(", ", results.Select(r => r.FinishReason.ToString().ToLowerInvariant()))}");
            return 0;
        });
        return command;
    }

    /// <summary>
    /// --reflect N: each attempt with its P(Yes), until a Yes or N revisions; --best-of N: the N answers with their
    /// P(Yes), the chosen one marked. Attempts are read by the verifier's answer extraction (there is no reference).
    /// </summary>
    private static void SelfJudged(ParseResult parse, SelfJudgeCli judging, string dir, string promptText, bool chat, string verifierName, int maxNew,
        float? temperature, ulong seed, Device device)
    {
        if (!Verifiers.Names.Contains(verifierName, StringComparer.Ordinal))
            throw new SparkException($"unknown verifier '{verifierName}'; expected one of: {string.Join(", ", Verifiers.Names)}");
        var tokenizer = Tokenizer.Load(dir);
        var template = chat ? ChatTemplate.FromTokenizerConfig(ChatTemplateCommand.TokenizerConfigPath(dir)) : null;
        using var m = SparkModel.Load(dir, new ModelLoadOptions { Device = device });
        foreach (string notice in m.LoadNotices) Console.Error.WriteLine($"note: {notice}");
        var judge = judging.Create(parse, m, tokenizer, template);
        var extractor = Verifiers.Create(verifierName);
        // no reference: only the final answer is read (correctness is unknown and not shown)
        VerifierResult Read(RlProblem problem, RolloutSample sample) => extractor.Score(sample.Text ?? "", "0") with { Reward = 0 };
        var problem = new RlProblem("prompt", promptText, "0") { Verifier = verifierName };
        var options = new TestTimeOptions { MaxCompletionTokens = maxNew, Temperature = temperature, Seed = seed, Input = judging.Input(parse) };
        var clock = Stopwatch.StartNew();
        if (parse.GetValue(judging.Reflect) is { } rounds)
        {
            var trace = TestTimeScaling.Reflect(m, tokenizer, template, [problem], Read, judge, judging.Pool(parse), rounds, options).Traces[0];
            for (int i = 0; i < trace.Steps.Count; i++)
            {
                var step = trace.Steps[i];
                Console.WriteLine($"--- {(i == 0 ? "answer" : $"revision {i}")}  (final answer: {step.Attempt.FinalAnswer ?? "none"}; P(Yes) = {step.ProbabilityYes:F3})");
                Console.WriteLine(step.Attempt.Text);
            }
            Console.WriteLine(trace.Accepted ? $"--- accepted after {trace.Revisions} revision(s)" : $"--- no Yes within {rounds} revision(s): the last attempt stands");
        }
        if (parse.GetValue(judging.BestOf) is { } n)
        {
            var choice = TestTimeScaling.BestOf(m, tokenizer, template, [problem], Read, judge, n, options).Choices[0];
            for (int i = 0; i < choice.Candidates.Count; i++)
            {
                Console.WriteLine($"--- candidate {i + 1}{(i == choice.Chosen ? " (chosen)" : "")}  (final answer: {choice.Candidates[i].FinalAnswer ?? "none"}; P(Yes) = {choice.ProbabilityYes[i]:F3})");
                Console.WriteLine(choice.Candidates[i].Text);
            }
            Console.WriteLine($"--- best of {n}: candidate {choice.Chosen + 1}");
        }
        Console.Error.WriteLine($"done in {clock.Elapsed.TotalSeconds:F2} s");
    }

    /// <summary>
    /// Plain prompts get the tokenizer's special tokens (e.g. BOS); chat prompts are rendered by the chat template,
    /// which writes its own special tokens, and encoded without adding more (as transformers does).
    /// </summary>
    private static int[] EncodePrompt(Tokenizer tokenizer, string modelDir, string text, bool chat)
    {
        if (!chat) return tokenizer.Encode(text, SpecialTokens.Add);
        var template = ChatTemplate.FromTokenizerConfig(ChatTemplateCommand.TokenizerConfigPath(modelDir));
        string rendered = template.Render([new ChatMessage("user", text)], new ChatTemplateOptions { GenerationPrompt = GenerationPrompt.Add });
        return tokenizer.Encode(rendered, SpecialTokens.Omit);
    }
}
