package io.llmedge;

/**
 * Receives one engine request's output, on the engine's scheduler thread (one thread for all of the
 * engine's requests; a request the safety policy refuses at once is answered on the submitting
 * thread). Keep both methods short: every request of the engine waits for them. Inside them,
 * {@link EngineRequest#await()} and {@link Engine#shutdown(boolean)} throw code 1 instead of
 * waiting for the thread that runs them.
 */
public interface EngineListener {
    /**
     * The next piece of text (whole UTF-8 characters, never part of a stop string).
     *
     * @return true to continue, false to cancel the request (its completion then holds exactly the
     *     pieces delivered); an exception thrown here also cancels it and is rethrown by
     *     {@link EngineRequest#await()}
     */
    default boolean onPiece(String piece) {
        return true;
    }

    /**
     * The request ended: exactly one of {@code completion} (finish reason {@link FinishReason#CANCELLED}
     * for a cancelled request) and {@code error} (code 71 past its deadline, 22 decode failure, ...)
     * is non-null. Called once.
     */
    default void onDone(Completion completion, LlmedgeException error) {}
}
