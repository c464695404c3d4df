package io.llmedge;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/** One run of a {@link PromptTemplate} ({@link Session#runTemplate}). */
public final class TemplateOutput {
    private final String template;
    private final List<ChatMessage> messages;
    private final String prompt;
    private final Completion completion;
    private final String answer;
    private final String json;

    /** Built by the native library. */
    TemplateOutput(String template, ChatMessage[] messages, String prompt, Completion completion, String answer,
            String json) {
        this.template = template;
        this.messages = Collections.unmodifiableList(Arrays.asList(messages));
        this.prompt = prompt;
        this.completion = completion;
        this.answer = answer;
        this.json = json;
    }

    /** The template's name. */
    public String template() {
        return template;
    }

    /** The conversation sent (system prompt, few-shot turns, the request). */
    public List<ChatMessage> messages() {
        return messages;
    }

    /** The prompt after the chat template. */
    public String prompt() {
        return prompt;
    }

    /** The generated text. */
    public String text() {
        return completion.getText();
    }

    /** For chain-of-thought templates, the text after the final answer line; otherwise null. */
    public String answer() {
        return answer;
    }

    /** For templates with an output schema, the output as compact JSON; otherwise null. */
    public String json() {
        return json;
    }

    public Completion completion() {
        return completion;
    }

    @Override
    public String toString() {
        return "TemplateOutput{template=" + template + ", answer=" + answer + ", json=" + json + ", " + completion + "}";
    }
}
