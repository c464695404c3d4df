package io.llmedge;

/** A generation constrained to a JSON schema: the JSON it produced and the completion. */
public final class JsonCompletion {
    private final String json;
    private final Completion completion;

    /** Built by the native library. */
    JsonCompletion(String json, Completion completion) {
        this.json = json;
        this.completion = completion;
    }

    /** The output as compact JSON text; it validates against the schema. Parse it with any JSON library. */
    public String json() {
        return json;
    }

    /** The generation itself (its text is the JSON as generated). */
    public Completion completion() {
        return completion;
    }

    @Override
    public String toString() {
        return "JsonCompletion{" + json + "}";
    }
}
