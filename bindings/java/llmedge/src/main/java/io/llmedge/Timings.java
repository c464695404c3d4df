package io.llmedge;

/** Where the time of a request went. */
public final class Timings {
    private final double timeToFirstTokenMs;
    private final double promptMs;
    private final double generationMs;
    private final double promptTokensPerSecond;
    private final double generationTokensPerSecond;

    Timings(double timeToFirstTokenMs, double promptMs, double generationMs, double promptTokensPerSecond,
            double generationTokensPerSecond) {
        this.timeToFirstTokenMs = timeToFirstTokenMs;
        this.promptMs = promptMs;
        this.generationMs = generationMs;
        this.promptTokensPerSecond = promptTokensPerSecond;
        this.generationTokensPerSecond = generationTokensPerSecond;
    }

    /** From the call to the first generated token. */
    public double getTimeToFirstTokenMs() {
        return timeToFirstTokenMs;
    }

    /** Evaluating the prompt. */
    public double getPromptMs() {
        return promptMs;
    }

    /** From the first generated token to the last. */
    public double getGenerationMs() {
        return generationMs;
    }

    public double getPromptTokensPerSecond() {
        return promptTokensPerSecond;
    }

    /** Decode speed: tokens after the first, over {@link #getGenerationMs()}. */
    public double getGenerationTokensPerSecond() {
        return generationTokensPerSecond;
    }

    @Override
    public String toString() {
        return String.format(java.util.Locale.ROOT, "Timings{ttft=%.1fms, prompt=%.1fms (%.1f tok/s), generation=%.1fms (%.1f tok/s)}",
                timeToFirstTokenMs, promptMs, promptTokensPerSecond, generationMs, generationTokensPerSecond);
    }
}
