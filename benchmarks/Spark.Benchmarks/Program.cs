// Spark.Benchmarks: a plain Stopwatch harness (warm-up, repeated timed runs, median) that writes one JSON file
// per run. Each suite is a subcommand: `dotnet run -c Release --project benchmarks/Spark.Benchmarks -- gemm
// [--json PATH] [--threads N] [--reps N] [--warmup N] [--filter TEXT]`. To add a suite, write a Func<BenchOptions,
// BenchSuiteResult> and register it in `suites`
// below; BenchReport adds the machine, commit and time, and writes the JSON.

using Spark.Benchmarks;

var suites = new Dictionary<string, (string Description, Func<BenchOptions, BenchSuiteResult> Run)>
{
    ["gemm"] = ("CPU float32 GEMM GFLOP/s (linear, decode and backward layouts)", GemmSuite.Run),
    ["tokenize"] = ("Tokenizer load time and single-thread encode MB/s (--tokenizer DIR --input CORPUS)", TokenizeSuite.Run),
    ["train-step"] = ("One CPU training step (forward + backward + AdamW), 4-layer Llama h256, batch 8x128", TrainStepSuite.Run),
    ["forward"] = ("Model forward tokens/s on the CPU backend: prefill and KV-cache decode at real shapes", ForwardSuite.Run),
    ["grpo-step"] = ("GRPO steps on the CPU at the Qwen2.5-0.5B shape, tiny batch: rollout and training tokens/s, time split, peak memory", GrpoStepSuite.Run),
};

if (args.Length == 0 || args[0] is "-h" or "--help" || !suites.ContainsKey(args[0]))
{
    if (args.Length > 0 && args[0] is not ("-h" or "--help"))
        Console.Error.WriteLine($"Unknown suite '{args[0]}'.");
    Console.Error.WriteLine("Usage: Spark.Benchmarks <suite> [--json PATH] [--threads N] [--reps N] [--warmup N] [--filter TEXT]");
    Console.Error.WriteLine("Suites:");
    foreach (var (name, suite) in suites)
        Console.Error.WriteLine($"  {name,-10} {suite.Description}");
    return args.Length == 0 || args[0] is "-h" or "--help" ? 0 : 2;
}

BenchOptions options;
try
{
    options = BenchOptions.Parse(args[1..]);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

BenchSuiteResult result = suites[args[0]].Run(options);
var report = BenchReport.Create(args[0], result);
if (options.JsonPath is { } path)
{
    BenchReport.Write(report, path);
    Console.WriteLine($"Wrote {Path.GetFullPath(path)}");
}
return 0;
