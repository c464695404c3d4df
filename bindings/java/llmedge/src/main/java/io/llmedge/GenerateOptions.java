package io.llmedge;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Options of one generation request. Immutable; build with {@link #builder()}. The defaults are
 * the core's (llama.cpp's usual sampling settings, 256 tokens at most). Values are checked when
 * the request runs: an out-of-range value throws {@link LlmedgeException} with code 1.
 *
 * <pre>{@code
 * GenerateOptions greedy = GenerateOptions.builder().greedy(true).maxTokens(32).build();
 * }</pre>
 */
public final class GenerateOptions {
    // Read by the native library by name (bindings/java/src/convert.rs); keep names and types.
    private final Integer maxTokens;
    private final float temperature;
    private final int topK;
    private final float topP;
    private final float minP;
    private final float repeatPenalty;
    private final float frequencyPenalty;
    private final float presencePenalty;
    private final int penaltyLastN;
    private final Long seed;
    private final boolean greedy;
    private final String[] stop;
    private final int[] logitBiasTokens;
    private final float[] logitBiasValues;
    private final boolean ignoreEos;
    private final int truncation;
    // 0 none, 1 JSON schema, 2 choices, 3 regex, 4 grammar; constraintText holds the schema,
    // regex or grammar, choices the choice list.
    private final int constraintKind;
    private final String constraintText;
    private final String[] choices;
    private final String requestId;
    private final String tenant;
    // null: the session's adapters; empty: the bare model.
    private final LoraAdapter[] loras;
    private final float[] loraScales;

    private static final int NO_CONSTRAINT = 0;
    private static final int JSON_SCHEMA = 1;
    private static final int CHOICE = 2;
    private static final int REGEX = 3;
    private static final int GRAMMAR = 4;

    private GenerateOptions(Builder b) {
        this.maxTokens = b.maxTokens;
        this.temperature = b.temperature;
        this.topK = b.topK;
        this.topP = b.topP;
        this.minP = b.minP;
        this.repeatPenalty = b.repeatPenalty;
        this.frequencyPenalty = b.frequencyPenalty;
        this.presencePenalty = b.presencePenalty;
        this.penaltyLastN = b.penaltyLastN;
        this.seed = b.seed;
        this.greedy = b.greedy;
        this.stop = b.stop.toArray(new String[0]);
        this.logitBiasTokens = new int[b.logitBias.size()];
        this.logitBiasValues = new float[b.logitBias.size()];
        int i = 0;
        for (Map.Entry<Integer, Float> e : b.logitBias.entrySet()) {
            logitBiasTokens[i] = e.getKey();
            logitBiasValues[i] = e.getValue();
            i++;
        }
        this.ignoreEos = b.ignoreEos;
        this.truncation = b.truncation.ordinal();
        this.constraintKind = b.constraintKind;
        this.constraintText = b.constraintText;
        this.choices = b.choices == null ? null : b.choices.toArray(new String[0]);
        this.requestId = b.requestId;
        this.tenant = b.tenant;
        if (b.loras == null) {
            this.loras = null;
            this.loraScales = null;
        } else {
            this.loras = b.loras.toArray(new LoraAdapter[0]);
            this.loraScales = new float[b.loraScales.size()];
            for (int j = 0; j < loraScales.length; j++) {
                loraScales[j] = b.loraScales.get(j);
            }
        }
    }

