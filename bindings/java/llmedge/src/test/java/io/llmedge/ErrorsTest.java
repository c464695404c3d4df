package io.llmedge;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.function.Executable;

class ErrorsTest {
    static Model model;
    static Session session;

    @BeforeAll
    static void load() {
        model = TestModels.load();
        session = model.newSession(SessionOptions.builder().contextSize(64).build());
    }

    @AfterAll
    static void close() {
        session.close();
        model.close();
    }

    private static LlmedgeException assertCode(int code, Executable call) {
        LlmedgeException e = assertThrows(LlmedgeException.class, call);
        assertEquals(code, e.getCode(), e.toString());
        assertEquals(code, e.getErrorCode().code());
        return e;
    }

    @Test
    void nullArguments() {
        assertCode(2, () -> Model.load((String) null));
        assertCode(2, () -> Model.load((Path) null));
        assertCode(2, () -> session.generate((String) null, TestModels.greedy(2)));
        assertCode(2, () -> session.generate((int[]) null, TestModels.greedy(2)));
        assertCode(2, () -> session.generateStreaming("hi", TestModels.greedy(2), null));
        assertCode(2, () -> session.chat(null, TestModels.greedy(2)));
        assertCode(2, () -> session.chat(Arrays.asList(ChatMessage.user("hi"), null), TestModels.greedy(2)));
        assertCode(2, () -> session.stream(null, TestModels.greedy(2)));
        assertCode(2, () -> model.tokenize(null));
        assertCode(2, () -> model.detokenize(null));
        assertCode(2, () -> model.embed(null));
        assertCode(2, () -> new ChatMessage("user", null));
        assertCode(2, () -> new Session(null));
        assertCode(2, () -> GenerateOptions.builder().stop("a", null));
    }

    @Test
    void errorCodesMatchTheCore() {
        // Every code of the Rust core, in order, with the snake_case name of the Java constant.
        List<String> core = Arrays.asList(NativeBridge.errorCodes());
        List<String> mine = new java.util.ArrayList<>();
        for (ErrorCode c : ErrorCode.values()) {
            mine.add(c.code() + ":" + c.name().toLowerCase(java.util.Locale.ROOT));
        }
        assertEquals(core, mine);
        assertEquals(ErrorCode.TEMPLATE_VARIABLES, ErrorCode.fromCode(32));
        assertEquals(ErrorCode.AUDIT, ErrorCode.fromCode(42));
        assertEquals(FinishReason.CONTENT_FILTER, FinishReason.values()[3]);
    }

    @Test
    void resourceLimits() {
        ModelOptions limited = ModelOptions.builder().threads(1).maxPromptTokens(16).maxSessions(1).build();
        String longPrompt = "word ".repeat(40);
        try (Model m = Model.load(TestModels.path(), limited)) {
            try (Session s = m.newSession(SessionOptions.builder().contextSize(128).build())) {
                LlmedgeException e = assertCode(74, () -> s.generate(longPrompt, TestModels.greedy(4)));
                assertEquals(ErrorCode.LIMIT, e.getErrorCode());
                assertTrue(e.getMessage().contains("max_prompt_tokens (16)"), e.getMessage());
                assertCode(74, () -> m.embed(longPrompt));
                e = assertCode(70, () -> m.newSession());
                assertTrue(e.getMessage().contains("max_sessions (1)"), e.getMessage());
                assertFalse(s.generate("The capital of France is", TestModels.greedy(2)).getText().isEmpty());
            }
            // The closed session's place is free again.
            try (Engine engine = new Engine(m, EngineOptions.builder().slots(1)
                    .sessionOptions(SessionOptions.builder().contextSize(128).build()).build())) {
                assertCode(70, () -> m.newSession());
            }
            m.newSession().close();
        }
        assertCode(1, () -> Model.load(TestModels.path(), ModelOptions.builder().maxSessions(0).build()));
        assertCode(1, () -> Model.load(TestModels.path(), ModelOptions.builder().maxPromptTokens(-1).build()));
    }

    @Test
    void missingModel() {
        LlmedgeException e = assertCode(10, () -> Model.load("/nonexistent/dir/model.gguf"));
        assertTrue(e.getMessage().contains("/nonexistent/dir/model.gguf"), e.getMessage());
        assertEquals(ErrorCode.MODEL_NOT_FOUND, e.getErrorCode());
    }

