namespace Spark.Native.Tests.Fixtures;

internal static class ByteTokenizer
{
    /// <summary>A byte-level tokenizer of 256 byte tokens plus &lt;|end|&gt; (id 256) for a 257-token tiny model, with a small chat template.</summary>
    public static void Write(string dir) =>
        Native.Demo.ModelFactory.WriteByteTokenizer(dir, ["<|end|>"],
            "{% for m in messages %}[{{ m.role }}] {{ m.content }}<|end|>{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}");
}
