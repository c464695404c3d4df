package io.llmedge;

import java.util.Arrays;

/** The result of a finished generation. */
public final class Completion {
    private final String text;
    private final int[] tokens;
    private final FinishReason finishReason;
    private final Usage usage;
    private final Timings timings;
    private final String requestId;
    private final String safetyJson;

    /** Built by the native library. */
    Completion(String text, int[] tokens, int finishReason, int promptTokens, int completionTokens,
            int cachedPromptTokens, double timeToFirstTokenMs, double promptMs, double generationMs, double promptTokensPerSecond,
            double generationTokensPerSecond, String requestId, String safetyJson) {
        this.text = text;
        this.tokens = tokens;
        this.finishReason = FinishReason.values()[finishReason];
        this.usage = new Usage(promptTokens, completionTokens, cachedPromptTokens);
        this.timings = new Timings(timeToFirstTokenMs, promptMs, generationMs, promptTokensPerSecond,
                generationTokensPerSecond);
        this.requestId = requestId;
        this.safetyJson = safetyJson;
    }

    /** The generated text (stop strings excluded). */
    public String getText() {
        return text;
    }

    /** The generated token ids (a copy). */
    public int[] getTokens() {
        return tokens.clone();
    }

    public FinishReason getFinishReason() {
        return finishReason;
    }

    public Usage getUsage() {
        return usage;
    }

    public Timings getTimings() {
        return timings;
    }

    /**
     * The request's id: the one given with {@link GenerateOptions.Builder#requestId}, else a
     * generated one. The audit log records the request under this id.
     */
    public String requestId() {
        return requestId;
    }

    /**
     * The safety summary as JSON ({@code input_verdict}, {@code output_verdict},
     * {@code categories}, {@code redactions}; no text, no PII values), or null when the session
     * runs without the safety layer ({@link SessionOptions.Builder#safetyEnabled(boolean)}).
     */
    public String safetyJson() {
        return safetyJson;
    }

    @Override
    public String toString() {
        return "Completion{finishReason=" + finishReason + ", requestId=" + requestId + ", " + usage + ", tokens=" + Arrays.toString(tokens)
                + ", text=" + text + "}";
    }
}
