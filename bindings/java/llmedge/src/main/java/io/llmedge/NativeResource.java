package io.llmedge;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongConsumer;

/**
 * Owner of one native handle (a Rust {@code Box} pointer passed as a {@code long}).
 *
 * <p>The handle lives in a field and every native call goes through {@link #acquire()} /
 * {@link #release()}, which count the calls in flight under a lock. {@link #close()} marks the
 * object closed at once (later calls throw {@link LlmedgeException} with code 60) and frees the
 * handle exactly once: immediately when idle, or when the last call in flight returns. So close
 * twice is harmless, use after close throws, and a handle is never freed while in use. A
 * {@link NativeCleaner} frees handles of objects that are garbage collected without being closed.
 */
abstract class NativeResource implements AutoCloseable {
    /** Handles allocated and not yet freed, all kinds together (for leak tests). */
    private static final Set<Long> LIVE = ConcurrentHashMap.newKeySet();

    static boolean isLive(long handle) {
        return LIVE.contains(handle);
    }
    /** The shared state; must not refer to the owning object, or the cleaner never runs. */
    private static final class State implements Runnable {
        private final LongConsumer free;
        private long handle;
        private int users;
        private boolean closed;

        State(long handle, LongConsumer free) {
            this.handle = handle;
            this.free = h -> {
                LIVE.remove(h);
                free.accept(h);
            };
            LIVE.add(handle);
        }

        /** Close: free now if idle, else leave it to the last {@code release}. */
        @Override
        public void run() {
            long toFree;
            synchronized (this) {
                closed = true;
                if (users > 0 || handle == 0) {
                    return;
                }
                toFree = handle;
                handle = 0;
            }
            free.accept(toFree);
        }
    }

    private final String kind;
    private final State state;
    private final NativeCleaner.Cleanable cleanable;

    NativeResource(String kind, long handle, LongConsumer free) {
        this.kind = kind;
        this.state = new State(handle, free);
        this.cleanable = NativeCleaner.register(this, state);
    }

    /** The handle, counted as in use until {@link #release()}; throws code 60 when closed. */
    final long acquire() {
        synchronized (state) {
            if (state.closed || state.handle == 0) {
                throw LlmedgeException.closed(kind);
            }
            state.users++;
            return state.handle;
        }
    }

    /** End of a call started with {@link #acquire()}. */
    final void release() {
        long toFree = 0;
        synchronized (state) {
            state.users--;
            if (state.users == 0 && state.closed && state.handle != 0) {
                toFree = state.handle;
                state.handle = 0;
            }
        }
        if (toFree != 0) {
            state.free.accept(toFree);
        }
        // Keep this object reachable until the native call using its handle has returned.
        NativeCleaner.reachabilityFence(this);
    }

    /** The handle, 0 once freed (tests only). */
    final long handleForTesting() {
        synchronized (state) {
            return state.handle;
        }
    }

    /** Called under the lock when {@link #close()} finds calls in flight (the handle is still valid). */
    void onCloseWhileBusy(long handle) {}

    /** True once {@link #close()} was called. */
    public final boolean isClosed() {
        synchronized (state) {
            return state.closed;
        }
    }

    /**
     * Release the native memory. Harmless to call more than once. A call in flight on another
     * thread finishes first (for a session, its generation is cancelled) and the memory is
     * freed when it returns.
     */
    @Override
    public void close() {
        synchronized (state) {
            if (state.closed) {
                return;
            }
            if (state.users > 0) {
                state.closed = true;
                onCloseWhileBusy(state.handle);
                return;
            }
        }
        cleanable.clean();
    }
}
