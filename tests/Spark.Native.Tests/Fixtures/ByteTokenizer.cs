namespace Spark.Native.Tests.Fixtures;

internal static class ByteTokenizer
{
    /// <summary>A byte-level tokenizer of 256 byte tokens plus &lt;|end|&gt; (id 256) for a 257-token tiny model.</summary>
    public static void Write(string dir)
    {
        var vocab = new System.Text.Json.Nodes.JsonObject();
        for (int b = 0; b < 256; b++) vocab[Native.Text.ByteLevelMap.ByteToChar[b].ToString()] = b;
        var json = new System.Text.Json.Nodes.JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject
            {
                ["id"] = 256, ["content"] = "<|end|>", ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = true,
            }),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new System.Text.Json.Nodes.JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = null,
            ["decoder"] = new System.Text.Json.Nodes.JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new System.Text.Json.Nodes.JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new System.Text.Json.Nodes.JsonArray() },
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """
            {"eos_token": "<|end|>", "chat_template": "{% for m in messages %}[{{ m.role }}] {{ m.content }}<|end|>{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}"}
            """);
    }

}
