package io.llmedge;

/**
 * Receives generated text as it is produced, on the generating thread. Pieces are whole UTF-8
 * characters and never contain part of a stop string; their concatenation is the completion's text.
 * With the safety layer on, text is streamed once the output filter has cleared it, so a piece may
 * lag a few tokens behind generation, and after the listener returns false it may still receive
 * the text the filter held back (no new token is generated for it).
 */
@FunctionalInterface
public interface TokenListener {
    /**
     * @param piece the next piece of text
     * @return true to continue, false to stop (the completion then ends with {@link FinishReason#CANCELLED});
     *     an exception thrown here also stops generation and is rethrown to the caller
     */
    boolean onToken(String piece);
}
