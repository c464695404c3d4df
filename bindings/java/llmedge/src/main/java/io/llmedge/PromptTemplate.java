package io.llmedge;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A named prompt with variables, an optional system (role) prompt, few-shot examples and an
 * output JSON schema: the core's {@code llmedge::PromptTemplate}. Immutable and thread-safe.
 *
 * <pre>{@code
 * PromptTemplate t = new PromptTemplate("role", "As a {role}, answer: {query}");
 * String prompt = t.render(Map.of("role", "nurse", "query", "why?"));
 * TemplateOutput out = session.runTemplate(TemplateLibrary.builtin().get("cot_en"), Map.of("question", "2+2?"), opts);
 * }</pre>
 *
 * <p>Variable values cross to the native library as JSON: pass {@code String}, {@code Number},
 * {@code Boolean}, {@code null}, or {@code Map}/{@code List}/arrays of those (for Jinja loops).
 * F-string templates insert strings as they are and other values as compact JSON. A request
 * with missing or unknown variables throws code 32, the message listing both.
 *
 * <p>Holds native memory: {@link #close()} frees it early, otherwise it is freed once the
 * object is garbage collected.
 */
public final class PromptTemplate extends NativeResource {
    private static final int NAME = 0;
    private static final int DESCRIPTION = 1;
    private static final int FORMAT = 2;
    private static final int SYSTEM = 3;
    private static final int TEMPLATE = 4;
    private static final int OUTPUT_SCHEMA = 5;
    private static final int DEFAULTS = 6;
    private static final int JSON = 7;

    PromptTemplate(long handle) {
        super("prompt template", handle, NativeBridge::templateFree);
    }

    /** An f-string template ({@code {variable}}); throws code 30 on unbalanced braces. */
    public PromptTemplate(String name, String template) {
        this(name, template, TemplateFormat.FSTRING);
    }

    /** A template in the given syntax; throws code 30 on a syntax error (with its line). */
    public PromptTemplate(String name, String template, TemplateFormat format) {
        this(builder(name, template).format(format).handle());
    }

    /** A builder for a template with a system prompt, defaults, an output schema or answer prefixes. */
    public static Builder builder(String name, String template) {
        return new Builder(name, template);
    }

    /**
     * One template from TOML ({@code name}, {@code template}, and optionally {@code description},
     * {@code format}, {@code system}, {@code defaults}, {@code examples}, {@code output_schema},
     * {@code answer_prefixes}). Errors (code 30) give the line.
     */
    public static PromptTemplate fromToml(String text) {
        return new PromptTemplate(NativeBridge.templateFromToml(text));
    }

    /** The template's name. */
    public String name() {
        return field(NAME);
    }

    /** The description (empty when none). */
    public String description() {
        return field(DESCRIPTION);
    }

    public TemplateFormat format() {
        return "jinja".equals(field(FORMAT)) ? TemplateFormat.JINJA : TemplateFormat.FSTRING;
    }

    /** The system (role) prompt, or null. */
    public String system() {
        return field(SYSTEM);
    }

    /** The template text. */
    public String template() {
        return field(TEMPLATE);
    }

    /** The output JSON schema as JSON text, or null; generation is constrained to it in {@link Session#runTemplate}. */
    public String outputSchemaJson() {
        return field(OUTPUT_SCHEMA);
    }

    /** The default values of variables, as a JSON object. */
    public String defaultsJson() {
        return field(DEFAULTS);
    }

    /** The whole template (examples included) as JSON. */
    public String toJson() {
        return field(JSON);
    }

    /** Line prefixes that introduce a chain-of-thought's final answer ({@code Answer:}); empty when none. */
    public List<String> answerPrefixes() {
        long h = acquire();
        try {
            return list(NativeBridge.templateAnswerPrefixes(h));
        } finally {
            release();
        }
    }

    /** Every variable the system prompt and template use, in order of first use. */
    public List<String> variables() {
        return variables(false);
    }

    /** The variables a request must give (those without a default). */
    public List<String> requiredVariables() {
        return variables(true);
    }

    /** The user prompt for these variables (defaults filled in). Code 32 for missing or unknown variables. */
    public String render(Map<String, ?> variables) {
        String json = Json.object(LlmedgeException.requireNonNull(variables, "variables"));
        long h = acquire();
        try {
            return NativeBridge.templateRender(h, json);
        } finally {
            release();
        }
    }

    /** The conversation to send: system prompt, each few-shot example as a user/assistant pair, the request. */
    public List<ChatMessage> messages(Map<String, ?> variables) {
        String json = Json.object(LlmedgeException.requireNonNull(variables, "variables"));
        long h = acquire();
        try {
            return list(NativeBridge.templateMessages(h, json));
        } finally {
            release();
        }
    }

    /**
     * The final answer of a chain-of-thought reply: the text after the last line starting with one
     * of {@link #answerPrefixes()}; null when no line has one.
     */
    public String extractAnswer(String text) {
        long h = acquire();
        try {
            return NativeBridge.templateExtractAnswer(h, text);
        } finally {
            release();
        }
    }

    @Override
    public String toString() {
        return isClosed() ? "PromptTemplate{closed}" : "PromptTemplate{" + name() + ", variables=" + variables() + "}";
    }

    private List<String> variables(boolean requiredOnly) {
        long h = acquire();
        try {
            return list(NativeBridge.templateVariables(h, requiredOnly));
        } finally {
            release();
        }
    }

    private String field(int which) {
        long h = acquire();
        try {
            return NativeBridge.templateField(h, which);
        } finally {
            release();
        }
    }

    private static <T> List<T> list(T[] array) {
        return Collections.unmodifiableList(Arrays.asList(array));
    }

    /** Builds a {@link PromptTemplate}; the native library checks the syntax in {@link #build()}. */
    public static final class Builder {
        private final String name;
        private final String template;
        private TemplateFormat format = TemplateFormat.FSTRING;
        private String system;
        private final Map<String, Object> defaults = new LinkedHashMap<>();
        private String outputSchema;
        private final List<String> answerPrefixes = new ArrayList<>();

        private Builder(String name, String template) {
            this.name = LlmedgeException.requireNonNull(name, "name");
            this.template = LlmedgeException.requireNonNull(template, "template");
        }

        public Builder format(TemplateFormat format) {
            this.format = LlmedgeException.requireNonNull(format, "format");
            return this;
        }

        /** The system (role) prompt; it may use the same variables. */
        public Builder system(String system) {
            this.system = system;
            return this;
        }

        /** A value used when a request leaves {@code variable} out. */
        public Builder defaultValue(String variable, Object value) {
            this.defaults.put(LlmedgeException.requireNonNull(variable, "variable"), value);
            return this;
        }

        /** Default values (added to earlier ones). */
        public Builder defaults(Map<String, ?> defaults) {
            this.defaults.putAll(LlmedgeException.requireNonNull(defaults, "defaults"));
            return this;
        }

        /** A JSON Schema (JSON text) the answer must follow. */
        public Builder outputSchema(String schemaJson) {
            this.outputSchema = schemaJson;
            return this;
        }

        /** Line prefixes that introduce the final answer of a chain-of-thought ({@code "Answer:"}, {@code "答案："}). */
        public Builder answerPrefixes(String... prefixes) {
            return answerPrefixes(Arrays.asList(LlmedgeException.requireNonNull(prefixes, "answerPrefixes")));
        }

        public Builder answerPrefixes(List<String> prefixes) {
            this.answerPrefixes.clear();
            for (String p : LlmedgeException.requireNonNull(prefixes, "answerPrefixes")) {
                this.answerPrefixes.add(LlmedgeException.requireNonNull(p, "answer prefix"));
            }
            return this;
        }

        /** The template; code 30 for a syntax error, code 30 for an output schema that is not JSON. */
        public PromptTemplate build() {
            return new PromptTemplate(handle());
        }

        private long handle() {
            return NativeBridge.templateNew(name, template, format.ordinal(), system, Json.object(defaults),
                    outputSchema, answerPrefixes.toArray(new String[0]));
        }
    }
}
