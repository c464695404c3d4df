package io.llmedge;

/** The placeholder syntax of a {@link PromptTemplate}. */
public enum TemplateFormat {
    /** {@code {variable}} placeholders; {@code {{} and {@code }}} are literal braces (LangChain's PromptTemplate). */
    FSTRING,
    /** A Jinja template ({@code {{ variable }}}, {@code {% if %}}, {@code {% for %}}). */
    JINJA;

    /** The core's name: {@code fstring} or {@code jinja}. */
    public String wireName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
