using System.CommandLine;
using Spark.Cli;

var root = new RootCommand("spark: train and run Hugging Face causal LMs (Llama, Qwen2) with the Spark.Native engine");
root.Options.Add(CliApp.Verbose);
root.Subcommands.Add(InspectCommand.Create());
root.Subcommands.Add(ForwardCommand.Create());
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(GradCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(TextCommands.Tokenize());
root.Subcommands.Add(TextCommands.Decode());
root.Subcommands.Add(ChatTemplateCommand.Create());
root.Subcommands.Add(DoctorCommand.Create());
root.Subcommands.Add(KernelsCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(ReportCommand.Create());
return CliApp.Run(root, args);
