using System.CommandLine;
using Spark.Native;
using Spark.Native.Text;
using Spark.Native.Text.Templates;
using Spark.Native.Training;

namespace Spark.Cli;

internal static class TrainCommand
{
    public static Command Create()
    {
        var train = new Command("train", "Train a model");
        train.Subcommands.Add(Sft());
        train.Subcommands.Add(TrainGrpoCommand.Create());
        return train;
    }

    private static Command Sft()
    {
        var model = new Option<string>("--model") { Description = "Model folder to start from (with tokenizer files)", Required = true };
        var data = new Option<string>("--data") { Description = "JSONL training data", Required = true };
        var output = new Option<string>("--out") { Description = "Output folder: checkpoint-N/ and final/ (Hugging Face format + training state), metrics.jsonl", Required = true };
        var promptField = new Option<string>("--prompt-field") { Description = "Field holding the prompt", DefaultValueFactory = _ => "prompt" };
        var completionField = new Option<string>("--completion-field") { Description = "Field holding the completion (the learned part)", DefaultValueFactory = _ => "completion" };
        var messagesField = new Option<string?>("--messages-field") { Description = "Field holding chat messages instead (assistant turns are learned)" };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate", DefaultValueFactory = _ => 1e-5 };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 1 };
        var batch = new Option<int>("--batch-size") { Description = "Examples per micro-batch", DefaultValueFactory = _ => 8 };
        var accum = new Option<int>("--grad-accum") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => 1 };
        var maxLength = new Option<int>("--max-length") { Description = "Longest example in tokens", DefaultValueFactory = _ => 1024 };
        var overlong = new Option<OverlongExamples>("--overlong") { Description = "Truncate or Drop examples over --max-length", DefaultValueFactory = _ => OverlongExamples.Truncate };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0UL };
        var schedule = new Option<ScheduleKind>("--schedule") { DefaultValueFactory = _ => ScheduleKind.Cosine };
        var warmup = new Option<int>("--warmup-steps") { DefaultValueFactory = _ => 0 };
        var weightDecay = new Option<double>("--weight-decay") { Description = "AdamW decoupled decay (not applied to norms and biases)", DefaultValueFactory = _ => 0.0 };
        var beta1 = new Option<double>("--beta1") { DefaultValueFactory = _ => 0.9 };
        var beta2 = new Option<double>("--beta2") { DefaultValueFactory = _ => 0.999 };
        var adamEps = new Option<double>("--adam-eps") { DefaultValueFactory = _ => 1e-8 };
        var maxGradNorm = new Option<double>("--max-grad-norm") { Description = "Global-norm clipping; 0 = off", DefaultValueFactory = _ => 1.0 };
        var saveEvery = new Option<int>("--save-every") { Description = "Checkpoint every N steps; 0 = final only", DefaultValueFactory = _ => 0 };
        var resume = new Option<string?>("--resume") { Description = "Continue the run saved in this checkpoint folder (its weights and training state)" };
        var skipBad = new Option<bool>("--skip-bad-lines") { Description = "Skip unreadable JSONL lines (counted) instead of stopping" };
        var recompute = new Option<RecomputeNorms>("--recompute-norms") { Description = "Yes: recompute RMSNorm outputs in the backward to save memory", DefaultValueFactory = _ => RecomputeNorms.No };
        var stopAfter = new Option<long?>("--stop-after-steps") { Description = "Stop after this many steps of this invocation" };
        var device = CliApp.DeviceOption();
        var masterWeights = new Option<MasterWeights>("--master-weights")
        {
            Description = "BF16 weights (cuda): Fp32 keeps an F32 master copy; StochasticRounding updates them in place with stochastic rounding",
            DefaultValueFactory = _ => MasterWeights.Fp32,
        };
        var command = new Command("sft", "Supervised fine-tuning on prompt/completion or chat data (completion-only loss)")
        {
            model, data, output, promptField, completionField, messagesField, lr, epochs, batch, accum, maxLength, overlong, seed,
            schedule, warmup, weightDecay, beta1, beta2, adamEps, maxGradNorm, saveEvery, resume, skipBad, recompute, stopAfter, device, masterWeights,
        };
        command.SetAction(parse =>
        {
            string source = parse.GetRequiredValue(model);
            string? resumeDir = parse.GetValue(resume);
            var tokenizer = Tokenizer.Load(source);
            ChatTemplate? template = HasTemplate(source) ? ChatTemplate.FromTokenizerConfig(Path.Combine(source, "tokenizer_config.json")) : null;
            SftFields fields = parse.GetValue(messagesField) is { } mf
                ? new SftFields.Messages(mf)
                : new SftFields.PromptCompletion(parse.GetValue(promptField)!, parse.GetValue(completionField)!);
            var dataset = SftDataset.Load(parse.GetRequiredValue(data), tokenizer, template, fields, parse.GetValue(maxLength), parse.GetValue(overlong),
                parse.GetValue(skipBad) ? BadLines.Skip : BadLines.Fail);
            Console.Error.WriteLine($"data: {dataset.Examples.Count} examples, {dataset.Examples.Sum(e => e.Ids.Length)} tokens" +
                $" ({dataset.SkippedLines} bad lines skipped, {dataset.Truncated} truncated, {dataset.Dropped} dropped for length)" +
                (template is null ? "" : "; chat template applied"));

            var options = new SftOptions
            {
                Epochs = parse.GetValue(epochs),
                BatchSize = parse.GetValue(batch),
                GradientAccumulation = parse.GetValue(accum),
                Optimizer = new OptimizerSettings
                {
                    LearningRate = parse.GetValue(lr), WeightDecay = parse.GetValue(weightDecay), MaxGradNorm = parse.GetValue(maxGradNorm),
                    Beta1 = parse.GetValue(beta1), Beta2 = parse.GetValue(beta2), Epsilon = parse.GetValue(adamEps),
                },
                Schedule = parse.GetValue(schedule),
                WarmupSteps = parse.GetValue(warmup),
                Seed = parse.GetValue(seed),
                SaveEvery = parse.GetValue(saveEvery),
                StopAfterSteps = parse.GetValue(stopAfter),
                RecomputeNorms = parse.GetValue(recompute),
                MasterWeights = parse.GetValue(masterWeights),
            };
            using var m = SparkModel.Load(resumeDir ?? source, new ModelLoadOptions { Device = parse.GetValue(device) });
            var last = SftTrainer.Train(m, dataset, options, parse.GetRequiredValue(output), source, resumeDir, p =>
                Console.Error.WriteLine($"step {p.Step}/{p.TotalSteps}  epoch {p.Epoch}  loss {p.Loss:F4}  lr {p.LearningRate:E2}  " +
                    $"grad-norm {p.GradNorm:F3}  {p.TokensPerSecond:F0} tok/s  ETA {TimeSpan.FromSeconds(Math.Round(p.EtaSeconds)):c}" +
                    (p.Skipped ? "  (skipped: not finite)" : "")));
            Console.Error.WriteLine(last is null ? "nothing to do: the run is complete" : $"done at step {last.Step}; checkpoints in {parse.GetRequiredValue(output)}");
            return 0;
        });
        return command;
    }

    internal static bool HasTemplate(string folder)
    {
        // the template lives in tokenizer_config.json or in chat_template.jinja beside it (both read through the config)
        string config = Path.Combine(folder, "tokenizer_config.json");
        return File.Exists(config) && (File.ReadAllText(config).Contains("\"chat_template\"", StringComparison.Ordinal)
            || File.Exists(Path.Combine(folder, "chat_template.jinja")));
    }
}
