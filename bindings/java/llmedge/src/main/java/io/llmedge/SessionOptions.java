package io.llmedge;

/** How to create a {@link Session}. Immutable; build with {@link #builder()}. Unset values take the core's defaults. */
public final class SessionOptions {
    // Read by the native library by name (bindings/java/src/convert.rs).
    private final Integer contextSize;
    private final Integer batchSize;
    private final Integer microBatchSize;
    private final Integer threads;
    private final Integer batchThreads;
    private final String chatTemplate;

    private SessionOptions(Builder b) {
        this.contextSize = b.contextSize;
        this.batchSize = b.batchSize;
        this.microBatchSize = b.microBatchSize;
        this.threads = b.threads;
        this.batchThreads = b.batchThreads;
        this.chatTemplate = b.chatTemplate;
    }

    public static SessionOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    public Integer getContextSize() {
        return contextSize;
    }

    public Integer getBatchSize() {
        return batchSize;
    }

    public Integer getMicroBatchSize() {
        return microBatchSize;
    }

    public Integer getThreads() {
        return threads;
    }

    public Integer getBatchThreads() {
        return batchThreads;
    }

    public String getChatTemplate() {
        return chatTemplate;
    }

    public static final class Builder {
        private Integer contextSize;
        private Integer batchSize;
        private Integer microBatchSize;
        private Integer threads;
        private Integer batchThreads;
        private String chatTemplate;

        private Builder() {}

        /** Context window in tokens (default: the model's training context, at most 4096). */
        public Builder contextSize(int n) {
            this.contextSize = n;
            return this;
        }

        /** Most prompt tokens evaluated per llama.cpp call (default 2048). */
        public Builder batchSize(int n) {
            this.batchSize = n;
            return this;
        }

        /** Physical micro-batch (default 512). */
        public Builder microBatchSize(int n) {
            this.microBatchSize = n;
            return this;
        }

        /** Threads for generation (default: the model's). */
        public Builder threads(int n) {
            this.threads = n;
            return this;
        }

        /** Threads for prompt evaluation (default: same as threads). */
        public Builder batchThreads(int n) {
            this.batchThreads = n;
            return this;
        }

        /** A Jinja chat template, or a built-in name such as {@code chatml} (default: the model's own). */
        public Builder chatTemplate(String template) {
            this.chatTemplate = template;
            return this;
        }

        public SessionOptions build() {
            return new SessionOptions(this);
        }
    }
}
