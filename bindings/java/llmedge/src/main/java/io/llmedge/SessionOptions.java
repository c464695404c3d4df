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
    private final boolean safetyEnabled;
    private final String safetyPolicy;
    private final String auditDir;
    private final String tenant;
    private final LoraAdapter[] loras;
    private final float[] loraScales;
    private final boolean prefixReuse;

    private SessionOptions(Builder b) {
        this.contextSize = b.contextSize;
        this.batchSize = b.batchSize;
        this.microBatchSize = b.microBatchSize;
        this.threads = b.threads;
        this.batchThreads = b.batchThreads;
        this.chatTemplate = b.chatTemplate;
        this.safetyEnabled = b.safetyEnabled;
        this.safetyPolicy = b.safetyPolicy;
        this.auditDir = b.auditDir;
        this.tenant = b.tenant;
        this.prefixReuse = b.prefixReuse;
        this.loras = b.loras.toArray(new LoraAdapter[0]);
        this.loraScales = new float[b.loraScales.size()];
        for (int i = 0; i < loraScales.length; i++) {
            loraScales[i] = b.loraScales.get(i);
        }
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

    /** False when the session runs without the safety layer. */
    public boolean isSafetyEnabled() {
        return safetyEnabled;
    }

    /** The safety policy file, or null for the built-in policy. */
    public String getSafetyPolicy() {
        return safetyPolicy;
    }

    /** The audit log directory, or null for no audit log. */
    public String getAuditDir() {
        return auditDir;
    }

    /** The tenant requests are accounted to, or null for the core's default ({@code local}). */
    public String getTenant() {
        return tenant;
    }

    /** The LoRA adapters every request runs with (empty: none). */
    public java.util.List<LoraAdapter> getLoras() {
        return java.util.Collections.unmodifiableList(java.util.Arrays.asList(loras));
    }

    /** The scales of {@link #getLoras()}, in the same order. */
    public float[] getLoraScales() {
        return loraScales.clone();
    }

    /** Whether a request reuses the KV of the previous one for their shared prefix. */
    public boolean isPrefixReuse() {
        return prefixReuse;
    }

    public static final class Builder {
        private Integer contextSize;
        private Integer batchSize;
        private Integer microBatchSize;
        private Integer threads;
        private Integer batchThreads;
        private String chatTemplate;
        private boolean safetyEnabled = true;
        private String safetyPolicy;
        private String auditDir;
        private String tenant;
        private final java.util.List<LoraAdapter> loras = new java.util.ArrayList<>();
        private final java.util.List<Float> loraScales = new java.util.ArrayList<>();
        private boolean prefixReuse = true;

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

        /**
         * Check every request's input and output against this safety policy file (TOML) instead of
         * the built-in policy. An invalid file throws code 41 when the session is created.
         */
        public Builder safetyPolicy(String path) {
            this.safetyPolicy = path;
            return this;
        }

        /** {@link #safetyPolicy(String)} from a path. */
        public Builder safetyPolicy(java.nio.file.Path path) {
            return safetyPolicy(path == null ? null : path.toString());
        }

        /**
         * Turn the safety layer off ({@code false}) or on (the default: the built-in policy, or the
         * one given with {@link #safetyPolicy(String)}).
         */
        public Builder safetyEnabled(boolean on) {
            this.safetyEnabled = on;
            return this;
        }

        /**
         * Record every request in the tamper-evident audit log in this directory (created if
         * missing). Sessions of this process that name the same directory share one log; it is
         * closed with the last of them. Another process holding the log throws code 42.
         */
        public Builder auditDir(String dir) {
            this.auditDir = dir;
            return this;
        }

        /** {@link #auditDir(String)} from a path. */
        public Builder auditDir(java.nio.file.Path dir) {
            return auditDir(dir == null ? null : dir.toString());
        }

        /** The caller or tenant requests are accounted to in the audit log (default {@code local}). */
        public Builder tenant(String tenant) {
            this.tenant = tenant;
            return this;
        }

        /**
         * Run every request of the session with this LoRA adapter (loaded into the same model) at
         * {@code scale}; repeat for several. A request may override the set with
         * {@link GenerateOptions.Builder#addLora(LoraAdapter, float)} or {@link GenerateOptions.Builder#noLora()}.
         */
        public Builder addLora(LoraAdapter adapter, float scale) {
            loras.add(LlmedgeException.requireNonNull(adapter, "adapter"));
            loraScales.add(scale);
            return this;
        }

        /**
         * Keep the KV of the last request and evaluate only what a new prompt adds to it (the
         * next chat turn, a shared system prompt; default true). llama.cpp evaluates one token and
         * a batch with different kernels, so a reused prefix can change the low-order bits of
         * later logits: {@code false} gives answers bit-for-bit those of a fresh context. For an
         * engine it also turns off its slots' and host cache's prefix reuse.
         */
        public Builder prefixReuse(boolean on) {
            this.prefixReuse = on;
            return this;
        }

        public SessionOptions build() {
            return new SessionOptions(this);
        }
    }
}
