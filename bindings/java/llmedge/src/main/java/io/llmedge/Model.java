package io.llmedge;

import java.nio.file.Path;

/**
 * A loaded GGUF model. Thread-safe: share one Model between threads and give each concurrent
 * conversation its own {@link Session}. Sessions keep the weights alive, so closing the model
 * while sessions are open is safe; the memory goes when the last of them is closed.
 *
 * <pre>{@code
 * try (Model model = Model.load(Llmedge.defaultModelPath());
 *      Session session = model.newSession()) {
 *     Completion c = session.generate("The capital of France is", GenerateOptions.builder().greedy(true).maxTokens(8).build());
 *     System.out.println(c.getText());
 * }
 * }</pre>
 */
public final class Model extends NativeResource {
    private final ModelInfo info;

    private Model(long handle) {
        super("model", handle, NativeBridge::modelFree);
        ModelInfo read;
        long h = acquire();
        try {
            read = NativeBridge.modelInfo(h);
        } catch (RuntimeException | Error e) {
            release();
            close();
            throw e;
        }
        release();
        this.info = read;
    }

    /** Load a GGUF file with default options. */
    public static Model load(String path) {
        return load(path, ModelOptions.defaults());
    }

    /** Load a GGUF file. Throws code 10 when it does not exist, 11 when it is not a valid model. */
    public static Model load(String path, ModelOptions options) {
        return new Model(NativeBridge.modelLoad(path, options));
    }

    public static Model load(Path path) {
        return load(LlmedgeException.requireNonNull(path, "path").toString());
    }

    public static Model load(Path path, ModelOptions options) {
        return load(LlmedgeException.requireNonNull(path, "path").toString(), options);
    }

    /** Metadata read at load time (still available after close). */
    public ModelInfo info() {
        return info;
    }

    /** SHA-256 of the model file, computed once and cached. */
    public String sha256() {
        long h = acquire();
        try {
            return NativeBridge.modelSha256(h);
        } finally {
            release();
        }
    }

    /** Tokens of {@code text}, with BOS as the model wants and special-token text parsed. */
    public int[] tokenize(String text) {
        return tokenize(text, true, true);
    }

    /**
     * Tokens of {@code text}. {@code addSpecial} adds BOS/EOS as the model wants;
     * {@code parseSpecial} turns text such as {@code <|im_start|>} into its special token.
     */
    public int[] tokenize(String text, boolean addSpecial, boolean parseSpecial) {
        long h = acquire();
        try {
            return NativeBridge.modelTokenize(h, text, addSpecial, parseSpecial);
        } finally {
            release();
        }
    }

    /** Text of {@code tokens}, special tokens not rendered. Throws code 23 for an id outside the vocabulary. */
    public String detokenize(int[] tokens) {
        return detokenize(tokens, false);
    }

    public String detokenize(int[] tokens, boolean renderSpecial) {
        long h = acquire();
        try {
            return NativeBridge.modelDetokenize(h, tokens, renderSpecial);
        } finally {
            release();
        }
    }

    /** Mean-pooled, L2-normalised embedding of {@code text} ({@link ModelInfo#getEmbeddingSize()} floats). */
    public float[] embed(String text) {
        long h = acquire();
        try {
            return NativeBridge.modelEmbed(h, text);
        } finally {
            release();
        }
    }

    /**
     * Load a GGUF LoRA adapter into this model, or return the one already loaded from the same
     * file. Throws code 15 when it does not fit the model (another architecture, other tensor
     * shapes, truncated, not an adapter), with a message saying what does not fit.
     */
    public LoraAdapter loadLora(String path) {
        long h = acquire();
        try {
            return new LoraAdapter(NativeBridge.modelLoadLora(h, path));
        } finally {
            release();
        }
    }

    /**
     * Attach the vision projector (mmproj GGUF) of a vision-language model; afterwards messages
     * may carry {@link Image}s. Throws code 17 when it is not a projector or was made for another
     * text model.
     */
    public void loadMmproj(String path) {
        long h = acquire();
        try {
            NativeBridge.modelLoadMmproj(h, LlmedgeException.requireNonNull(path, "path"));
        } finally {
            release();
        }
    }

    /**
     * The projector's info and counters as JSON ({@code {"info": {...}, "stats": {"encoded",
     * "cache_hits", "cached_entries", "cached_bytes"}}}), or null without a projector.
     */
    public String visionStatsJson() {
        long h = acquire();
        try {
            return NativeBridge.modelVisionStats(h);
        } finally {
            release();
        }
    }

    public LoraAdapter loadLora(Path path) {
        return loadLora(LlmedgeException.requireNonNull(path, "path").toString());
    }

    /** Perplexity of the bare model on {@code text}, in chunks of {@code nCtx} tokens. */
    public double perplexity(String text, int nCtx) {
        String json = perplexityJson(text, nCtx, 0, null);
        int at = json.indexOf("\"perplexity\":");
        int end = json.indexOf(',', at);
        return Double.parseDouble(json.substring(at + "\"perplexity\":".length(), end));
    }

    /**
     * Perplexity as JSON ({@code perplexity}, {@code nll}, {@code stderr}, {@code chunks},
     * {@code scored_tokens}, {@code n_ctx}, {@code seconds}). {@code maxChunks} 0 scores every
     * chunk; the adapters of {@code options} (may be null) are applied.
     */
    public String perplexityJson(String text, int nCtx, int maxChunks, GenerateOptions options) {
        long h = acquire();
        try {
            return NativeBridge.modelPerplexity(h, text, nCtx, maxChunks, options);
        } finally {
            release();
        }
    }

    /** A new session with default options. */
    public Session newSession() {
        return newSession(SessionOptions.defaults());
    }

    /** A new session (allocates its own KV cache). */
    public Session newSession(SessionOptions options) {
        long h = acquire();
        try {
            return new Session(NativeBridge.sessionNew(h, options));
        } finally {
            release();
        }
    }

    @Override
    public String toString() {
        return "Model{" + info + (isClosed() ? ", closed" : "") + "}";
    }
}
