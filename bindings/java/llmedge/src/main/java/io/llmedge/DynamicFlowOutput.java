package io.llmedge;

/**
 * Both stages of a dynamic prompt flow ({@link Session#runDynamic}): the model first filled the
 * template's variables from the request, then the filled template was answered.
 */
public final class DynamicFlowOutput {
    private final String variablesJson;
    private final String fillPrompt;
    private final Completion fill;
    private final TemplateOutput answer;

    /** Built by the native library. */
    DynamicFlowOutput(String variablesJson, String fillPrompt, Completion fill, TemplateOutput answer) {
        this.variablesJson = variablesJson;
        this.fillPrompt = fillPrompt;
        this.fill = fill;
        this.answer = answer;
    }

    /** Stage 1: the variables the model extracted, as a JSON object. */
    public String variablesJson() {
        return variablesJson;
    }

    /** Stage 1's prompt. */
    public String fillPrompt() {
        return fillPrompt;
    }

    /** Stage 1's generation (its text is the variables JSON). */
    public Completion fill() {
        return fill;
    }

    /** Stage 2: the template filled with those variables, answered. */
    public TemplateOutput answer() {
        return answer;
    }

    @Override
    public String toString() {
        return "DynamicFlowOutput{variables=" + variablesJson + ", answer=" + answer + "}";
    }
}
