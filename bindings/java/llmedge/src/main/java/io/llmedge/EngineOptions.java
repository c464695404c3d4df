package io.llmedge;

import java.time.Duration;

/**
 * How to build an {@link Engine}. Immutable; build with {@link #builder()}. Unset values take the
 * core's defaults: 4 slots, a queue of 64, no deadline, a 256 MiB host prefix cache for prefixes of
 * at least 32 tokens, adapter groups switched every 16 steps.
 */
public final class EngineOptions {
    // Read by the native library by name (bindings/java/src/engine.rs); null = the core's default.
    private final SessionOptions sessionOptions;
    private final Integer slots;
    private final Integer maxQueue;
    private final Long timeoutMs;
    private final Long prefixCacheBytes;
    private final Integer prefixCacheMinTokens;
    private final Integer adapterQuantum;
    private final ResponseCache responseCache;
    private final boolean shareAcrossTenants;

    private EngineOptions(Builder b) {
        this.sessionOptions = b.sessionOptions;
        this.slots = b.slots;
        this.maxQueue = b.maxQueue;
        this.timeoutMs = b.timeoutMs;
        this.prefixCacheBytes = b.prefixCacheBytes;
        this.prefixCacheMinTokens = b.prefixCacheMinTokens;
        this.adapterQuantum = b.adapterQuantum;
        this.responseCache = b.responseCache;
        this.shareAcrossTenants = b.shareAcrossTenants;
    }

    public static EngineOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The per-sequence settings (null: the session defaults). */
    public SessionOptions getSessionOptions() {
        return sessionOptions;
    }

    /** Sequences decoded together, or null for the default (4). */
    public Integer getSlots() {
        return slots;
    }

    /** Most requests waiting for a slot, or null for the default (64). */
    public Integer getMaxQueue() {
        return maxQueue;
    }

    /** Every request's deadline in milliseconds, or null for none. */
    public Long getTimeoutMs() {
        return timeoutMs;
    }

    /** The response cache, or null for none. */
    public ResponseCache getResponseCache() {
        return responseCache;
    }

    public static final class Builder {
        private SessionOptions sessionOptions;
        private Integer slots;
        private Integer maxQueue;
        private Long timeoutMs;
        private Long prefixCacheBytes;
        private Integer prefixCacheMinTokens;
        private Integer adapterQuantum;
        private ResponseCache responseCache;
        private boolean shareAcrossTenants;

        private Builder() {}

        /**
         * The per-sequence settings: {@code contextSize} is each slot's context window and
         * {@code batchSize} the most tokens one decode step evaluates (at least the slots), plus
         * threads, chat template, safety policy, audit log, tenant, default adapters and prefix reuse.
         */
        public Builder sessionOptions(SessionOptions options) {
            this.sessionOptions = options;
            return this;
        }

        /** Sequences decoded together (1..256), each with its own KV of {@code contextSize} positions. */
        public Builder slots(int n) {
            this.slots = n;
            return this;
        }

        /** Most requests waiting for a slot; one more is refused with code 70 ({@link ErrorCode#BUSY}). */
        public Builder maxQueue(int n) {
            this.maxQueue = n;
            return this;
        }

        /**
         * Deadline of every request from its submission unless it names its own; a request past it
         * ends with code 71 ({@link ErrorCode#TIMEOUT}). Null or zero: none.
         */
        public Builder timeout(Duration timeout) {
            this.timeoutMs = timeout == null ? null : timeout.toMillis();
            return this;
        }

        /** Host memory for cached prompt prefixes (0 turns the host cache off; slots keep their own). */
        public Builder prefixCacheBytes(long bytes) {
            this.prefixCacheBytes = bytes;
            return this;
        }

        /**
         * Shorter prefixes are not worth a host-cache entry, nor is a slot's cache when reusing
         * the slot would cut fewer tokens than this from it.
         */
        public Builder prefixCacheMinTokens(int tokens) {
            this.prefixCacheMinTokens = tokens;
            return this;
        }

        /** Decode steps one LoRA adapter group runs while requests of another adapter set wait (at least 1). */
        public Builder adapterQuantum(int steps) {
            this.adapterQuantum = steps;
            return this;
        }

        /**
         * Answer deterministic requests (greedy, or seeded) that were answered before from
         * {@code cache} without decoding (null: no cache). Entries are per tenant unless
         * {@code shareAcrossTenants}. Requests whose input was redacted are never stored.
         */
        public Builder responseCache(ResponseCache cache, boolean shareAcrossTenants) {
            this.responseCache = cache;
            this.shareAcrossTenants = shareAcrossTenants;
            return this;
        }

        public EngineOptions build() {
            return new EngineOptions(this);
        }
    }
}
