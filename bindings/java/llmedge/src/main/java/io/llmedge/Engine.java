package io.llmedge;

import java.time.Duration;
import java.util.List;

/**
 * A continuous-batching engine on one {@link Model}: many requests decoded together in
 * {@code slots} sequences of one llama.cpp context, each behaving exactly as it would alone on a
 * {@link Session}. Requests wait in a bounded queue that is fair between tenants; one more than
 * {@code maxQueue} is refused with code 70 ({@link ErrorCode#BUSY}). Prompt prefixes are reused
 * from the slots and a host-memory cache ({@link Usage#getCachedPromptTokens()}).
 *
 * <p>Thread-safe: submit from any number of threads. Listeners run on the engine's scheduler
 * thread (see {@link EngineListener}). {@link #close()} cancels what is left (each request still
 * gets its {@code onDone}) and waits for the scheduler thread.
 *
 * <pre>{@code
 * try (Engine engine = new Engine(model, EngineOptions.builder().slots(4).build())) {
 *     EngineRequest r = engine.submit("The capital of France is", greedy, new EngineListener() {
 *         public boolean onPiece(String piece) { System.out.print(piece); return true; }
 *     });
 *     Completion c = r.await();
 * }
 * }</pre>
 */
public final class Engine extends NativeResource {
    /** Set while this thread runs an engine listener. */
    static final ThreadLocal<Boolean> IN_LISTENER = new ThreadLocal<>();

    static boolean inCallback() {
        return IN_LISTENER.get() != null;
    }

    /** An engine with default options. */
    public Engine(Model model) {
        this(model, EngineOptions.defaults());
    }

    /**
     * Create the engine and start its scheduler thread. Code 1 for bad options (slots outside
     * 1..256, a batch size below the slots, an adapter quantum of 0), 13 when slots × context do not
     * fit in memory.
     */
    public Engine(Model model, EngineOptions options) {
        super("engine", create(model, options), NativeBridge::engineFree);
    }

    private static long create(Model model, EngineOptions options) {
        long h = LlmedgeException.requireNonNull(model, "model").acquire();
        try {
            return NativeBridge.engineNew(h, options);
        } finally {
            model.release();
        }
    }

    /**
     * Submit a raw text prompt (BOS added, special-token text parsed) and return at once; its
     * output goes to {@code listener} (may be null). Null options mean the defaults. Throws at once
     * when the request cannot be queued: code 70 (the queue is full), 60 (after shutdown), 21
     * (context overflow), 1 (bad options). A request the safety policy refuses ends at once with
     * {@link FinishReason#CONTENT_FILTER}.
     */
    public EngineRequest submit(String prompt, GenerateOptions options, EngineListener listener) {
        return submit(prompt, options, null, listener);
    }

    /** {@link #submit(String, GenerateOptions, EngineListener)} with this request's own deadline (null: the engine's). */
    public EngineRequest submit(String prompt, GenerateOptions options, Duration timeout, EngineListener listener) {
        LlmedgeException.requireNonNull(prompt, "prompt");
        return run(prompt, null, null, options, timeout, listener);
    }

    /** Submit prompt tokens, used as given. */
    public EngineRequest submit(int[] promptTokens, GenerateOptions options, Duration timeout,
            EngineListener listener) {
        LlmedgeException.requireNonNull(promptTokens, "promptTokens");
        return run(null, promptTokens, null, options, timeout, listener);
    }

    /** Submit a conversation, rendered with the chat template. */
    public EngineRequest submitChat(List<ChatMessage> messages, GenerateOptions options, EngineListener listener) {
        return submitChat(messages, options, null, listener);
    }

    public EngineRequest submitChat(List<ChatMessage> messages, GenerateOptions options, Duration timeout,
            EngineListener listener) {
        LlmedgeException.requireNonNull(messages, "messages");
        ChatMessage[] array = messages.toArray(new ChatMessage[0]);
        for (ChatMessage m : array) {
            LlmedgeException.requireNonNull(m, "message");
        }
        return run(null, null, array, options, timeout, listener);
    }

    /** Submit and wait for the whole result. */
    public Completion generate(String prompt, GenerateOptions options) {
        try (EngineRequest r = submit(prompt, options, null)) {
            return r.await();
        }
    }

    /** {@link #submitChat} and wait for the whole result. */
    public Completion chat(List<ChatMessage> messages, GenerateOptions options) {
        try (EngineRequest r = submitChat(messages, options, null)) {
            return r.await();
        }
    }

    /**
     * The engine's counters as JSON: {@code slots}, {@code active}, {@code queued}, {@code finished},
     * {@code rejected_busy}, {@code timed_out}, {@code prompt_tokens}, {@code cached_prompt_tokens},
     * {@code generated_tokens}, {@code decode_steps}, {@code prefix_cache_entries},
     * {@code prefix_cache_bytes}, {@code prefix_hits}, {@code response_cache_hits}.
     */
    public String statsJson() {
        long h = acquire();
        try {
            return NativeBridge.engineStatsJson(h);
        } finally {
            release();
        }
    }

    /**
     * Stop accepting requests (later ones throw code 60) and wait for the scheduler: after every
     * queued and running request has finished ({@code drain}), or after cancelling them all.
     * Idempotent. Code 1 from a listener. The engine must still be closed.
     */
    public void shutdown(boolean drain) {
        long h = acquire();
        try {
            NativeBridge.engineShutdown(h, drain);
        } finally {
            release();
        }
    }

    /** Sequences decoded together. */
    public int slots() {
        long h = acquire();
        try {
            return NativeBridge.engineSlots(h);
        } finally {
            release();
        }
    }

    /** Each sequence's context window in tokens. */
    public int contextSize() {
        long h = acquire();
        try {
            return NativeBridge.engineContextSize(h);
        } finally {
            release();
        }
    }

    private EngineRequest run(String prompt, int[] tokens, ChatMessage[] messages, GenerateOptions options,
            Duration timeout, EngineListener listener) {
        long timeoutMs = timeout == null ? 0 : timeout.toMillis();
        if (timeoutMs < 0 || (timeout != null && timeoutMs == 0 && !timeout.isZero())) {
            throw new LlmedgeException(ErrorCode.INVALID_ARGUMENT, "invalid argument: timeout must be >= 1 ms");
        }
        EngineRequest.Callbacks callbacks = new EngineRequest.Callbacks(listener);
        long h = acquire();
        try {
            return new EngineRequest(
                    NativeBridge.engineSubmit(h, prompt, tokens, messages, options, timeoutMs, callbacks), callbacks);
        } finally {
            release();
        }
    }

    @Override
    public String toString() {
        return "Engine{" + (isClosed() ? "closed" : statsJson()) + "}";
    }
}