    /** The core's defaults. */
    public static GenerateOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A builder starting from these options. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.maxTokens = maxTokens;
        b.temperature = temperature;
        b.topK = topK;
        b.topP = topP;
        b.minP = minP;
        b.repeatPenalty = repeatPenalty;
        b.frequencyPenalty = frequencyPenalty;
        b.presencePenalty = presencePenalty;
        b.penaltyLastN = penaltyLastN;
        b.seed = seed;
        b.greedy = greedy;
        b.stop.addAll(Arrays.asList(stop));
        for (int i = 0; i < logitBiasTokens.length; i++) {
            b.logitBias.put(logitBiasTokens[i], logitBiasValues[i]);
        }
        b.ignoreEos = ignoreEos;
        b.truncation = Truncation.values()[truncation];
        b.constraintKind = constraintKind;
        b.constraintText = constraintText;
        b.choices = choices == null ? null : new ArrayList<>(Arrays.asList(choices));
        b.requestId = requestId;
        b.tenant = tenant;
        if (loras != null) {
            b.loras = new ArrayList<>(Arrays.asList(loras));
            b.loraScales = new ArrayList<>();
            for (float f : loraScales) {
                b.loraScales.add(f);
            }
        }
        return b;
    }

    /** Most tokens to generate, or null for "until the context is full". */
    public Integer getMaxTokens() {
        return maxTokens;
    }

    public float getTemperature() {
        return temperature;
    }

    public int getTopK() {
        return topK;
    }

    public float getTopP() {
        return topP;
    }

    public float getMinP() {
        return minP;
    }

    public float getRepeatPenalty() {
        return repeatPenalty;
    }

    public float getFrequencyPenalty() {
        return frequencyPenalty;
    }

    public float getPresencePenalty() {
        return presencePenalty;
    }

    public int getPenaltyLastN() {
        return penaltyLastN;
    }

    /** The RNG seed, or null for a fresh random seed per request. */
    public Long getSeed() {
        return seed;
    }

    public boolean isGreedy() {
        return greedy;
    }

    public List<String> getStop() {
        return Collections.unmodifiableList(Arrays.asList(stop));
    }

    /** Token id to bias; {@code Float.NEGATIVE_INFINITY} bans a token. */
    public Map<Integer, Float> getLogitBias() {
        Map<Integer, Float> m = new LinkedHashMap<>();
        for (int i = 0; i < logitBiasTokens.length; i++) {
            m.put(logitBiasTokens[i], logitBiasValues[i]);
        }
        return Collections.unmodifiableMap(m);
    }

    public boolean isIgnoreEos() {
        return ignoreEos;
    }

    public Truncation getTruncation() {
        return Truncation.values()[truncation];
    }

    /** The JSON schema the output must follow, or null. */
    public String getJsonSchema() {
        return constraintKind == JSON_SCHEMA ? constraintText : null;
    }

    /** The strings the output must be one of, or null. */
    public List<String> getChoices() {
        return constraintKind == CHOICE ? Collections.unmodifiableList(Arrays.asList(choices)) : null;
    }

    /** The regex the whole output must match, or null. */
    public String getRegex() {
        return constraintKind == REGEX ? constraintText : null;
    }

    /** The GBNF grammar the output must follow, or null. */
    public String getGrammar() {
        return constraintKind == GRAMMAR ? constraintText : null;
    }

    /** The request id for the audit log, or null for a generated one. */
    public String getRequestId() {
        return requestId;
    }

    /** The tenant of this request, or null for the session's. */
    public String getTenant() {
        return tenant;
    }

    @Override
    public String toString() {
        return "GenerateOptions{maxTokens=" + maxTokens + ", temperature=" + temperature + ", topK=" + topK
                + ", topP=" + topP + ", minP=" + minP + ", repeatPenalty=" + repeatPenalty + ", seed=" + seed
                + ", greedy=" + greedy + ", stop=" + Arrays.toString(stop) + ", ignoreEos=" + ignoreEos
                + ", truncation=" + getTruncation() + constraintString()
                + (requestId != null ? ", requestId=" + requestId : "") + (tenant != null ? ", tenant=" + tenant : "")
                + "}";
    }

    private String constraintString() {
        switch (constraintKind) {
            case JSON_SCHEMA:
                return ", jsonSchema=" + constraintText;
            case CHOICE:
                return ", choices=" + Arrays.toString(choices);
            case REGEX:
                return ", regex=" + constraintText;
            case GRAMMAR:
                return ", grammar=" + constraintText;
            default:
                return "";
        }
    }

    /** The adapters of this request, or null for the session's (empty: the bare model). */
    public List<LoraAdapter> getLoras() {
        return loras == null ? null : Collections.unmodifiableList(Arrays.asList(loras));
    }

    /** The scales of {@link #getLoras()}, or null. */
    public float[] getLoraScales() {
        return loraScales == null ? null : loraScales.clone();
    }

    public static final class Builder {
        // The core's GenerateOptions::default() (a test checks they agree).
        private Integer maxTokens = 256;
        private float temperature = 0.8f;
        private int topK = 40;
        private float topP = 0.95f;
        private float minP = 0.05f;
        private float repeatPenalty = 1.0f;
        private float frequencyPenalty = 0.0f;
        private float presencePenalty = 0.0f;
        private int penaltyLastN = 64;
        private Long seed = null;
        private boolean greedy = false;
        private final List<String> stop = new ArrayList<>();
        private final Map<Integer, Float> logitBias = new LinkedHashMap<>();
        private boolean ignoreEos = false;
        private Truncation truncation = Truncation.ERROR;
        private int constraintKind = NO_CONSTRAINT;
        private String constraintText = null;
        private List<String> choices = null;
        private String requestId = null;
        private String tenant = null;
        private List<LoraAdapter> loras = null;
        private List<Float> loraScales = null;

        private Builder() {}

        /** Most tokens to generate (at least 1; checked when the request runs). */
        public Builder maxTokens(int n) {
            this.maxTokens = n;
            return this;
        }

        /** Generate until an end token, a stop string or a full context. */
        public Builder unlimitedTokens() {
            this.maxTokens = null;
            return this;
        }

        /** 0 picks the most likely token every step. */
        public Builder temperature(float t) {
            this.temperature = t;
            return this;
        }

        /** Keep only the k most likely tokens (0 = off). */
        public Builder topK(int k) {
            this.topK = k;
            return this;
        }

        /** Nucleus sampling threshold (1.0 = off). */
        public Builder topP(float p) {
            this.topP = p;
            return this;
        }

        /** Drop tokens less likely than minP times the best one (0 = off). */
        public Builder minP(float p) {
            this.minP = p;
            return this;
        }

        /** Penalty for recently seen tokens (1.0 = off). */
        public Builder repeatPenalty(float p) {
            this.repeatPenalty = p;
            return this;
        }

        public Builder frequencyPenalty(float p) {
            this.frequencyPenalty = p;
            return this;
        }

        public Builder presencePenalty(float p) {
            this.presencePenalty = p;
            return this;
        }

        /** How many recent tokens the penalties look at. */
        public Builder penaltyLastN(int n) {
            this.penaltyLastN = n;
            return this;
        }

        /** RNG seed in 0..2^32-1, for reproducible sampling. */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** Always take the most likely token, whatever the temperature (deterministic). */
        public Builder greedy(boolean on) {
            this.greedy = on;
            return this;
        }

        /** Generation ends before any of these strings; they are not part of the output. Replaces earlier ones. */
        public Builder stop(String... stops) {
            this.stop.clear();
            for (String s : LlmedgeException.requireNonNull(stops, "stop")) {
                this.stop.add(LlmedgeException.requireNonNull(s, "stop string"));
            }
            return this;
        }

        /** Add one stop string. */
        public Builder addStop(String s) {
            this.stop.add(LlmedgeException.requireNonNull(s, "stop string"));
            return this;
        }

        /** Add {@code bias} to the logit of {@code token} before sampling. */
        public Builder logitBias(int token, float bias) {
            this.logitBias.put(token, bias);
            return this;
        }

        /** Never generate {@code token}. */
        public Builder banToken(int token) {
            return logitBias(token, Float.NEGATIVE_INFINITY);
        }

        /** Keep generating past end-of-generation tokens (benchmarks). */
        public Builder ignoreEos(boolean on) {
            this.ignoreEos = on;
            return this;
        }

        public Builder truncation(Truncation t) {
            this.truncation = LlmedgeException.requireNonNull(t, "truncation");
            return this;
        }

        /**
         * Constrain the output to JSON that validates against this JSON Schema (given as JSON
         * text). A schema that is not JSON or cannot become a grammar throws code 33 when the
         * request runs. Replaces any other constraint.
         */
        public Builder jsonSchema(String schemaJson) {
            return constraint(JSON_SCHEMA, LlmedgeException.requireNonNull(schemaJson, "jsonSchema"), null);
        }

        /** Constrain the output to exactly one of these strings. Replaces any other constraint. */
        public Builder choices(List<String> choices) {
            List<String> copy = new ArrayList<>();
            for (String c : LlmedgeException.requireNonNull(choices, "choices")) {
                copy.add(LlmedgeException.requireNonNull(c, "choice"));
            }
            return constraint(CHOICE, null, copy);
        }

        /** {@link #choices(List)} from an array. */
        public Builder choices(String... choices) {
            return choices(Arrays.asList(LlmedgeException.requireNonNull(choices, "choices")));
        }

        /**
         * Constrain the output to a string matching this regex in full (anchors implied). A regex
         * a grammar cannot express (look-arounds, word boundaries) throws code 33.
         */
        public Builder regex(String regex) {
            return constraint(REGEX, LlmedgeException.requireNonNull(regex, "regex"), null);
        }

        /** Constrain the output to a llama.cpp GBNF grammar whose start rule is {@code root}. */
        public Builder grammar(String gbnf) {
            return constraint(GRAMMAR, LlmedgeException.requireNonNull(gbnf, "grammar"), null);
        }

        /** Remove any output constraint. */
        public Builder noConstraint() {
            return constraint(NO_CONSTRAINT, null, null);
        }

        private Builder constraint(int kind, String text, List<String> choices) {
            this.constraintKind = kind;
            this.constraintText = text;
            this.choices = choices;
            return this;
        }

        /** The request id recorded in the audit log and returned by {@link Completion#requestId()} (default: generated). */
        public Builder requestId(String id) {
            this.requestId = id;
            return this;
        }

        /** The caller or tenant of this request, overriding {@link SessionOptions.Builder#tenant(String)}. */
        public Builder tenant(String tenant) {
            this.tenant = tenant;
            return this;
        }

        /**
         * Run this request with this LoRA adapter at {@code scale} instead of the session's
         * adapters; repeat for several.
         */
        public Builder addLora(LoraAdapter adapter, float scale) {
            if (loras == null) {
                loras = new ArrayList<>();
                loraScales = new ArrayList<>();
            }
            loras.add(LlmedgeException.requireNonNull(adapter, "adapter"));
            loraScales.add(scale);
            return this;
        }

        /** Run this request on the bare model, without the session's adapters (clears {@link #addLora}). */
        public Builder noLora() {
            loras = new ArrayList<>();
            loraScales = new ArrayList<>();
            return this;
        }

        public GenerateOptions build() {
            return new GenerateOptions(this);
        }
    }
}
