using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spark.Native;
using Spark.Native.Text.Templates;

namespace Spark.Cli;

internal static class ChatTemplateCommand
{
    public static Command Create()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "Model/tokenizer folder, or its tokenizer.json or tokenizer_config.json", Required = true };
        var messages = new Option<string>("--messages")
        {
            Description = "JSON file: an array of messages ({\"role\", \"content\", ...}), or {\"messages\": [...], \"tools\": [...]}",
            Required = true,
        };
        var addPrompt = new Option<bool>("--add-generation-prompt") { Description = "End with the assistant turn's opening" };
        var command = new Command("chat-template", "Render a conversation with the model's chat template (tokenizer_config.json)")
            { tokenizer, messages, addPrompt };
        command.SetAction(parse =>
        {
            var template = ChatTemplate.FromTokenizerConfig(TokenizerConfigPath(parse.GetRequiredValue(tokenizer)));
            var (conversation, tools) = ReadConversation(parse.GetRequiredValue(messages));
            var options = new ChatTemplateOptions
            {
                GenerationPrompt = parse.GetValue(addPrompt) ? GenerationPrompt.Add : GenerationPrompt.Omit,
                Tools = tools,
            };
            Console.Write(template.Render(conversation, options));
            return 0;
        });
        return command;
    }

    /// <summary>The tokenizer_config.json of a folder, or beside a tokenizer.json, or the file itself.</summary>
    public static string TokenizerConfigPath(string path)
    {
        string folder = Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        string config = File.Exists(path) && Path.GetFileName(path) == "tokenizer_config.json" ? path : Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(config)) throw new SparkException($"{folder}: no tokenizer_config.json (the chat template lives there)");
        return config;
    }

    public static (JsonArray Messages, JsonArray? Tools) ReadConversation(string path)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new SparkException($"{path}: invalid JSON at line {e.LineNumber + 1}", e); }
        switch (root)
        {
            case JsonArray array:
                return (array, null);
            case JsonObject obj when obj["messages"] is JsonArray list:
                return (list, obj["tools"] as JsonArray);
            default:
                throw new SparkException($"{path}: expected a JSON array of messages or an object with a \"messages\" array");
        }
    }
}
