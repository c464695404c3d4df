package io.llmedge;

import static org.junit.jupiter.api.Assertions.*;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class GenerationTest {
    static Model model;
    static Session session;

    @BeforeAll
    static void load() {
        model = TestModels.load();
        session = model.newSession(SessionOptions.builder().contextSize(512).build());
    }

    @AfterAll
    static void close() {
        session.close();
        model.close();
    }

    /**
     * The Rust CLI's answer to `llmedge run --raw --greedy -n 32 --json PROMPT`, on the same model
     * file and, like the tests' sessions, one thread (-t 1: on a busy machine llama.cpp's spinning
     * threads crawl when they outnumber the free cores).
     */
    private static JsonObject cli(String prompt) throws Exception {
        Process p = new ProcessBuilder(TestModels.cli().toString(), "run", "--raw", "--greedy", "-n", "32", "--json",
                "-m", TestModels.path(), "-t", "1", prompt).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (InputStream in = p.getInputStream()) {
            in.transferTo(out);
        }
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "CLI timed out");
        String json = out.toString(StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), "CLI failed: " + json);
        return JsonParser.parseString(json.trim()).getAsJsonObject();
    }

    @ParameterizedTest
    @ValueSource(strings = {"The capital of France is", "def fibonacci(n):", "Once upon a time, in a small village,"})
    void greedyTextEqualsTheRustCli(String prompt) throws Exception {
        JsonObject expected = cli(prompt);
        Completion c;
        // The CLI opens its session with the default options (threads aside); so does this.
        try (Session s = model.newSession()) {
            c = s.generate(prompt, TestModels.greedy(32));
        }
        assertEquals(expected.get("text").getAsString(), c.getText());
        JsonArray tokens = expected.getAsJsonArray("tokens");
        int[] expectedTokens = new int[tokens.size()];
        for (int i = 0; i < expectedTokens.length; i++) {
            expectedTokens[i] = tokens.get(i).getAsInt();
        }
        assertArrayEquals(expectedTokens, c.getTokens());
        assertFalse(c.getText().isEmpty());
    }

    @Test
    void listenerAndConsumerStreamingConcatenateToTheBlockingText() {
        String prompt = "Write a short poem about the sea:";
        Completion blocking = session.generate(prompt, TestModels.greedy(40));

        StringBuilder viaListener = new StringBuilder();
        List<String> pieces = new ArrayList<>();
        Completion streamed = session.generate(prompt, TestModels.greedy(40), piece -> {
            pieces.add(piece);
            viaListener.append(piece);
            return true;
        });
        assertTrue(pieces.size() > 1, "expected several pieces, got " + pieces);
        assertEquals(blocking.getText(), viaListener.toString());
        assertEquals(blocking.getText(), streamed.getText());
        assertArrayEquals(blocking.getTokens(), streamed.getTokens());

        StringBuilder viaConsumer = new StringBuilder();
        Completion consumed = session.generateStreaming(prompt, TestModels.greedy(40), viaConsumer::append);
        assertEquals(blocking.getText(), viaConsumer.toString());
        assertEquals(blocking.getText(), consumed.getText());
    }

    @Test
    void iteratorAndStreamConcatenateToTheBlockingText() {
        String prompt = "List three colours:";
        Completion blocking = session.generate(prompt, TestModels.greedy(40));

        StringBuilder viaIterator = new StringBuilder();
        try (TokenStream pieces = session.stream(prompt, TestModels.greedy(40))) {
            while (pieces.hasNext()) {
                viaIterator.append(pieces.next());
            }
            Completion c = pieces.completion();
            assertEquals(blocking.getText(), c.getText());
            assertArrayEquals(blocking.getTokens(), c.getTokens());
            assertEquals(blocking.getFinishReason(), c.getFinishReason());
        }
        assertEquals(blocking.getText(), viaIterator.toString());

        String viaStream;
        try (Stream<String> s = session.stream(prompt, TestModels.greedy(40)).stream()) {
            viaStream = s.collect(Collectors.joining());
        }
        assertEquals(blocking.getText(), viaStream);
    }

    @Test
    void streamFailuresReachTheReader() {
        TokenStream pieces = session.stream("hello", GenerateOptions.builder().maxTokens(-5).build());
        LlmedgeException e = assertThrows(LlmedgeException.class, pieces::hasNext);
        assertEquals(1, e.getCode());
        pieces.close();
    }

    @Test
    void finishReasonUsageAndTimings() {
        Completion c = session.generate("Count: one, two, three,",
                GenerateOptions.builder().greedy(true).maxTokens(4).ignoreEos(true).build());
        assertEquals(FinishReason.LENGTH, c.getFinishReason());
        assertEquals(4, c.getTokens().length);
        assertEquals(4, c.getUsage().getCompletionTokens());
        assertEquals(model.tokenize("Count: one, two, three,").length, c.getUsage().getPromptTokens());
        assertTrue(c.getTimings().getPromptMs() > 0);
        assertTrue(c.getTimings().getTimeToFirstTokenMs() >= c.getTimings().getPromptMs());
        assertEquals(model.detokenize(c.getTokens()), c.getText());
    }

    @Test
    void generatingFromTokensEqualsGeneratingFromText() {
        String prompt = "The quick brown fox";
        Completion fromText = session.generate(prompt, TestModels.greedy(16));
        Completion fromTokens = session.generate(model.tokenize(prompt), TestModels.greedy(16));
        assertArrayEquals(fromText.getTokens(), fromTokens.getTokens());
    }

    @Test
    void stopStringsEndGenerationAndAreNotReturned() {
        String prompt = "Count: one, two, three, four,";
        Completion free = session.generate(prompt, TestModels.greedy(24));
        // Stop on a piece of text that the free run actually produces.
        assertTrue(free.getText().length() > 6, free.getText());
        String stop = free.getText().substring(3, 6);
        Completion stopped = session.generate(prompt, TestModels.greedy(24).toBuilder().stop(stop).build());
        assertEquals(FinishReason.STOP, stopped.getFinishReason());
        assertEquals(free.getText().substring(0, free.getText().indexOf(stop)), stopped.getText());
    }

    @Test
    void chatUsesTheModelTemplate() {
        List<ChatMessage> messages = Arrays.asList(ChatMessage.system("You are terse."), ChatMessage.user("Say hi."));
        String rendered = session.renderChat(messages);
        assertTrue(rendered.contains("<|im_start|>user"), rendered);
        assertTrue(rendered.endsWith("<|im_start|>assistant\n"), rendered);
        Completion viaChat = session.chat(messages, TestModels.greedy(16));
        Completion viaPrompt = session.generate(rendered, TestModels.greedy(16));
        assertArrayEquals(viaPrompt.getTokens(), viaChat.getTokens());
        StringBuilder streamed = new StringBuilder();
        session.chatStreaming(messages, TestModels.greedy(16), streamed::append);
        assertEquals(viaChat.getText(), streamed.toString());
        try (TokenStream s = session.chatStream(messages, TestModels.greedy(16))) {
            assertEquals(viaChat.getText(), s.stream().collect(Collectors.joining()));
        }
    }

    @Test
    void builtinChatTemplateByName() {
        assertTrue(Llmedge.builtinChatTemplates().contains("chatml"));
        try (Session s = model.newSession(SessionOptions.builder().contextSize(256).chatTemplate("llama3").build())) {
            String rendered = s.renderChat(Arrays.asList(ChatMessage.user("hi")));
            assertTrue(rendered.contains("<|start_header_id|>user<|end_header_id|>"), rendered);
        }
    }

    @Test
    void modelInfoTokenizeDetokenizeEmbed() {
        ModelInfo info = model.info();
        assertEquals("llama", info.getArchitecture());
        assertEquals(49152, info.getVocabularySize());
        assertEquals("Q4_1", info.getQuantization());
        assertTrue(info.getParameterCount() > 100_000_000L);
        assertNotNull(info.getChatTemplate());
        assertEquals(TestModels.path(), info.getPath());

        String text = "Hello, wörld! 你好 🙂";
        int[] tokens = model.tokenize(text, false, false);
        assertTrue(tokens.length > 3);
        assertEquals(text, model.detokenize(tokens));
        String special = "<|im_start|>user";
        assertEquals(1 + model.tokenize("user", false, false).length, model.tokenize(special, false, true).length);
        assertEquals(special, model.detokenize(model.tokenize(special, false, true), true));

        float[] a = model.embed("The cat sat on the mat.");
        float[] b = model.embed("A cat was sitting on the mat.");
        float[] c = model.embed("Quarterly revenue grew by 4 percent.");
        assertEquals(info.getEmbeddingSize(), a.length);
        assertEquals(1.0, dot(a, a), 1e-3);
        assertTrue(dot(a, b) > dot(a, c), "similar sentences should be closer");
    }

    @Test
    void sha256MatchesTheComputedOne() throws Exception {
        String sha = model.sha256();
        assertEquals(64, sha.length());
        try (Model hashed = Model.load(TestModels.path(), ModelOptions.builder().computeSha256(true).build())) {
            assertEquals(sha, hashed.info().getSha256());
        }
        assertNull(model.info().getSha256());
    }

    @Test
    void javaDefaultsEqualTheCoreDefaults() {
        double[] core = NativeBridge.generateDefaults();
        GenerateOptions d = GenerateOptions.defaults();
        double[] java = {d.getMaxTokens(), d.getTemperature(), d.getTopK(), d.getTopP(), d.getMinP(),
                d.getRepeatPenalty(), d.getFrequencyPenalty(), d.getPresencePenalty(), d.getPenaltyLastN()};
        assertArrayEquals(core, java, 1e-6);
    }

    @Test
    void seededSamplingIsReproducible() {
        GenerateOptions o = GenerateOptions.builder().temperature(1.0f).seed(42).maxTokens(16).build();
        Completion a = session.generate("Tell me a story:", o);
        Completion b = session.generate("Tell me a story:", o);
        assertArrayEquals(a.getTokens(), b.getTokens());
    }

    private static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (double) a[i] * b[i];
        }
        return s;
    }
}
