package io.llmedge;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class CancellationTest {
    /** Long enough that finishing it would take far longer than any of these tests allow. */
    static final int LONG = 2000;
    static Model model;
    static ExecutorService pool;

    @BeforeAll
    static void load() {
        model = TestModels.load();
        pool = Executors.newCachedThreadPool();
    }

    @AfterAll
    static void close() {
        pool.shutdownNow();
        model.close();
    }

    static GenerateOptions endless() {
        return GenerateOptions.builder().greedy(true).maxTokens(LONG).ignoreEos(true).build();
    }

    static Session newSession() {
        return model.newSession(SessionOptions.builder().contextSize(LONG + 64).build());
    }

    @Test
    void cancelFromAnotherThreadStopsGeneration() throws Exception {
        try (Session session = newSession()) {
            CountDownLatch started = new CountDownLatch(1);
            AtomicInteger pieces = new AtomicInteger();
            Future<Completion> running = pool.submit(() -> session.generate("Tell me everything about the ocean.",
                    endless(), piece -> {
                        pieces.incrementAndGet();
                        started.countDown();
                        return true;
                    }));
            assertTrue(started.await(60, TimeUnit.SECONDS), "generation did not start");
            session.cancel();
            Completion c = running.get(60, TimeUnit.SECONDS);
            assertEquals(FinishReason.CANCELLED, c.getFinishReason());
            assertTrue(c.getTokens().length < LONG / 2, "cancelled after " + c.getTokens().length + " tokens");
            assertTrue(c.getTokens().length >= 1);
            // The session is usable afterwards.
            assertEquals(FinishReason.LENGTH, session.generate("Hi", TestModels.greedy(2).toBuilder().ignoreEos(true).build())
                    .getFinishReason());
        }
    }

    @Test
    void listenerReturningFalseStops() {
        try (Session session = newSession()) {
            List<String> seen = new ArrayList<>();
            Completion c = session.generate("Once upon a time", endless(), piece -> {
                seen.add(piece);
                return seen.size() < 3;
            });
            assertEquals(FinishReason.CANCELLED, c.getFinishReason());
            // After the stop the listener is not called again; text the safety filter still held
            // back is dropped, so the pieces add up to the text.
            assertEquals(3, seen.size(), seen.toString());
            assertTrue(c.getTokens().length <= 4, "ran on for " + c.getTokens().length + " tokens");
            assertEquals(String.join("", seen), c.getText());
        }
        try (Session session = model.newSession(SessionOptions.builder().contextSize(LONG + 64).safetyEnabled(false).build())) {
            // Without the safety layer nothing is held back: the stop is immediate.
            List<String> seen = new ArrayList<>();
            Completion c = session.generate("Once upon a time", endless(), piece -> {
                seen.add(piece);
                return seen.size() < 3;
            });
            assertEquals(FinishReason.CANCELLED, c.getFinishReason());
            assertEquals(3, seen.size());
            assertEquals(String.join("", seen), c.getText());
        }
    }

    @Test
    void listenerExceptionStopsGenerationAndReachesTheCaller() {
        try (Session session = newSession()) {
            AtomicInteger calls = new AtomicInteger();
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> session.generate("Once upon a time", endless(), piece -> {
                        if (calls.incrementAndGet() == 2) {
                            throw new IllegalStateException("listener says no");
                        }
                        return true;
                    }));
            assertEquals("listener says no", e.getMessage());
            assertEquals(2, calls.get());
            // Nothing is left pending: the session keeps working.
            assertEquals(2, session.generate("Hi", TestModels.greedy(2).toBuilder().ignoreEos(true).build())
                    .getTokens().length);
        }
    }

    @Test
    void closingTheIteratorCancelsGeneration() {
        try (Session session = newSession()) {
            long start = System.nanoTime();
            TokenStream pieces = session.stream("Tell me everything about the ocean.", endless());
            for (int i = 0; i < 3; i++) {
                assertTrue(pieces.hasNext());
                assertFalse(pieces.next().isEmpty());
            }
            pieces.close();
            Completion c = pieces.completion();
            assertEquals(FinishReason.CANCELLED, c.getFinishReason());
            assertTrue(c.getTokens().length < 3 + TokenStream.CAPACITY + 2,
                    "generation ran on after close: " + c.getTokens().length + " tokens");
            assertFalse(pieces.hasNext());
            pieces.close(); // twice is harmless
            assertTrue(TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - start) < 60);
        }
    }

    @Test
    void closingASessionWhileItGeneratesCancelsItSafely() throws Exception {
        Session session = newSession();
        CountDownLatch started = new CountDownLatch(1);
        Future<Completion> running = pool.submit(() -> session.generate("Tell me everything about the ocean.",
                endless(), piece -> {
                    started.countDown();
                    return true;
                }));
        assertTrue(started.await(60, TimeUnit.SECONDS));
        session.close();
        assertTrue(session.isClosed());
        // The running call finishes normally (cancelled); the memory is freed after it returns.
        Completion c = running.get(60, TimeUnit.SECONDS);
        assertEquals(FinishReason.CANCELLED, c.getFinishReason());
        LlmedgeException e = assertThrows(LlmedgeException.class, () -> session.generate("Hi", TestModels.greedy(2)));
        assertEquals(60, e.getCode());
        session.close();
    }
}
