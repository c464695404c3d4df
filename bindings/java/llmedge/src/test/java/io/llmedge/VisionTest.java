package io.llmedge;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Vision through the JVM on the tiny random VLM of `make fixtures`: greedy tokens against the
 * mtmd reference loop (examples/vlm_reference, no llmedge code) fed the same pixels, images on
 * chat messages, embedding reuse, and the typed errors.
 */
class VisionTest {
    static final String PROMPT =
            "<|im_start|>user\n<__media__>Describe the image.<|im_end|>\n<|im_start|>assistant\n";
    static Path vlm;
    static Model model;

    @BeforeAll
    static void load() {
        vlm = Paths.get("").toAbsolutePath().getParent().getParent().getParent().resolve("models/cache/fixtures/vlm");
        model = Model.load(vlm.resolve("tiny-vlm.gguf").toString(), ModelOptions.builder().threads(1).build());
        model.loadMmproj(vlm.resolve("tiny-vlm-mmproj.gguf").toString());
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static Session session() {
        return model.newSession(SessionOptions.builder().contextSize(1024).safetyEnabled(false).build());
    }

    /** The reference loop's greedy tokens for PROMPT and the fixture's raw pixels of `name`. */
    static int[] reference(String name, int w, int h, int n) throws IOException, InterruptedException {
        Path exe = TestModels.cli().getParent().resolve("examples/vlm_reference");
        Process p = new ProcessBuilder(exe.toString(), vlm.resolve("tiny-vlm.gguf").toString(),
                vlm.resolve("tiny-vlm-mmproj.gguf").toString(), Integer.toString(n), PROMPT,
                w + "x" + h + ":" + vlm.resolve(name + ".rgb")).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertEquals(0, p.waitFor(), out);
        String list = out.substring(out.indexOf('[') + 1, out.lastIndexOf(']')).trim();
        if (list.isEmpty()) {
            return new int[0];
        }
        String[] parts = list.split(",\\s*");
        int[] tokens = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            tokens[i] = Integer.parseInt(parts[i]);
        }
        return tokens;
    }

    @Test
    void tokensEqualTheMtmdReference() throws Exception {
        try (Session s = session(); Image png = Image.open(vlm.resolve("pattern.png").toString());
                Image ct = Image.open(vlm.resolve("ct_mono2.dcm").toString())) {
            assertEquals(48, png.getWidth());
            assertEquals(40, png.getHeight());
            Completion c = s.generateWithImages(PROMPT, List.of(png), TestModels.greedy(16));
            assertArrayEquals(reference("pattern", 48, 40, 16), c.getTokens());
            Completion d = s.generateWithImages(PROMPT, List.of(ct), TestModels.greedy(16));
            assertArrayEquals(reference("ct_mono2", 40, 40, 16), d.getTokens());
        }
    }

    @Test
    void imagesOnMessagesAreEncodedOnce() throws Exception {
        byte[] bytes = Files.readAllBytes(vlm.resolve("pattern.png"));
        try (Session s = session(); Image a = Image.open(vlm.resolve("pattern.bmp"));
                Image b = Image.fromBytes(bytes, null)) {
            assertEquals(a.getSha256(), b.getSha256());
            String before = model.visionStatsJson();
            Completion first = s.chat(List.of(ChatMessage.user("Describe the image.", a)), TestModels.greedy(12));
            Completion second = s.chat(List.of(ChatMessage.user("Describe the image.", b)), TestModels.greedy(12));
            assertArrayEquals(first.getTokens(), second.getTokens());
            String after = model.visionStatsJson();
            assertTrue(hits(after) >= hits(before) + 1, after);
            Image window = Image.open(vlm.resolve("ct_mono2.dcm").toString(),
                    ImageOptions.builder().dicomWindow(40, 400).build());
            assertNotEquals(window.getSha256(), Image.open(vlm.resolve("ct_mono2.dcm").toString()).getSha256());
        }
    }

    static long hits(String json) {
        int at = json.indexOf("\"cache_hits\":") + "\"cache_hits\":".length();
        int end = at;
        while (Character.isDigit(json.charAt(end))) {
            end++;
        }
        return Long.parseLong(json.substring(at, end));
    }

    @Test
    void badInputsThrowTheirCodes() {
        LlmedgeException e = assertThrows(LlmedgeException.class, () -> Image.open(vlm.resolve("corrupt.png").toString()));
        assertEquals(ErrorCode.IMAGE, e.getErrorCode());
        e = assertThrows(LlmedgeException.class, () -> Image.open(vlm.resolve("jpeg2000.dcm").toString()));
        assertEquals(ErrorCode.DICOM, e.getErrorCode());
        e = assertThrows(LlmedgeException.class, () -> Image.open(vlm.resolve("multiframe.dcm").toString(),
                ImageOptions.builder().dicomFrame(9).build()));
        assertEquals(ErrorCode.DICOM, e.getErrorCode());
        try (Session s = session()) {
            e = assertThrows(LlmedgeException.class,
                    () -> s.generateWithImages(PROMPT, Collections.emptyList(), TestModels.greedy(4)));
            assertEquals(ErrorCode.INVALID_ARGUMENT, e.getErrorCode());
        }
        try (Model plain = Model.load(vlm.resolve("tiny-vlm.gguf").toString(), ModelOptions.builder().threads(1).build())) {
            assertNull(plain.visionStatsJson());
            e = assertThrows(LlmedgeException.class, () -> plain.loadMmproj(vlm.resolve("mmproj-576.gguf").toString()));
            assertEquals(ErrorCode.PROJECTOR, e.getErrorCode());
            try (Session s = plain.newSession(SessionOptions.builder().contextSize(512).build());
                    Image png = Image.open(vlm.resolve("pattern.png").toString())) {
                e = assertThrows(LlmedgeException.class, () -> s.generateWithImages(PROMPT, List.of(png), TestModels.greedy(4)));
                assertEquals(ErrorCode.PROJECTOR, e.getErrorCode());
            }
        }
    }
}
