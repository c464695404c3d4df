package io.llmedge;

/** Why generation ended. */
public enum FinishReason {
    /** An end-of-generation token or a stop string. */
    STOP,
    /** {@code maxTokens} or the context window was reached. */
    LENGTH,
    /** The caller cancelled ({@link Session#cancel()}, a listener returning false, a closed stream). */
    CANCELLED;

    /** The OpenAI-style name: {@code stop}, {@code length}, {@code cancelled}. */
    public String wireName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
