package io.llmedge;

/** What to do when the prompt plus {@code maxTokens} does not fit in the context. */
public enum Truncation {
    /** Fail with code 21 (context_overflow) before decoding anything (the default). */
    ERROR,
    /** Drop the oldest prompt tokens (after BOS) until the request fits. */
    DROP_OLDEST
}
