package io.llmedge;

import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

/**
 * A generation running on a background thread, read as an {@link Iterator} of text pieces or as a
 * {@link Stream}. The pieces pass through a bounded queue, so a slow reader slows generation
 * down instead of buffering without limit. {@link #close()} cancels an unfinished generation and
 * waits for the background thread; always close it (try-with-resources).
 *
 * <pre>{@code
 * try (TokenStream pieces = session.stream("Once upon a time", options)) {
 *     pieces.forEachRemaining(System.out::print);
 *     System.out.println(pieces.completion().getUsage());
 * }
 * }</pre>
 */
public final class TokenStream implements Iterator<String>, AutoCloseable {
    /** Pieces the generating thread may run ahead of the reader. */
    static final int CAPACITY = 64;

    private static final Object END = new Object();

    private final Session session;
    private final BlockingQueue<Object> queue = new ArrayBlockingQueue<>(CAPACITY);
    private final Thread worker;
    private volatile boolean closed;
    private volatile Completion completion;
    private volatile Throwable failure;
    private String next;
    private boolean ended;

    TokenStream(Session session, Function<TokenListener, Completion> generation) {
        this.session = session;
        this.worker = new Thread(() -> {
            try {
                completion = generation.apply(this::offer);
            } catch (Throwable t) {
                failure = t;
            } finally {
                offerEnd();
            }
        }, "llmedge-stream");
        worker.setDaemon(true);
        worker.start();
    }

    /** Called on the generating thread for each piece; false once the reader has closed. */
    private boolean offer(String piece) {
        try {
            while (!closed) {
                if (queue.offer(piece, 20, TimeUnit.MILLISECONDS)) {
                    return true;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return false;
    }

    private void offerEnd() {
        while (!queue.offer(END)) {
            if (closed) {
                queue.clear();
            } else {
                try {
                    if (queue.offer(END, 20, TimeUnit.MILLISECONDS)) {
                        return;
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    queue.clear();
                }
            }
        }
    }

    @Override
    public boolean hasNext() {
        if (next != null) {
            return true;
        }
        if (ended) {
            return false;
        }
        Object item;
        try {
            item = queue.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            close();
            throw new LlmedgeException(ErrorCode.INTERNAL, "interrupted while waiting for the next piece");
        }
        if (item == END) {
            ended = true;
            rethrowFailure();
            return false;
        }
        next = (String) item;
        return true;
    }

    @Override
    public String next() {
        if (!hasNext()) {
            throw new NoSuchElementException();
        }
        String piece = next;
        next = null;
        return piece;
    }

    /** The pieces as a sequential {@link Stream}; closing the stream closes this. */
    public Stream<String> stream() {
        Spliterator<String> split = Spliterators.spliteratorUnknownSize(this,
                Spliterator.ORDERED | Spliterator.NONNULL);
        return StreamSupport.stream(split, false).onClose(this::close);
    }

    /**
     * The finished generation's result (usage, timings, finish reason), waiting for it if needed.
     * After an early {@link #close()} its finish reason is {@link FinishReason#CANCELLED}.
     * Throws the generation's exception if it failed.
     */
    public Completion completion() {
        joinWorker();
        rethrowFailure();
        return completion;
    }

    /** Cancel an unfinished generation and wait until the background thread has stopped. Idempotent. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            if (worker.isAlive()) {
                // Also stops a prompt that is still being evaluated; a piece already generated is
                // refused by offer() either way.
                session.cancel();
            }
        }
        queue.clear();
        joinWorker();
    }

    private void joinWorker() {
        boolean interrupted = false;
        while (true) {
            try {
                worker.join();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private void rethrowFailure() {
        Throwable t = failure;
        if (t == null) {
            return;
        }
        if (t instanceof LlmedgeException) {
            LlmedgeException e = (LlmedgeException) t;
            throw new LlmedgeException(e.getCode(), e.getMessage(), e);
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
