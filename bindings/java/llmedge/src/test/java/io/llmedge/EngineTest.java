package io.llmedge;

import static org.junit.jupiter.api.Assertions.*;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The serving engine and session state files; every engine output is checked against the same request alone on a session. */
class EngineTest {
    static final List<String> QUESTIONS = Arrays.asList("What is the capital of France?",
            "Name three colours of the rainbow.", "Write one sentence about the sea.", "What is 12 times 12?",
            "Give a synonym for happy.");
    static Model model;

    @BeforeAll
    static void load() {
        model = TestModels.load();
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static SessionOptions sessionOptions() {
        return SessionOptions.builder().contextSize(512).build();
    }

    static Engine engine(int slots, int maxQueue) {
        return new Engine(model,
                EngineOptions.builder().sessionOptions(sessionOptions()).slots(slots).maxQueue(maxQueue).build());
    }

    static List<ChatMessage> ask(String question) {
        return Collections.singletonList(ChatMessage.user(question));
    }

    static int[] alone(List<ChatMessage> messages, GenerateOptions options) {
        try (Session s = model.newSession(sessionOptions())) {
            return s.chat(messages, options).getTokens();
        }
    }

    static GenerateOptions endless() {
        return GenerateOptions.builder().greedy(true).maxTokens(300).ignoreEos(true).build();
    }

    /** Collects one request's pieces and end, as its scheduler-thread listener. */
    static final class Recorder implements EngineListener {
        final StringBuilder text = new StringBuilder();
        final CountDownLatch firstPiece = new CountDownLatch(1);
        final AtomicInteger doneCalls = new AtomicInteger();
        final AtomicReference<LlmedgeException> error = new AtomicReference<>();
        final AtomicReference<Thread> thread = new AtomicReference<>();
        volatile Completion completion;

        @Override
        public synchronized boolean onPiece(String piece) {
            text.append(piece);
            thread.set(Thread.currentThread());
            firstPiece.countDown();
            return true;
        }

        @Override
        public void onDone(Completion c, LlmedgeException e) {
            completion = c;
            error.set(e);
            doneCalls.incrementAndGet();
            firstPiece.countDown();
        }
    }

    @Test
    void concurrentRequestsEqualEachRequestAlone() {
        GenerateOptions greedy = TestModels.greedy(20);
        try (Engine engine = engine(3, 64)) {
            List<EngineRequest> requests = new ArrayList<>();
            List<Recorder> seen = new ArrayList<>();
            for (String q : QUESTIONS) {
                Recorder r = new Recorder();
                seen.add(r);
                requests.add(engine.submitChat(ask(q), greedy, r));
            }
            int generated = 0;
            for (int i = 0; i < QUESTIONS.size(); i++) {
                Completion c = requests.get(i).await();
                assertArrayEquals(alone(ask(QUESTIONS.get(i)), greedy), c.getTokens(), QUESTIONS.get(i));
                Recorder r = seen.get(i);
                assertEquals(c.getText(), r.text.toString());
                assertEquals(1, r.doneCalls.get());
                assertSame(c, r.completion);
                assertNotSame(Thread.currentThread(), r.thread.get(), "listeners run on the scheduler thread");
                assertTrue(requests.get(i).isDone());
                assertEquals(c.requestId(), requests.get(i).id());
                generated += c.getUsage().getCompletionTokens();
                requests.get(i).close();
            }
            JsonObject stats = JsonParser.parseString(engine.statsJson()).getAsJsonObject();
            assertEquals(QUESTIONS.size(), stats.get("finished").getAsInt());
            assertEquals(3, stats.get("slots").getAsInt());
            assertTrue(stats.get("decode_steps").getAsInt() < generated, "nothing was batched: " + stats);
            assertEquals(3, engine.slots());
            assertEquals(512, engine.contextSize());
            // Blocking conveniences; text, token and chat inputs.
            assertArrayEquals(alone(ask(QUESTIONS.get(0)), greedy), engine.chat(ask(QUESTIONS.get(0)), greedy).getTokens());
            Completion byText = engine.generate("The capital of France is", greedy);
            Completion byTokens = engine.submit(model.tokenize("The capital of France is"), greedy, null, null).await();
            assertArrayEquals(byText.getTokens(), byTokens.getTokens());
        }
    }

    @Test
    void fullQueueCancelAndTimeout() throws Exception {
        try (Engine engine = engine(1, 1)) {
            Recorder running = new Recorder();
            EngineRequest first = engine.submit("Once upon a time", endless(), running);
            assertTrue(running.firstPiece.await(60, TimeUnit.SECONDS));
            EngineRequest queued = engine.submit("Hello", endless(), null);
            LlmedgeException busy = assertThrows(LlmedgeException.class, () -> engine.submit("Hi", endless(), null));
            assertEquals(ErrorCode.BUSY, busy.getErrorCode());
            assertEquals(70, busy.getCode());
            queued.cancel();
            Completion cq = queued.await();
            assertEquals(FinishReason.CANCELLED, cq.getFinishReason());
            assertEquals(0, cq.getUsage().getCompletionTokens());
            Thread canceller = new Thread(first::cancel);
            canceller.start();
            canceller.join();
            Completion cr = first.await();
            assertEquals(FinishReason.CANCELLED, cr.getFinishReason());
            assertTrue(cr.getUsage().getCompletionTokens() < 300);
            assertEquals(cr.getText(), running.text.toString());
            // A deadline: the listener gets the error, await() throws it, the future fails with it.
            Recorder late = new Recorder();
            EngineRequest timed = engine.submit("Once upon a time", endless(), Duration.ofMillis(300), late);
            LlmedgeException timeout = assertThrows(LlmedgeException.class, timed::await);
            assertEquals(ErrorCode.TIMEOUT, timeout.getErrorCode());
            assertEquals(ErrorCode.TIMEOUT, late.error.get().getErrorCode());
            assertNull(late.completion);
            assertTrue(timed.future().isCompletedExceptionally());
            // A listener that throws cancels the request; await() rethrows its exception.
            AtomicInteger pieces = new AtomicInteger();
            EngineRequest thrower = engine.submit("Once upon a time", endless(), new EngineListener() {
                @Override
                public boolean onPiece(String piece) {
                    if (pieces.incrementAndGet() == 2) {
                        throw new IllegalStateException("stop here");
                    }
                    return true;
                }
            });
            assertThrows(IllegalStateException.class, thrower::await);
            assertEquals(2, pieces.get());
            // Inside a listener, waiting and shutting down are refused instead of deadlocking.
            AtomicReference<LlmedgeException> inside = new AtomicReference<>();
            AtomicReference<LlmedgeException> insideShutdown = new AtomicReference<>();
            AtomicReference<EngineRequest> self = new AtomicReference<>();
            CountDownLatch submitted = new CountDownLatch(1);
            EngineRequest odd = engine.submit("Hello", GenerateOptions.builder().maxTokens(4).ignoreEos(true).build(),
                    new EngineListener() {
                        @Override
                        public void onDone(Completion c, LlmedgeException e) {
                            try {
                                submitted.await();
                            } catch (InterruptedException ie) {
                                Thread.currentThread().interrupt();
                            }
                            inside.set(assertThrows(LlmedgeException.class, () -> self.get().await()));
                            insideShutdown.set(assertThrows(LlmedgeException.class, () -> engine.shutdown(true)));
                        }
                    });
            self.set(odd);
            submitted.countDown();
            odd.await();
            assertEquals(ErrorCode.INVALID_ARGUMENT, inside.get().getErrorCode());
            assertEquals(ErrorCode.INVALID_ARGUMENT, insideShutdown.get().getErrorCode());
            JsonObject stats = JsonParser.parseString(engine.statsJson()).getAsJsonObject();
            assertEquals(1, stats.get("rejected_busy").getAsInt());
            assertEquals(1, stats.get("timed_out").getAsInt());
            // Shutdown: later submissions are closed.
            engine.shutdown(true);
            LlmedgeException closed = assertThrows(LlmedgeException.class, () -> engine.submit("Hi", null, null));
            assertEquals(ErrorCode.CLOSED, closed.getErrorCode());
        }
    }

    @Test
    void closingTheEngineCancelsWhatIsLeft() throws Exception {
        Recorder a = new Recorder();
        Recorder b = new Recorder();
        EngineRequest ra;
        try (Engine engine = engine(1, 8)) {
            ra = engine.submit("Once upon a time", endless(), a);
            engine.submit("Hello", endless(), b);
            assertTrue(a.firstPiece.await(60, TimeUnit.SECONDS));
        }
        assertEquals(1, a.doneCalls.get());
        assertEquals(1, b.doneCalls.get());
        assertEquals(FinishReason.CANCELLED, ra.await().getFinishReason());
        assertEquals(FinishReason.CANCELLED, b.completion.getFinishReason());
        ra.close();
        LlmedgeException bad = assertThrows(LlmedgeException.class,
                () -> new Engine(model, EngineOptions.builder().slots(0).build()));
        assertEquals(ErrorCode.INVALID_ARGUMENT, bad.getErrorCode());
    }

    @Test
    void sessionStateRoundTripAndBadFiles(@TempDir Path dir) throws Exception {
        Path path = dir.resolve("conversation.kv");
        GenerateOptions greedy = TestModels.greedy(12);
        List<ChatMessage> history = new ArrayList<>(ask(QUESTIONS.get(0)));
        Completion continued;
        Completion second;
        try (Session s = model.newSession(sessionOptions())) {
            Completion first = s.chat(history, greedy);
            assertEquals(0, first.getUsage().getCachedPromptTokens());
            history.add(ChatMessage.assistant(first.getText()));
            history.add(ChatMessage.user("And of Italy?"));
            second = s.chat(history, greedy);
            assertTrue(second.getUsage().getCachedPromptTokens() >= first.getUsage().getPromptTokens(),
                    second.getUsage().toString());
            s.saveState(path);
            history.add(ChatMessage.assistant(second.getText()));
            history.add(ChatMessage.user("And of Spain?"));
            continued = s.chat(history, greedy);
        }
        try (Session restored = model.newSession(sessionOptions())) {
            int n = restored.loadState(path);
            assertTrue(n >= second.getUsage().getPromptTokens());
            Completion third = restored.chat(history, greedy);
            assertArrayEquals(continued.getTokens(), third.getTokens());
            assertEquals(continued.getUsage().getCachedPromptTokens(), third.getUsage().getCachedPromptTokens());
            byte[] bytes = Files.readAllBytes(path);
            bytes[bytes.length / 2] ^= 0x40;
            Path corrupt = dir.resolve("corrupt.kv");
            Files.write(corrupt, bytes);
            LlmedgeException e = assertThrows(LlmedgeException.class, () -> restored.loadState(corrupt));
            assertEquals(ErrorCode.STATE, e.getErrorCode());
            assertEquals(72, e.getCode());
            e = assertThrows(LlmedgeException.class, () -> restored.loadState(dir.resolve("missing.kv")));
            assertEquals(ErrorCode.IO, e.getErrorCode());
            Completion again = restored.chat(ask(QUESTIONS.get(1)), greedy);
            assertEquals(0, again.getUsage().getCachedPromptTokens());
            assertArrayEquals(alone(ask(QUESTIONS.get(1)), greedy), again.getTokens());
        }
        try (Session plain = model.newSession(SessionOptions.builder().contextSize(512).prefixReuse(false).build())) {
            plain.chat(history, greedy);
            assertEquals(0, plain.chat(history, greedy).getUsage().getCachedPromptTokens());
        }
    }

    static long stat(String json, String key) {
        return JsonParser.parseString(json).getAsJsonObject().get(key).getAsLong();
    }

    @Test
    void responseCacheAnswersRepeatsWithoutDecodingAndIsShared() {
        GenerateOptions greedy = TestModels.greedy(16);
        int[] want = alone(ask(QUESTIONS.get(0)), greedy);
        try (ResponseCache cache = ResponseCache.memory(8, Duration.ofMinutes(5))) {
            EngineOptions options = EngineOptions.builder().sessionOptions(sessionOptions()).slots(1)
                    .responseCache(cache, false).build();
            try (Engine a = new Engine(model, options); Engine b = new Engine(model, options)) {
                Completion first = a.chat(ask(QUESTIONS.get(0)), greedy);
                assertArrayEquals(want, first.getTokens());
                long steps = stat(b.statsJson(), "decode_steps");
                Completion hit = b.chat(ask(QUESTIONS.get(0)), greedy);
                assertArrayEquals(want, hit.getTokens());
                assertEquals(first.getText(), hit.getText());
                assertEquals(1, stat(b.statsJson(), "response_cache_hits"));
                assertEquals(steps, stat(b.statsJson(), "decode_steps"));
                assertEquals(1, stat(cache.statsJson(), "hits"));
                assertTrue(cache.statsJson().contains("\"backend\":\"memory\""), cache.statsJson());
                // Sampled without a seed: never cached.
                GenerateOptions sampled = GenerateOptions.builder().maxTokens(4).build();
                a.chat(ask(QUESTIONS.get(1)), sampled);
                a.chat(ask(QUESTIONS.get(1)), sampled);
                assertEquals(0, stat(a.statsJson(), "response_cache_hits"));
            }
        }
        LlmedgeException e = assertThrows(LlmedgeException.class, () -> ResponseCache.memory(0, Duration.ofMinutes(1)));
        assertEquals(ErrorCode.INVALID_ARGUMENT, e.getErrorCode());
        e = assertThrows(LlmedgeException.class, () -> ResponseCache.redis("not a url", null, Duration.ofMinutes(1), Duration.ofMillis(200)));
        assertEquals(ErrorCode.INVALID_ARGUMENT, e.getErrorCode());
        e = assertThrows(LlmedgeException.class, () -> ResponseCache.memory(4, null));
        assertEquals(ErrorCode.NULL_ARGUMENT, e.getErrorCode());
        ResponseCache closed = ResponseCache.memory(4, Duration.ofMinutes(1));
        closed.close();
        e = assertThrows(LlmedgeException.class, closed::statsJson);
        assertEquals(ErrorCode.CLOSED, e.getErrorCode());
        EngineOptions withClosed = EngineOptions.builder().sessionOptions(sessionOptions()).slots(1)
                .responseCache(closed, false).build();
        e = assertThrows(LlmedgeException.class, () -> new Engine(model, withClosed));
        assertEquals(ErrorCode.CLOSED, e.getErrorCode());
    }
}
