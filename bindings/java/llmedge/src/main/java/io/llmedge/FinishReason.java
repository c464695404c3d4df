package io.llmedge;

/** Why generation ended. */
public enum FinishReason {
    /** An end-of-generation token or a stop string. */
    STOP,
    /** {@code maxTokens} or the context window was reached. */
    LENGTH,
    /** The caller cancelled ({@link Session#cancel()}, a listener returning false, a closed stream). */
    CANCELLED,
    /**
     * The safety policy refused the input (the text is then the refusal message and no token was
     * generated) or stopped the output (the text ends before the blocked term).
     */
    CONTENT_FILTER;

    /** The OpenAI-style name: {@code stop}, {@code length}, {@code cancelled}, {@code content_filter}. */
    public String wireName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
