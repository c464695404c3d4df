package io.llmedge;

/** Token counts of a request. */
public final class Usage {
    private final int promptTokens;
    private final int completionTokens;
    private final int cachedPromptTokens;

    Usage(int promptTokens, int completionTokens, int cachedPromptTokens) {
        this.promptTokens = promptTokens;
        this.completionTokens = completionTokens;
        this.cachedPromptTokens = cachedPromptTokens;
    }

    public int getPromptTokens() {
        return promptTokens;
    }

    public int getCompletionTokens() {
        return completionTokens;
    }

    /**
     * Prompt tokens whose KV was reused from an earlier request instead of being evaluated (a
     * session's previous turn or restored state, an engine slot or its prefix cache); part of
     * {@link #getPromptTokens()}.
     */
    public int getCachedPromptTokens() {
        return cachedPromptTokens;
    }

    public int getTotalTokens() {
        return promptTokens + completionTokens;
    }

    @Override
    public String toString() {
        return "Usage{prompt=" + promptTokens + ", completion=" + completionTokens + ", cached=" + cachedPromptTokens
                + "}";
    }
}
