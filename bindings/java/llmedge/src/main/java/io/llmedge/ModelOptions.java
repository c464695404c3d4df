package io.llmedge;

/** How to load a model. Immutable; build with {@link #builder()}. */
public final class ModelOptions {
    /** Offload every layer to the GPU (needs a GPU build of the native library). */
    public static final int ALL_GPU_LAYERS = Integer.MAX_VALUE;

    // Read by the native library by name (bindings/java/src/convert.rs).
    private final int gpuLayers;
    private final boolean useMmap;
    private final boolean useMlock;
    private final Integer threads;
    private final boolean computeSha256;
    private final String manifest;
    private final String pubkey;
    private final Integer maxPromptTokens;
    private final Integer maxSessions;

    private ModelOptions(Builder b) {
        this.gpuLayers = b.gpuLayers;
        this.useMmap = b.useMmap;
        this.useMlock = b.useMlock;
        this.threads = b.threads;
        this.computeSha256 = b.computeSha256;
        this.manifest = b.manifest;
        this.pubkey = b.pubkey;
        this.maxPromptTokens = b.maxPromptTokens;
        this.maxSessions = b.maxSessions;
    }

    public static ModelOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    public int getGpuLayers() {
        return gpuLayers;
    }

    public boolean isUseMmap() {
        return useMmap;
    }

    public boolean isUseMlock() {
        return useMlock;
    }

    /** Threads for this model's sessions, or null for all cores. */
    public Integer getThreads() {
        return threads;
    }

    public boolean isComputeSha256() {
        return computeSha256;
    }

    /** The manifest models must be listed in, or null for no check. */
    public String getManifest() {
        return manifest;
    }

    /** The public key file the manifest must be signed with, or null. */
    public String getPubkey() {
        return pubkey;
    }

    /** The most tokens one request's prompt may have, or null for no limit. */
    public Integer getMaxPromptTokens() {
        return maxPromptTokens;
    }

    /** The most sequences open on the model at once, or null for no limit. */
    public Integer getMaxSessions() {
        return maxSessions;
    }

    public static final class Builder {
        private int gpuLayers = 0;
        private boolean useMmap = true;
        private boolean useMlock = false;
        private Integer threads = null;
        private boolean computeSha256 = false;
        private String manifest = null;
        private String pubkey = null;
        private Integer maxPromptTokens = null;
        private Integer maxSessions = null;

        private Builder() {}

        /** Layers to offload to the GPU (0 = CPU only, {@link #ALL_GPU_LAYERS} = all). */
        public Builder gpuLayers(int n) {
            this.gpuLayers = n;
            return this;
        }

        /** Map the file instead of reading it (default true). */
        public Builder useMmap(boolean on) {
            this.useMmap = on;
            return this;
        }

        /** Lock the weights in RAM. */
        public Builder useMlock(boolean on) {
            this.useMlock = on;
            return this;
        }

        /** Default thread count of this model's sessions (default: all cores). */
        public Builder threads(int n) {
            this.threads = n;
            return this;
        }

        /** Hash the file at load time so {@link ModelInfo#getSha256()} is filled in. */
        public Builder computeSha256(boolean on) {
            this.computeSha256 = on;
            return this;
        }

        /**
         * Require verified models: the model file and every adapter must be listed in this
         * manifest ({@code llmedge manifest create}) with a matching SHA-256, and, when
         * {@code pubkey} (a public key file) is not null, the manifest must be signed by that
         * key; otherwise loading fails with {@link ErrorCode#MODEL_INTEGRITY} before the file is
         * parsed.
         */
        public Builder manifest(String manifest, String pubkey) {
            this.manifest = manifest;
            this.pubkey = pubkey;
            return this;
        }

        /**
         * The most tokens one request's prompt may have (text, chat, images and embeddings
         * alike); a longer prompt fails with {@link ErrorCode#LIMIT} before anything is
         * evaluated. Default: no limit but the context window.
         */
        public Builder maxPromptTokens(int n) {
            this.maxPromptTokens = n;
            return this;
        }

        /**
         * The most sequences open on the model at once: a session holds one and an engine one
         * per slot until closed. One more fails with {@link ErrorCode#BUSY} before its KV
         * cache is allocated. Default: no limit but memory.
         */
        public Builder maxSessions(int n) {
            this.maxSessions = n;
            return this;
        }

        public ModelOptions build() {
            return new ModelOptions(this);
        }
    }
}
