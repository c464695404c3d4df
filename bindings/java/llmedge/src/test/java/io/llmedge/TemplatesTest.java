package io.llmedge;

import static org.junit.jupiter.api.Assertions.*;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/** Prompt templates, the template library and structured output on the real default model. */
class TemplatesTest {
    static Model model;
    static Session session;

    @BeforeAll
    static void load() {
        model = TestModels.load();
        session = model.newSession(SessionOptions.builder().contextSize(2048).build());
    }

    @AfterAll
    static void close() {
        session.close();
        model.close();
    }

    private static LlmedgeException assertCode(ErrorCode code, Executable call) {
        LlmedgeException e = assertThrows(LlmedgeException.class, call);
        assertEquals(code, e.getErrorCode(), e.toString());
        return e;
    }

    private static Map<String, Object> vars(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    private static GenerateOptions sampled(long seed, int maxTokens) {
        return GenerateOptions.builder().temperature(1.0f).topK(0).topP(1.0f).minP(0f).seed(seed).maxTokens(maxTokens)
                .build();
    }

    @Test
    void renderFillsVariablesAndDefaults() {
        try (PromptTemplate t = PromptTemplate.builder("t", "As a {role}, answer: {query} {{literal}}")
                .defaultValue("role", "doctor").build()) {
            assertEquals("t", t.name());
            assertEquals(TemplateFormat.FSTRING, t.format());
            assertEquals(Arrays.asList("role", "query"), t.variables());
            assertEquals(Collections.singletonList("query"), t.requiredVariables());
            assertEquals("As a doctor, answer: why? {literal}", t.render(vars("query", "why?")));
            // Non-string values are inserted as compact JSON; strings are escaped on the way.
            assertEquals("As a nurse, answer: 3 {literal}", t.render(vars("query", 3, "role", "nurse")));
            assertEquals("As a \"a\\b\"\n, answer: [1,true,null] {literal}",
                    t.render(vars("role", "\"a\\b\"\n", "query", Arrays.asList(1, true, null))));
            assertEquals("{\"role\":\"doctor\"}", t.defaultsJson());
        }
        PromptTemplate zh = new PromptTemplate("zh", "作为{角色}，请回答：{query}");
        assertEquals(Arrays.asList("角色", "query"), zh.variables());
        assertEquals("作为医生，请回答：发烧怎么办", zh.render(vars("角色", "医生", "query", "发烧怎么办")));
    }

    @Test
    void missingAndExtraVariablesAreListedTogether() {
        PromptTemplate t = new PromptTemplate("t", "{a} {b} {c}");
        Map<String, Object> bad = vars("b", "x", "y", 1, "z", 2);
        for (Executable call : Arrays.<Executable>asList(() -> t.render(bad), () -> t.messages(bad),
                () -> session.runTemplate(t, bad, TestModels.greedy(2)))) {
            LlmedgeException e = assertCode(ErrorCode.TEMPLATE_VARIABLES, call);
            assertEquals(32, e.getCode());
            assertTrue(e.getMessage().contains("missing variables: a, c"), e.getMessage());
            assertTrue(e.getMessage().contains("unknown variables: y, z"), e.getMessage());
        }
        assertCode(ErrorCode.TEMPLATE_VARIABLES, () -> t.render(Collections.emptyMap()));
        assertCode(ErrorCode.NULL_ARGUMENT, () -> t.render(null));
        assertCode(ErrorCode.INVALID_ARGUMENT, () -> t.render(vars("a", new Object(), "b", 1, "c", 2)));
        assertCode(ErrorCode.INVALID_ARGUMENT, () -> t.render(vars("a", Double.NaN, "b", 1, "c", 2)));
    }

    @Test
    void syntaxErrorsAndTomlTemplates() {
        LlmedgeException e = assertCode(ErrorCode.TEMPLATE, () -> new PromptTemplate("t", "line one\nbad { here"));
        assertTrue(e.getMessage().contains("line 2"), e.getMessage());
        assertCode(ErrorCode.TEMPLATE, () -> new PromptTemplate("t", "a\n{% if x %}", TemplateFormat.JINJA));
        assertCode(ErrorCode.TEMPLATE, () -> PromptTemplate.builder("t", "{x}").outputSchema("{nope").build());

        PromptTemplate jinja = PromptTemplate.builder("j", "{% for item in items %}- {{ item }}\n{% endfor %}Q: {{ query }}")
                .format(TemplateFormat.JINJA).system("You are {{ who }}.").build();
        assertEquals(Arrays.asList("who", "items", "query"), jinja.variables());
        List<ChatMessage> messages = jinja.messages(vars("who", "terse", "items", new String[] {"a", "b"}, "query", "q"));
        assertEquals(Arrays.asList(ChatMessage.system("You are terse."), ChatMessage.user("- a\n- b\nQ: q")), messages);

        PromptTemplate toml = PromptTemplate.fromToml("name = \"cot\"\ndescription = \"d\"\n"
                + "template = \"Q: {question}\"\nanswer_prefixes = [\"Answer:\", \"答案：\"]\n");
        assertEquals("cot", toml.name());
        assertEquals("d", toml.description());
        assertEquals(Arrays.asList("Answer:", "答案："), toml.answerPrefixes());
        assertEquals("4", toml.extractAnswer("Step 1: 2+2=4.\nAnswer: 4"));
        assertEquals("42", toml.extractAnswer("第一步……\n答案：42"));
        assertNull(toml.extractAnswer("no final line"));
        e = assertCode(ErrorCode.TEMPLATE, () -> PromptTemplate.fromToml("name = \"x\"\ntemplate = \"unterminated\n"));
        assertTrue(e.getMessage().contains(":2:"), e.getMessage());
    }

    @Test
    void builtinLibraryAndFolders(@TempDir Path dir) throws IOException {
        List<String> expected = Arrays.asList("cot_en", "cot_zh", "extract_fields_en", "extract_fields_zh", "few_shot_en",
                "few_shot_zh", "insurance_claim_review_en", "insurance_claim_review_zh", "role_en", "role_zh");
        try (TemplateLibrary lib = TemplateLibrary.builtin()) {
            assertEquals(expected, lib.names());
            for (String name : expected) {
                PromptTemplate t = lib.get(name);
                assertEquals(name, t.name());
                assertFalse(t.description().isEmpty(), name);
                Map<String, Object> filled = new HashMap<>();
                for (String v : t.requiredVariables()) {
                    filled.put(v, "x");
                }
                List<ChatMessage> msgs = t.messages(filled);
                assertEquals("user", msgs.get(msgs.size() - 1).getRole());
            }
            assertEquals("作为医生，请回答：发烧怎么办", lib.get("role_zh").render(vars("role", "医生", "query", "发烧怎么办")));
            assertNotNull(lib.get("insurance_claim_review_en").outputSchemaJson());
            LlmedgeException e = assertCode(ErrorCode.TEMPLATE, () -> lib.get("nope"));
            assertTrue(e.getMessage().contains("role_en"), e.getMessage());
            lib.add(new PromptTemplate("mine", "{x}"));
            assertTrue(lib.names().contains("mine"));
        }

        Files.write(dir.resolve("a.toml"), "name = \"greet\"\ndescription = \"d\"\ntemplate = \"Hi {who}\"\n"
                .getBytes(StandardCharsets.UTF_8));
        TemplateLibrary lib = TemplateLibrary.loadDir(dir);
        assertEquals(Collections.singletonList("greet"), lib.names());
        assertEquals("Hi you", lib.get("greet").render(vars("who", "you")));
        Files.write(dir.resolve("b.toml"), "name = \"x\"\ntemplate = \"unterminated\n".getBytes(StandardCharsets.UTF_8));
        LlmedgeException e = assertCode(ErrorCode.TEMPLATE, () -> TemplateLibrary.loadDir(dir));
        assertTrue(e.getMessage().contains("b.toml:2:"), e.getMessage());
        // A failing folder leaves the library as it was.
        assertCode(ErrorCode.TEMPLATE, () -> lib.addDir(dir));
        assertEquals(Collections.singletonList("greet"), lib.names());
        assertCode(ErrorCode.IO, () -> TemplateLibrary.loadDir(dir.resolve("missing")));
    }

    @Test
    void insuranceReviewGivesASchemaVerdictOnEverySeed() {
        List<String> allowed = Arrays.asList("approve", "reject", "manual_review");
        String claim = "{\"claim_id\":\"CLM-2024-0117\",\"diagnosis\":\"acute appendicitis, laparoscopic appendectomy\","
                + "\"policy_coverage\":[\"appendicitis\",\"fractures\",\"pneumonia\"],"
                + "\"hospital_level\":\"tertiary (grade 3A)\",\"policy_min_hospital_level\":\"secondary\"}";
        PromptTemplate template = TemplateLibrary.builtin().get("insurance_claim_review_en");
        for (long seed = 1; seed <= 3; seed++) {
            GenerateOptions opts = GenerateOptions.builder().temperature(0.7f).seed(seed).maxTokens(400).build();
            TemplateOutput out = session.runTemplate(template, vars("claim", claim), opts);
            assertEquals("insurance_claim_review_en", out.template());
            assertEquals("system", out.messages().get(0).getRole());
            assertNotNull(out.json(), "schema templates return JSON");
            JsonObject value = JsonParser.parseString(out.json()).getAsJsonObject();
            String verdict = value.get("verdict").getAsString();
            assertTrue(allowed.contains(verdict), "seed " + seed + ": verdict " + verdict);
            assertTrue(value.has("coverage_check") && value.has("hospital_level_check"), out.json());
            assertEquals(value, JsonParser.parseString(out.text().trim()));
            assertFalse(out.completion().requestId().isEmpty());
        }
    }

    @Test
    void choiceAndRegexConstraintsHold() {
        List<String> choices = Arrays.asList("urgent", "routine", "administrative");
        for (long seed = 0; seed < 5; seed++) {
            Completion c = session.generate("Triage this: chest pain since an hour. Triage:",
                    sampled(seed, 16).toBuilder().choices(choices).build());
            assertTrue(choices.contains(c.getText()), c.getText());
            Completion r = session.generate("Ticket number:", sampled(seed, 16).toBuilder().regex("[A-Z]{3}-[0-9]{4}").build());
            assertTrue(r.getText().matches("[A-Z]{3}-[0-9]{4}"), r.getText());
        }
        Completion g = session.generate("Answer yes or no:", TestModels.greedy(8).toBuilder()
                .grammar("root ::= \"yes\" | \"no\"\n").build());
        assertTrue(g.getText().equals("yes") || g.getText().equals("no"), g.getText());
        GenerateOptions o = GenerateOptions.builder().choices("a", "b").build();
        assertEquals(Arrays.asList("a", "b"), o.getChoices());
        assertNull(o.getJsonSchema());
        assertNull(o.toBuilder().noConstraint().build().getChoices());
    }

    @Test
    void jsonGenerationValidatesAndBadSchemasAreGrammarErrors() {
        String schema = "{\"type\":\"object\",\"properties\":{\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":120},"
                + "\"triage\":{\"enum\":[\"urgent\",\"routine\"]}},\"required\":[\"age\",\"triage\"],\"additionalProperties\":false}";
        for (long seed = 0; seed < 3; seed++) {
            JsonCompletion out = session.generateJson("Patient: 67-year-old, chest pain.\nJSON: ", schema, sampled(seed, 80));
            JsonObject value = JsonParser.parseString(out.json()).getAsJsonObject();
            int age = value.get("age").getAsInt();
            assertTrue(age >= 0 && age <= 120, out.json());
            String triage = value.get("triage").getAsString();
            assertTrue(triage.equals("urgent") || triage.equals("routine"), out.json());
            assertEquals(2, value.size(), out.json());
        }
        JsonCompletion chat = session.chatJson(Collections.singletonList(ChatMessage.user("A 30 year old with a cold, as JSON.")),
                schema, TestModels.greedy(80));
        JsonElement parsed = JsonParser.parseString(chat.json());
        assertTrue(parsed.isJsonObject(), chat.json());

        assertEquals(33, assertCode(ErrorCode.GRAMMAR, () -> session.generateJson("x", "{not json", TestModels.greedy(8))).getCode());
        assertCode(ErrorCode.GRAMMAR, () -> session.generateJson("x", "3", TestModels.greedy(8)));
        assertCode(ErrorCode.GRAMMAR, () -> session.generate("x", TestModels.greedy(8).toBuilder().jsonSchema("[1,2").build()));
        assertCode(ErrorCode.GRAMMAR, () -> session.generate("x", TestModels.greedy(8).toBuilder().regex("a\\bb").build()));
        assertCode(ErrorCode.GRAMMAR, () -> session.generate("x", TestModels.greedy(8).toBuilder().grammar("root ::= (").build()));
        assertCode(ErrorCode.GRAMMAR, () -> session.generate("x", TestModels.greedy(8).toBuilder().choices().build()));
        // Too few tokens for the JSON: structured output error.
        assertCode(ErrorCode.STRUCTURED_OUTPUT, () -> session.generateJson("Patient JSON: ", schema, TestModels.greedy(2)));
        assertCode(ErrorCode.NULL_ARGUMENT, () -> session.generateJson("x", null, TestModels.greedy(8)));
        // The session still works.
        assertFalse(session.generate("The capital of France is", TestModels.greedy(4)).getText().isEmpty());
    }

    @Test
    void dynamicFlowFillsTheVariablesThenAnswers() {
        PromptTemplate role = TemplateLibrary.builtin().get("role_en");
        DynamicFlowOutput out = session.runDynamic(role, "I am a nurse: how should I store insulin?", TestModels.greedy(24));
        JsonObject variables = JsonParser.parseString(out.variablesJson()).getAsJsonObject();
        assertEquals(role.requiredVariables().size(), variables.size(), out.variablesJson());
        for (String v : role.requiredVariables()) {
            assertTrue(variables.has(v), out.variablesJson());
        }
        assertEquals(variables, JsonParser.parseString(out.fill().getText().trim()));
        assertFalse(out.fillPrompt().isEmpty());
        assertEquals("role_en", out.answer().template());
        assertEquals(role.render(strings(variables)), out.answer().messages().get(out.answer().messages().size() - 1).getContent());
    }

    /** A JSON object of strings as a Map. */
    private static Map<String, Object> strings(JsonObject o) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (String k : o.keySet()) {
            m.put(k, o.get(k).getAsString());
        }
        return m;
    }
}