    @Test
    void corruptModels(@TempDir Path dir) throws IOException {
        long size = Files.size(Paths.get(TestModels.path()));
        // Cut inside the metadata, and inside the tensor data.
        for (long keep : new long[] {64 * 1024, size / 2}) {
            Path truncated = dir.resolve("truncated-" + keep + ".gguf");
            copyPrefix(Paths.get(TestModels.path()), truncated, keep);
            assertCode(11, () -> Model.load(truncated.toString()));
        }
        Path notGguf = dir.resolve("not-a-model.gguf");
        Files.write(notGguf, "this is not a GGUF file at all".getBytes());
        assertCode(11, () -> Model.load(notGguf.toString()));
        assertCode(11, () -> Model.load(dir.toString()));
    }

    @Test
    void badGenerateOptions() {
        assertCode(1, () -> session.generate("hi", GenerateOptions.builder().maxTokens(-1).build()));
        assertCode(1, () -> session.generate("hi", GenerateOptions.builder().maxTokens(Integer.MIN_VALUE).build()));
        assertCode(1, () -> session.generate("hi", GenerateOptions.builder().maxTokens(0).build()));
        assertCode(1, () -> session.generate("hi", GenerateOptions.builder().maxTokens(2).topP(0f).build()));
        assertCode(1, () -> session.generate("hi", GenerateOptions.builder().maxTokens(2).temperature(-1f).build()));
        assertCode(1, () -> session.generate("hi", GenerateOptions.builder().maxTokens(2).temperature(Float.NaN).build()));
        assertCode(1, () -> session.generate("hi", GenerateOptions.builder().maxTokens(2).topK(-3).build()));
        assertCode(1, () -> session.generate("hi", GenerateOptions.builder().maxTokens(2).seed(-1).build()));
        assertCode(1, () -> session.generate("hi", GenerateOptions.builder().maxTokens(2).seed(1L << 32).build()));
        assertCode(23, () -> session.generate("hi", GenerateOptions.builder().maxTokens(2).logitBias(1 << 30, 1f).build()));
        // The session is still fine after all that.
        assertEquals(2, session.generate("hi", TestModels.greedy(2).toBuilder().ignoreEos(true).build()).getTokens().length);
    }

    @Test
    void badSessionAndModelOptions() {
        assertCode(1, () -> model.newSession(SessionOptions.builder().contextSize(-1).build()));
        assertCode(1, () -> model.newSession(SessionOptions.builder().contextSize(4).build()));
        assertCode(1, () -> model.newSession(SessionOptions.builder().threads(0).build()));
        assertCode(30, () -> model.newSession(SessionOptions.builder().chatTemplate("no-such-template").build()));
        assertCode(30, () -> model.newSession(SessionOptions.builder().chatTemplate("{% for m in messages %}").build()));
        assertCode(1, () -> Model.load(TestModels.path(), ModelOptions.builder().threads(0).build()));
        assertCode(1, () -> Model.load(TestModels.path(), ModelOptions.builder().gpuLayers(-2).build()));
    }

    @Test
    void contextOverflowAndBadTokens() {
        String longPrompt = String.join(" ", java.util.Collections.nCopies(200, "word"));
        assertCode(21, () -> session.generate(longPrompt, TestModels.greedy(8)));
        Completion truncated = session.generate(longPrompt,
                TestModels.greedy(8).toBuilder().truncation(Truncation.DROP_OLDEST).ignoreEos(true).build());
        assertEquals(8, truncated.getTokens().length);
        assertTrue(truncated.getUsage().getPromptTokens() <= 64 - 8);

        assertCode(23, () -> model.detokenize(new int[] {-1}));
        assertCode(23, () -> model.detokenize(new int[] {model.info().getVocabularySize()}));
        assertCode(23, () -> session.generate(new int[] {1, 999_999}, TestModels.greedy(2)));
        assertCode(1, () -> session.generate(new int[0], TestModels.greedy(2)));
        assertCode(1, () -> model.embed(""));
    }

    @Test
    void messagesNameTheProblem() {
        List<String> messages = Arrays.asList(
                assertCode(1, () -> session.generate("hi", GenerateOptions.builder().maxTokens(-7).build())).getMessage(),
                assertCode(2, () -> session.generate((String) null, null)).getMessage());
        assertTrue(messages.get(0).contains("-7"), messages.get(0));
        assertTrue(messages.get(1).contains("prompt"), messages.get(1));
    }

    private static void copyPrefix(Path from, Path to, long bytes) throws IOException {
        try (InputStream in = Files.newInputStream(from); OutputStream out = Files.newOutputStream(to)) {
            byte[] buf = new byte[1 << 16];
            long left = bytes;
            while (left > 0) {
                int n = in.read(buf, 0, (int) Math.min(buf.length, left));
                if (n < 0) {
                    break;
                }
                out.write(buf, 0, n);
                left -= n;
            }
        }
    }
}
