package io.llmedge;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

/**
 * A request submitted to an {@link Engine}: cancel it, wait for it or read its id, from any thread.
 * Closing it (or losing it to the garbage collector) frees the handle only: the request goes on
 * and its listener is still called; {@link #cancel()} stops it.
 */
public final class EngineRequest extends NativeResource {
    private final Callbacks callbacks;

    EngineRequest(long handle, Callbacks callbacks) {
        super("request", handle, NativeBridge::requestFree);
        this.callbacks = callbacks;
    }

    /** The request id, as in the audit log and the completion. */
    public String id() {
        long h = acquire();
        try {
            return NativeBridge.requestId(h);
        } finally {
            release();
        }
    }

    /**
     * Stop the request: a queued one ends without running, a running one before its next token;
     * it finishes with {@link FinishReason#CANCELLED}. A no-op once it has ended or been closed.
     */
    public void cancel() {
        long h;
        try {
            h = acquire();
        } catch (LlmedgeException closed) {
            return;
        }
        try {
            NativeBridge.requestCancel(h);
        } finally {
            release();
        }
    }

    /** True once the request has ended and its listener has returned. */
    public boolean isDone() {
        return callbacks.future.isDone();
    }

    /**
     * Wait for the end and return the completion. Throws the request's failure (code 71 past its
     * deadline, ...) or rethrows what its listener threw; code 1 inside a listener (the request
     * would wait for the thread running the listener). An interrupt while waiting cancels the
     * request and throws (the interrupt flag stays set).
     */
    public Completion await() {
        if (Engine.inCallback()) {
            throw new LlmedgeException(ErrorCode.INVALID_ARGUMENT,
                    "invalid argument: await() cannot be called from an engine listener");
        }
        try {
            return callbacks.future.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            cancel();
            throw new LlmedgeException(ErrorCode.INTERNAL, "interrupted while waiting for the request");
        } catch (ExecutionException e) {
            Throwable t = e.getCause();
            if (t instanceof LlmedgeException) {
                LlmedgeException le = (LlmedgeException) t;
                throw new LlmedgeException(le.getCode(), le.getMessage(), le);
            }
            if (t instanceof RuntimeException) {
                throw (RuntimeException) t;
            }
            if (t instanceof Error) {
                throw (Error) t;
            }
            throw new LlmedgeException(ErrorCode.INTERNAL.code(), t.toString(), t);
        }
    }

    /**
     * The result as a future: completed with the completion, or exceptionally with the request's
     * {@link LlmedgeException} (or its listener's exception). Completed on the scheduler thread.
     */
    public CompletableFuture<Completion> future() {
        // A dependent stage: completing or cancelling it does not touch the request's own result.
        return callbacks.future.thenApply(c -> c);
    }

    /**
     * The native side of one request: called by {@code libllmedge_jni} on the scheduler thread.
     * Never lets an exception escape into native code.
     */
    static final class Callbacks {
        private final EngineListener listener;
        private final CompletableFuture<Completion> future = new CompletableFuture<>();
        /** The first exception the listener threw (only touched on the scheduler thread). */
        private Throwable listenerError;

        Callbacks(EngineListener listener) {
            this.listener = listener;
        }

        boolean onNativePiece(String piece) {
            if (listener == null || listenerError != null) {
                return listenerError == null;
            }
            Engine.IN_LISTENER.set(Boolean.TRUE);
            try {
                return listener.onPiece(piece);
            } catch (Throwable t) {
                listenerError = t;
                return false;
            } finally {
                Engine.IN_LISTENER.remove();
            }
        }

        void onNativeDone(Completion completion, int code, String message) {
            LlmedgeException error = completion == null ? new LlmedgeException(code, message) : null;
            if (listener != null) {
                Engine.IN_LISTENER.set(Boolean.TRUE);
                try {
                    listener.onDone(completion, error);
                } catch (Throwable t) {
                    if (listenerError == null) {
                        listenerError = t;
                    }
                } finally {
                    Engine.IN_LISTENER.remove();
                }
            }
            if (listenerError != null) {
                future.completeExceptionally(listenerError);
            } else if (error != null) {
                future.completeExceptionally(error);
            } else {
                future.complete(completion);
            }
        }
    }
}
