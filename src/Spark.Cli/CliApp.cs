using System.CommandLine;
using Spark.Native;

namespace Spark.Cli;

/// <summary>Shared CLI plumbing: the one place that turns exceptions into one-line errors and exit codes.</summary>
internal static class CliApp
{
    /// <summary>--device for the commands that run a model.</summary>
    public static Option<Device> DeviceOption() => new("--device")
    {
        Description = "cpu (F32 reference) or cuda (bf16; forward and generation only so far)",
        DefaultValueFactory = _ => Device.Cpu,
    };

    public static readonly Option<bool> Verbose = new("--verbose") { Description = "Show stack traces of errors", Recursive = true };

    public const int UsageError = 2;
    public const int Failure = 1;

    public static int Run(RootCommand root, string[] args)
    {
        if (args.Length == 0) args = ["--help"];
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            // an unknown word explains more than the "required command" that follows from it
            var error = parse.Errors.FirstOrDefault(e => e.Message.Contains("Unrecognized", StringComparison.Ordinal)) ?? parse.Errors[0];
            string command = parse.CommandResult.Command == root ? "spark" : $"spark {parse.CommandResult.Command.Name}";
            Console.Error.WriteLine($"error: {OneLine(error.Message)} (see '{command} --help')");
            return UsageError;
        }
        try
        {
            try { return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false }); }
            catch (AggregateException e) when (e.InnerExceptions.Count == 1) { throw e.InnerExceptions[0]; } // from Parallel.For
        }
        catch (Exception e) when (IsUserFacing(e))
        {
            Console.Error.WriteLine($"error: {OneLine(e.Message)}");
            if (parse.GetValue(Verbose)) Console.Error.WriteLine(e);
            return Failure;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"error: internal error: {e.GetType().Name}: {OneLine(e.Message)} (run with --verbose for the stack trace)");
            if (parse.GetValue(Verbose)) Console.Error.WriteLine(e);
            return Failure;
        }
    }

    private static bool IsUserFacing(Exception e) =>
        e is SparkException or IOException or UnauthorizedAccessException or FormatException or OutOfMemoryException;

    private static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();

    /// <summary>Parses "1,2,3" into token ids; the option name is used in errors.</summary>
    public static int[] ParseIds(string text, string option) =>
        ParseList(text, option, "a token id", (string part, out int id) => int.TryParse(part, out id) && id >= 0);

    /// <summary>Parses "1,2,3" into seeds; the option name is used in errors.</summary>
    public static ulong[] ParseSeeds(string text, string option) =>
        ParseList(text, option, "a seed", (string part, out ulong seed) =>
            ulong.TryParse(part, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out seed));

    private delegate bool TryParse<T>(string part, out T value);

    private static T[] ParseList<T>(string text, string option, string what, TryParse<T> parse)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var values = new T[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!parse(parts[i], out values[i]))
                throw new SparkException($"{option}: '{parts[i]}' in \"{text}\" is not {what} (expected non-negative integers separated by commas)");
        return values;
    }

    public static string FormatBytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):F2} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):F1} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:F1} KiB",
        _ => $"{bytes} B",
    };
}
