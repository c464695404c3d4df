package io.llmedge;

import static org.junit.jupiter.api.Assertions.*;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The router's rules in order, the classifier stage on the real model, and the mistakes. */
class RouterTest {
    static final String ROUTES = "[[routes]]\nname = \"finance\"\nmodel = \"base\"\nkeywords = [\"invoice\"]\n"
            + "tenants = [\"bank-1\"]\nadapters = [{ name = \"fin\", scale = 0.5 }]\n"
            + "[[routes]]\nname = \"medical\"\nmodel = \"med\"\nregex = \"ICD-?10\"\nmodels = [\"medical-v2\"]\n"
            + "[[routes]]\nname = \"general\"\nmodel = \"base\"\ndefault = true\n";

    static Model model;

    @BeforeAll
    static void load() {
        model = TestModels.load();
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @Test
    void rulesApplyInOrder() {
        try (Router r = Router.fromToml(ROUTES)) {
            assertEquals("{\"route\":\"medical\",\"model\":\"med\",\"adapters\":[],\"rule\":\"model\",\"matched\":\"medical-v2\"}",
                    r.route("invoice", "medical-v2", "bank-1", null));
            assertEquals("{\"route\":\"finance\",\"model\":\"base\",\"adapters\":[{\"name\":\"fin\",\"scale\":0.5}],"
                    + "\"rule\":\"tenant\",\"matched\":\"bank-1\"}", r.route("hello", null, "bank-1", null));
            assertEquals("INVOICE", JsonParser.parseString(r.route("an INVOICE")).getAsJsonObject().get("matched").getAsString());
            assertEquals("regex", JsonParser.parseString(r.route("code ICD10")).getAsJsonObject().get("rule").getAsString());
            assertEquals("{\"route\":\"general\",\"model\":\"base\",\"adapters\":[],\"rule\":\"default\"}", r.route("hello"));
        }
    }

    @Test
    void classifierStageRunsOnTheModel() {
        String toml = "[[routes]]\nname = \"finance\"\nmodel = \"base\"\n[[routes]]\nname = \"medical\"\nmodel = \"base\"\n"
                + "[router.classifier]\nmodel = \"base\"\n";
        String question = "What dose of ibuprofen is safe for a child with a fever?";
        try (Router r = Router.fromToml(toml); RouteClassifier c = new RouteClassifier(model)) {
            LlmedgeException e = assertThrows(LlmedgeException.class, () -> r.route(question));
            assertEquals(ErrorCode.INVALID_ARGUMENT, e.getErrorCode());
            JsonObject d = JsonParser.parseString(r.route(question, null, null, c)).getAsJsonObject();
            assertEquals("classifier", d.get("rule").getAsString());
            assertEquals(d.get("matched").getAsString(), d.get("route").getAsString());
            assertTrue(d.get("route").getAsString().equals("finance") || d.get("route").getAsString().equals("medical"));
        }
    }

    @Test
    void mistakesGiveTypedErrors(@TempDir Path dir) throws Exception {
        LlmedgeException e = assertThrows(LlmedgeException.class,
                () -> Router.fromToml("[[routes]]\nname = \"a\"\nmodel = \"m\"\ncolour = 1\n"));
        assertEquals(ErrorCode.CONFIG, e.getErrorCode());
        assertTrue(e.getMessage().contains("<router>:4"), e.getMessage());
        assertEquals(ErrorCode.IO, assertThrows(LlmedgeException.class,
                () -> Router.fromFile(dir.resolve("missing.toml").toString())).getErrorCode());
        Path file = dir.resolve("routes.toml");
        Files.writeString(file, ROUTES);
        Router r = Router.fromFile(file.toString());
        assertEquals("general", JsonParser.parseString(r.route("hi")).getAsJsonObject().get("route").getAsString());
        assertThrows(LlmedgeException.class, () -> r.route(null));
        r.close();
        assertEquals(ErrorCode.CLOSED, assertThrows(LlmedgeException.class, () -> r.route("hi")).getErrorCode());
        assertThrows(LlmedgeException.class, () -> new RouteClassifier(null));
    }
}
