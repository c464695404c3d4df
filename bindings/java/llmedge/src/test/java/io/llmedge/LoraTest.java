package io.llmedge;

import static org.junit.jupiter.api.Assertions.*;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** LoRA adapters and the model tools against the Rust CLI and the fixtures of `make fixtures`. */
class LoraTest {
    static final String PROMPT = "The capital of France is";
    static final int N = 16;
    static Path fixtures;
    static Model model;
    static LoraAdapter loraA;
    static String baseText;

    @BeforeAll
    static void load() {
        // Maven runs in bindings/java/llmedge.
        fixtures = Paths.get("").toAbsolutePath().getParent().getParent().getParent()
                .resolve("models/cache/fixtures/lora");
        Assumptions.assumeTrue(Files.isRegularFile(fixtures.resolve("lora_smollm2_a.gguf")),
                "LoRA fixtures missing: run `make fixtures`");
        model = TestModels.load();
        loraA = model.loadLora(fixtures.resolve("lora_smollm2_a.gguf"));
        try (Session s = bareSession()) {
            baseText = s.generate(PROMPT, TestModels.greedy(N)).getText();
        }
    }

    @AfterAll
    static void close() {
        if (model != null) {
            loraA.close();
            model.close();
        }
    }

    static Session bareSession() {
        return model.newSession(SessionOptions.builder().contextSize(512).safetyEnabled(false).build());
    }

    static String cliText(String lora) throws Exception {
        Process p = new ProcessBuilder(TestModels.cli().toString(), "run", "--raw", "--greedy", "-n", String.valueOf(N),
                "--no-safety", "--json", "-m", TestModels.path(), "-t", "1", "--lora", lora, PROMPT)
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (InputStream in = p.getInputStream()) {
            in.transferTo(out);
        }
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "CLI timed out");
        String json = out.toString(StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), "CLI failed: " + json);
        JsonObject o = JsonParser.parseString(json.trim()).getAsJsonObject();
        return o.get("text").getAsString();
    }

    @Test
    void adapterChangesOutputAndMatchesTheCli() throws Exception {
        String expected = cliText(fixtures.resolve("lora_smollm2_a.gguf").toString());
        try (Session s = bareSession()) {
            String tuned = s.generate(PROMPT, TestModels.greedy(N).toBuilder().addLora(loraA, 1.0f).build()).getText();
            assertNotEquals(baseText, tuned);
            assertEquals(expected, tuned);
        }
        assertTrue(loraA.infoJson().contains("\"rank\":"));
        assertEquals("lora_smollm2_a", loraA.getName());
        assertTrue(loraA.getPath().endsWith("lora_smollm2_a.gguf"));
        try (LoraAdapter again = model.loadLora(loraA.getPath())) {
            assertTrue(again.sameAs(loraA));
        }
    }

    @Test
    void noLoraRestoresTheBaseModel() {
        SessionOptions withLora = SessionOptions.builder().contextSize(512).safetyEnabled(false).addLora(loraA, 1.0f)
                .build();
        try (Session s = model.newSession(withLora)) {
            String tuned = s.generate(PROMPT, TestModels.greedy(N)).getText();
            assertNotEquals(baseText, tuned);
            assertEquals(baseText, s.generate(PROMPT, TestModels.greedy(N).toBuilder().noLora().build()).getText());
            assertEquals(tuned, s.generate(PROMPT, TestModels.greedy(N)).getText());
        }
    }

    @Test
    void wrongArchitectureThrowsAdapterError() {
        LlmedgeException e = assertThrows(LlmedgeException.class,
                () -> model.loadLora(fixtures.resolve("lora_gemma3_arch.gguf")));
        assertEquals(ErrorCode.ADAPTER, e.getErrorCode());
        assertEquals(15, e.getErrorCode().code());
        assertTrue(e.getMessage().contains("architecture"), e.getMessage());
        assertEquals(ErrorCode.ADAPTER,
                assertThrows(LlmedgeException.class, () -> model.loadLora(fixtures.resolve("lora_bad_shape.gguf")))
                        .getErrorCode());
    }

    @Test
    void mergeThenLoadEqualsTheRuntimeAdapter(@TempDir Path tmp) {
        String merged = tmp.resolve("merged.gguf").toString();
        Map<String, Float> adapters = new LinkedHashMap<>();
        adapters.put(fixtures.resolve("lora_smollm2_a.gguf").toString(), 1.0f);
        String report = Tools.loraMerge(TestModels.path(), adapters, merged, "f16");
        assertTrue(report.contains("\"merged_tensors\":"), report);
        String runtime;
        try (Session s = bareSession()) {
            runtime = s.generate(PROMPT, TestModels.greedy(N).toBuilder().addLora(loraA, 1.0f).build()).getText();
        }
        try (Model m = Model.load(merged, ModelOptions.builder().threads(1).build());
                Session s = m.newSession(SessionOptions.builder().contextSize(512).safetyEnabled(false).build())) {
            assertEquals(runtime, s.generate(PROMPT, TestModels.greedy(N)).getText());
        }
    }

    @Test
    void quantizeNeedsAllowRequantize(@TempDir Path tmp) {
        String out = tmp.resolve("f16.gguf").toString();
        LlmedgeException e = assertThrows(LlmedgeException.class,
                () -> Tools.quantize(TestModels.path(), out, "F16", false));
        assertEquals(ErrorCode.INVALID_ARGUMENT, e.getErrorCode());
        String report = Tools.quantize(TestModels.path(), out, "F16", true);
        assertTrue(report.contains("\"file_type\":"), report);
        try (Model m = Model.load(out)) {
            assertTrue(m.info().getQuantization().toUpperCase().startsWith("F16"), m.info().getQuantization());
        }
    }

    @Test
    void importAndPerplexity(@TempDir Path tmp) {
        String out = tmp.resolve("imported.gguf").toString();
        String report = Tools.loraImport(fixtures.resolve("peft_smollm2_r8").toString(), TestModels.path(), out, false);
        assertTrue(report.contains("\"rank\":8"), report);
        LlmedgeException dora = assertThrows(LlmedgeException.class, () -> Tools.loraImport(
                fixtures.resolve("peft_dora").toString(), TestModels.path(), tmp.resolve("d.gguf").toString(), false));
        assertEquals(ErrorCode.ADAPTER, dora.getErrorCode());
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < 40; i++) {
            text.append("The quick brown fox jumps over the lazy dog number ").append(i).append(". ");
        }
        double base = model.perplexity(text.toString(), 64);
        assertTrue(Double.isFinite(base) && base > 1, String.valueOf(base));
        String tuned = model.perplexityJson(text.toString(), 64, 1,
                GenerateOptions.builder().addLora(loraA, 1.0f).build());
        assertTrue(tuned.contains("\"perplexity\":"), tuned);
    }
}
