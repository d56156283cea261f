using Spark.Native.Text;
using Spark.Native.Text.Templates;

namespace Spark.Native.Rewards.Tasks;

/// <summary>A rendered prompt: the text the model sees and its token ids [T].</summary>
/// <param name="Ids">Token ids [T], ending where the assistant's answer begins.</param>
/// <param name="Text">The rendered text the ids encode.</param>
public sealed record RlPrompt(int[] Ids, string Text);

/// <summary>
/// Turns problems into generation prompts. With a chat template: [system] + user messages rendered with
/// add_generation_prompt, encoded without the post-processor (the template writes BOS itself, as transformers'
/// apply_chat_template does). Without one: "system\n\nprompt" (or the prompt alone) encoded with the
/// post-processor's special tokens.
/// </summary>
public sealed class RlPromptBuilder
{
    private readonly Tokenizer _tokenizer;
    private readonly ChatTemplate? _template;
    private readonly ChatTemplateOptions _options;

    /// <summary>Creates a builder.</summary>
    /// <param name="tokenizer">The policy's tokenizer.</param>
    /// <param name="template">The chat template, or null for plain-text prompts.</param>
    /// <param name="templateOptions">Extra template settings (tools, variables, a fixed clock for reproducible prompts); its generation prompt is always added.</param>
    public RlPromptBuilder(Tokenizer tokenizer, ChatTemplate? template, ChatTemplateOptions? templateOptions = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
        _template = template;
        _options = (templateOptions ?? new ChatTemplateOptions()) with { GenerationPrompt = GenerationPrompt.Add };
    }

    /// <summary>Renders and encodes one problem's prompt.</summary>
    public RlPrompt Build(RlProblem problem)
    {
        ArgumentNullException.ThrowIfNull(problem);
        if (_template is null)
        {
            string plain = problem.SystemPrompt is null ? problem.Prompt : problem.SystemPrompt + "\n\n" + problem.Prompt;
            return new RlPrompt(_tokenizer.Encode(plain, SpecialTokens.Add), plain);
        }
        var messages = new List<ChatMessage>(2);
        if (problem.SystemPrompt is not null) messages.Add(new ChatMessage("system", problem.SystemPrompt));
        messages.Add(new ChatMessage("user", problem.Prompt));
        string text = _template.Render(messages, _options);
        return new RlPrompt(_tokenizer.Encode(text, SpecialTokens.Omit), text);
    }
}
