using System.CommandLine;
using System.Diagnostics;
using Spark.Native;
using Spark.Native.Generation;

namespace Spark.Cli;

internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder", Required = true };
        var ids = new Option<string[]>("--ids") { Description = "Comma-separated prompt token ids; repeat for a batch", Required = true };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Most tokens to generate per prompt", DefaultValueFactory = _ => 64 };
        var temperature = new Option<float>("--temperature") { Description = "Sampling temperature; 0 = greedy (default: generation_config.json, else 1)" };
        var topK = new Option<int>("--top-k") { Description = "Keep the k most likely tokens; 0 = off (default: generation_config.json, else off)" };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling mass; 1 = off (default: generation_config.json, else off)" };
        var decoding = new Option<DecodingStrategy?>("--decoding")
        {
            Description = "greedy or sample (default: generation_config.json's do_sample, else greedy; --temperature > 0, --top-k or --top-p imply sample)",
        };
        var seed = new Option<ulong>("--seed") { Description = "Random seed (same seed, same output)", DefaultValueFactory = _ => 0UL };
        var command = new Command("generate", "Generate continuations of token-id prompts (one line of ids per prompt)")
            { model, ids, maxNew, decoding, temperature, topK, topP, seed };
        command.SetAction(parse =>
        {
            var prompts = parse.GetRequiredValue(ids).Select(s => (IReadOnlyList<int>)CliApp.ParseIds(s, "--ids")).ToArray();
            string dir = parse.GetRequiredValue(model);
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
            using var m = SparkModel.Load(dir);
            foreach (string notice in m.LoadNotices) Console.Error.WriteLine($"note: {notice}");
            var clock = Stopwatch.StartNew();
            int produced = 0;
            var results = m.Generate(prompts, options, token =>
            {
                produced++;
                if (produced % 16 == 0 && !Console.IsErrorRedirected)
                    Console.Error.Write($"\r{produced} tokens, {produced / clock.Elapsed.TotalSeconds:F1} tokens/s");
            });
            if (!Console.IsErrorRedirected) Console.Error.Write("\r");
            foreach (var r in results) Console.WriteLine(string.Join(",", r.Tokens));
            Console.Error.WriteLine($"{produced} tokens in {clock.Elapsed.TotalSeconds:F2} s ({produced / Math.Max(1e-9, clock.Elapsed.TotalSeconds):F1} tokens/s); " +
                $"finish: {string.Join(", ", results.Select(r => r.FinishReason.ToString().ToLowerInvariant()))}");
            return 0;
        });
        return command;
    }
}
