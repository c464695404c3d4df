package io.llmedge;

import java.time.Duration;

/**
 * An exact-match cache of the answers to deterministic requests (greedy, or sampled with a
 * seed), keyed by model, adapters, prompt tokens, sampling and tenant. Give it to engines with
 * {@link EngineOptions.Builder#responseCache(ResponseCache, boolean)}; several engines may share
 * one, and a Redis cache is shared by every process that names the same server and prefix.
 * Thread-safe. Engines keep their own reference, so closing this object early is harmless.
 */
public final class ResponseCache extends NativeResource {
    private ResponseCache(long handle) {
        super("response cache", handle, NativeBridge::responseCacheFree);
    }

    /** An in-memory LRU of at most {@code capacity} answers (at least 1), each kept for {@code ttl}. */
    public static ResponseCache memory(long capacity, Duration ttl) {
        if (ttl == null) {
            throw LlmedgeException.nullArgument("ttl");
        }
        return new ResponseCache(NativeBridge.responseCacheMemory(capacity, ttl.toMillis()));
    }

    /**
     * A cache in Redis at {@code url} ({@code redis://host:port/db}), entries under
     * {@code prefix} (null: {@code "llmedge:"}) expiring after {@code ttl} (at least one second).
     * Throws {@link ErrorCode#IO} when the server does not answer within {@code timeout}; later
     * outages only cost hits (the model answers).
     */
    public static ResponseCache redis(String url, String prefix, Duration ttl, Duration timeout) {
        if (ttl == null || timeout == null) {
            throw LlmedgeException.nullArgument(ttl == null ? "ttl" : "timeout");
        }
        return new ResponseCache(NativeBridge.responseCacheRedis(url, prefix, ttl.toMillis(), timeout.toMillis()));
    }

    /** Counters since creation as JSON: {@code {"backend", "hits", "misses", "errors"}}. */
    public String statsJson() {
        long h = acquire();
        try {
            return NativeBridge.responseCacheStatsJson(h);
        } finally {
            release();
        }
    }
}
