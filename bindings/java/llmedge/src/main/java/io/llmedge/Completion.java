package io.llmedge;

import java.util.Arrays;

/** The result of a finished generation. */
public final class Completion {
    private final String text;
    private final int[] tokens;
    private final FinishReason finishReason;
    private final Usage usage;
    private final Timings timings;

    /** Built by the native library. */
    Completion(String text, int[] tokens, int finishReason, int promptTokens, int completionTokens,
            double timeToFirstTokenMs, double promptMs, double generationMs, double promptTokensPerSecond,
            double generationTokensPerSecond) {
        this.text = text;
        this.tokens = tokens;
        this.finishReason = FinishReason.values()[finishReason];
        this.usage = new Usage(promptTokens, completionTokens);
        this.timings = new Timings(timeToFirstTokenMs, promptMs, generationMs, promptTokensPerSecond,
                generationTokensPerSecond);
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

    @Override
    public String toString() {
        return "Completion{finishReason=" + finishReason + ", " + usage + ", tokens=" + Arrays.toString(tokens)
                + ", text=" + text + "}";
    }
}
