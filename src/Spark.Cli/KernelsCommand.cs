using System.CommandLine;
using Spark.Native;
using Spark.Native.Backends.Cuda;

namespace Spark.Cli;

/// <summary><c>spark kernels compile</c>: every embedded kernel through NVRTC for each arch, with registers, spills and time.</summary>
internal static class KernelsCommand
{
    public static Command Create()
    {
        var arch = new Option<string>("--arch") { Description = "Comma-separated target architectures (sm_80, sm_90, ...)", DefaultValueFactory = _ => "sm_80,sm_90" };
        var maxSpill = new Option<int>("--max-spill-bytes") { Description = "Fail when a file spills more bytes (stores + loads) than this", DefaultValueFactory = _ => 0 };
        var noCache = new Option<bool>("--no-cache") { Description = "Compile into a fresh temporary cache (always run NVRTC)" };
        var compile = new Command("compile", "Compile every embedded kernel with NVRTC and report registers, spills and time") { arch, maxSpill, noCache };
        compile.SetAction(parse =>
        {
            int[] targets = parse.GetRequiredValue(arch).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(KernelCompiler.ParseArch).Distinct().ToArray();
            int budget = parse.GetValue(maxSpill);
            if (!KernelCompiler.IsNvrtcAvailable)
                throw new SparkException("NVRTC not found (libnvrtc.so.13/.12/.11.2); see 'spark doctor'");
            string? temp = parse.GetValue(noCache) ? Directory.CreateTempSubdirectory("spark-kernels-").FullName : null;
            try
            {
                var compiler = new KernelCompiler(temp);
                var (major, minor) = KernelCompiler.NvrtcVersion;
                Console.WriteLine($"NVRTC {major}.{minor} ({KernelCompiler.NvrtcPath}), cache {compiler.CacheDirectory}");
                int failures = 0;
                foreach (var source in KernelCompiler.Sources)
                    foreach (int target in targets)
                    {
                        try
                        {
                            var k = compiler.Compile(source, target);
                            bool over = k.SpillBytes > budget;
                            if (over) failures++;
                            Console.WriteLine($"{k.Name,-28} {k.Arch,-7} {k.Functions.Count,3} kernels  max {k.MaxRegisters,3} registers  " +
                                $"spills {k.SpillBytes,5} B{(over ? $" (over the {budget} B budget)" : "")}  {k.Elapsed.TotalMilliseconds,7:F0} ms{(k.FromCache ? " (cached)" : "")}");
                            if (over)
                                foreach (var f in k.Functions.Where(f => f.SpillStoreBytes + f.SpillLoadBytes > 0))
                                    Console.WriteLine($"    {f.Function}: {f.Registers} registers, {f.SpillStoreBytes} B spill stores, {f.SpillLoadBytes} B spill loads");
                        }
                        catch (CudaException e)
                        {
                            failures++;
                            Console.WriteLine($"{source.Name,-28} sm_{target,-4} FAILED");
                            Console.WriteLine(e.Message);
                        }
                    }
                if (failures > 0) Console.Error.WriteLine($"error: {failures} kernel compile(s) failed or spilled over the budget");
                return failures > 0 ? CliApp.Failure : 0;
            }
            finally
            {
                if (temp is not null) Directory.Delete(temp, recursive: true);
            }
        });
        return new Command("kernels", "The CUDA kernels embedded in the engine") { compile };
    }
}
