using Spark.Native.Models;

namespace Spark.Native.Tests.Models;

public class ModelConfigTests
{
    private const string Qwen = """
        {"architectures": ["Qwen2ForCausalLM"], "vocab_size": 151936, "hidden_size": 896, "intermediate_size": 4864,
         "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "rms_norm_eps": 1e-6,
         "rope_theta": 1000000.0, "max_position_embeddings": 32768, "tie_word_embeddings": true, "use_sliding_window": false,
         "sliding_window": 32768, "hidden_act": "silu", "eos_token_id": 151643, "bos_token_id": 151643}
        """;

    private const string Llama32 = """
        {"architectures": ["LlamaForCausalLM"], "vocab_size": 128256, "hidden_size": 2048, "intermediate_size": 8192,
         "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64, "rms_norm_eps": 1e-5,
         "rope_theta": 500000.0, "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
         "original_max_position_embeddings": 8192, "rope_type": "llama3"}, "tie_word_embeddings": true,
         "attention_bias": false, "mlp_bias": false, "eos_token_id": [128001, 128008, 128009], "bos_token_id": 128000}
        """;

    [Fact]
    public void ReadsQwen25Config()
    {
        var c = ModelConfig.Parse(Qwen);
        Assert.Equal(ModelArchitecture.Qwen2, c.Architecture);
        Assert.Equal(64, c.HeadDim);
        Assert.Equal(7, c.GroupSize);
        Assert.True(c.QkvBias);
        Assert.False(c.OutputProjectionBias);
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal([151643], c.EosTokenIds);
        Assert.Null(c.RopeScaling);
        Assert.Equal(1e6, c.RopeTheta);
        var layout = new ParameterLayout(c);
        Assert.Equal(494_032_768, layout.TotalLength); // Qwen2.5-0.5B's published parameter count
    }

    [Fact]
    public void ReadsLlama32ConfigWithLlama3RopeAndEosList()
    {
        var c = ModelConfig.Parse(Llama32);
        Assert.Equal(ModelArchitecture.Llama, c.Architecture);
        Assert.Equal(new Llama3RopeScaling(32, 1, 4, 8192), c.RopeScaling);
        Assert.Equal([128001, 128008, 128009], c.EosTokenIds);
        Assert.False(c.QkvBias);
        Assert.Equal(1_235_814_400, new ParameterLayout(c).TotalLength); // Llama-3.2-1B
    }

    [Fact]
    public void NewerRopeParametersBlockIsRead()
    {
        var c = ModelConfig.Parse(Llama32.Replace("\"rope_theta\": 500000.0, \"rope_scaling\"", "\"rope_parameters\"")
            .Replace("\"rope_type\": \"llama3\"}", "\"rope_type\": \"llama3\", \"rope_theta\": 500000.0}"));
        Assert.Equal(500000.0, c.RopeTheta);
        Assert.NotNull(c.RopeScaling);
    }

    [Theory]
    [InlineData("\"use_sliding_window\": false", "\"use_sliding_window\": true", "use_sliding_window")]
    [InlineData("\"Qwen2ForCausalLM\"", "\"MistralForCausalLM\"", "architectures")]
    [InlineData("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", "hidden_act")]
    [InlineData("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3", "num_key_value_heads")]
    [InlineData("\"vocab_size\": 151936,", "", "vocab_size")]
    [InlineData("\"hidden_size\": 896", "\"hidden_size\": \"896\"", "hidden_size")]
    [InlineData("\"rope_theta\": 1000000.0,", "\"rope_theta\": 1e6, \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4},", "rope_scaling.rope_type")]
    [InlineData("\"eos_token_id\": 151643", "\"eos_token_id\": \"x\"", "eos_token_id")]
    [InlineData("\"rms_norm_eps\": 1e-6", "\"rms_norm_eps\": -1", "rms_norm_eps")]
    [InlineData("\"hidden_act\": \"silu\"", "\"hidden_act\": 3", "hidden_act")]
    [InlineData("\"hidden_act\": \"silu\"", "\"hidden_act\": \"silu\", \"partial_rotary_factor\": 0.5", "partial_rotary_factor")]
    [InlineData("\"hidden_act\": \"silu\"", "\"hidden_act\": \"silu\", \"layer_types\": [\"full_attention\", \"sliding_attention\"]", "layer_types")]
    [InlineData("\"hidden_act\": \"silu\"", "\"hidden_act\": \"silu\", \"quantization_config\": {\"quant_method\": \"gptq\"}", "quantization_config")]
    public void UnsupportedOrInvalidFieldsAreNamed(string from, string to, string field)
    {
        var e = Assert.Throws<SparkException>(() => ModelConfig.Parse(Qwen.Replace(from, to), "m/config.json"));
        Assert.StartsWith("m/config.json: field '" + field + "'", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void InvalidJsonNamesTheFileAndLine()
    {
        var e = Assert.Throws<SparkException>(() => ModelConfig.Parse("{\n\"a\": 1,\n\"b\": }", "x/config.json"));
        Assert.StartsWith("x/config.json: invalid JSON at line 3", e.Message);
    }
}

public class RealConfigTests
{
    private static string Folder(string name)
    {
        Assert.SkipWhen(TestPaths.SharedDataDir is null, "../shared (real model configs) is not present beside this clone");
        return Path.Combine(TestPaths.SharedDataDir!, "data", "tokenizers", name);
    }

    [Fact]
    public void Qwen25InstructConfigAndGenerationDefaults()
    {
        string dir = Folder("qwen2.5-0.5b-instruct");
        var c = SparkModel.LoadConfig(dir);
        Assert.Equal(ModelArchitecture.Qwen2, c.Architecture);
        Assert.Equal([151645, 151643], c.EosTokenIds); // config.json's 151645 plus generation_config.json's list
        Assert.Equal(494_032_768, new ParameterLayout(c).TotalLength);

        var defaults = SparkModel.LoadGenerationDefaults(dir, out var ignored);
        Assert.Equal(Generation.DecodingStrategy.Sample, defaults.Strategy);
        Assert.Equal(0.7f, defaults.Temperature);
        Assert.Equal(20, defaults.TopK);
        Assert.Equal(0.8f, defaults.TopP);
        Assert.Equal(["repetition_penalty 1.1"], ignored);
    }

    [Fact]
    public void QuantizedLlamaConfigIsRefusedByName()
    {
        var e = Assert.Throws<SparkException>(() => SparkModel.LoadConfig(Folder("llama3.2-1b")));
        Assert.Contains("field 'quantization_config'", e.Message);
        Assert.Contains("bitsandbytes", e.Message);
    }
}
