package io.llmedge;

import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * One conversation's state (a llama.cpp context and its KV cache) on a {@link Model}.
 *
 * <p>Thread rules: one generation runs at a time on a session (a second caller waits for the
 * first); {@link #cancel()} and {@link #close()} may be called from any thread. Use one
 * session per concurrent conversation; sessions of one model run in parallel.
 *
 * <p>Pass the whole conversation each time (the chat methods render it with the model's chat
 * template). The session keeps the KV of its last request and evaluates only what a new prompt
 * adds to it ({@link Usage#getCachedPromptTokens()}), unless
 * {@link SessionOptions.Builder#prefixReuse(boolean)} is off; {@link #saveState} and
 * {@link #loadState} keep that KV across processes.
 */
public final class Session extends NativeResource {
    Session(long handle) {
        super("session", handle, NativeBridge::sessionFree);
    }

    /** Same as {@code model.newSession()}. */
    public Session(Model model) {
        this(model, SessionOptions.defaults());
    }

    /** Same as {@code model.newSession(options)}. */
    public Session(Model model, SessionOptions options) {
        this(create(model, options));
    }

    private static long create(Model model, SessionOptions options) {
        long h = LlmedgeException.requireNonNull(model, "model").acquire();
        try {
            return NativeBridge.sessionNew(h, options);
        } finally {
            model.release();
        }
    }

    /** Generate from raw text with the default options. */
    public Completion generate(String prompt) {
        return generate(prompt, GenerateOptions.defaults(), null);
    }

    /** Generate from raw text (BOS added, special-token text parsed). Null options mean the defaults. */
    public Completion generate(String prompt, GenerateOptions options) {
        return generate(prompt, options, null);
    }

    /** Generate, handing each piece of text to {@code listener} as it is produced (null: no streaming). */
    public Completion generate(String prompt, GenerateOptions options, TokenListener listener) {
        return run(prompt, null, null, options, listener);
    }

    /** Generate, handing each piece of text to {@code onPiece} (e.g. {@code System.out::print}). */
    public Completion generateStreaming(String prompt, GenerateOptions options, Consumer<String> onPiece) {
        return run(prompt, null, null, options, listener(onPiece));
    }

    /** Generate from prompt tokens, used as given. */
    public Completion generate(int[] promptTokens, GenerateOptions options) {
        return generate(promptTokens, options, null);
    }

    public Completion generate(int[] promptTokens, GenerateOptions options, TokenListener listener) {
        return run(null, LlmedgeException.requireNonNull(promptTokens, "promptTokens"), null, options, listener);
    }

    /**
     * Generate from a raw prompt with images: one {@code <__media__>} marker per image, or none
     * (then the images go first). Needs {@link Model#loadMmproj(String)} (code 17); an empty list
     * is code 1.
     */
    public Completion generateWithImages(String prompt, List<Image> images, GenerateOptions options) {
        Image[] array = LlmedgeException.requireNonNull(images, "images").toArray(new Image[0]);
        long h = acquire();
        try {
            return NativeBridge.sessionGenerateWithImages(h, LlmedgeException.requireNonNull(prompt, "prompt"), array,
                    options, null);
        } finally {
            release();
        }
    }

    /** Render {@code messages} with the chat template and generate the assistant's reply. */
    public Completion chat(List<ChatMessage> messages, GenerateOptions options) {
        return chat(messages, options, null);
    }

    public Completion chat(List<ChatMessage> messages, GenerateOptions options, TokenListener listener) {
        return run(null, null, toArray(messages), options, listener);
    }

    public Completion chatStreaming(List<ChatMessage> messages, GenerateOptions options, Consumer<String> onPiece) {
        return run(null, null, toArray(messages), options, listener(onPiece));
    }

    /**
     * Generate on a background thread and read the pieces as an {@link java.util.Iterator} or a
     * {@link java.util.stream.Stream}. Close the returned stream to cancel an unfinished generation.
     */
    public TokenStream stream(String prompt, GenerateOptions options) {
        LlmedgeException.requireNonNull(prompt, "prompt");
        return new TokenStream(this, listener -> generate(prompt, options, listener));
    }

    /** {@link #stream} for a conversation. */
    public TokenStream chatStream(List<ChatMessage> messages, GenerateOptions options) {
        ChatMessage[] array = toArray(messages);
        return new TokenStream(this, listener -> run(null, null, array, options, listener));
    }

    /**
     * Generate JSON that validates against {@code schemaJson} (a JSON Schema as JSON text; the
     * output is grammar-constrained). Code 33 for a schema that is not JSON or cannot become a
     * grammar, 34 when generation stopped before the JSON was complete (raise maxTokens), 40 when
     * the safety policy blocked the request.
     */
    public JsonCompletion generateJson(String prompt, String schemaJson, GenerateOptions options) {
        LlmedgeException.requireNonNull(prompt, "prompt");
        long h = acquire();
        try {
            return NativeBridge.sessionGenerateJson(h, prompt, null, schemaJson, options);
        } finally {
            release();
        }
    }

    /** {@link #generateJson} for a conversation rendered with the chat template. */
    public JsonCompletion chatJson(List<ChatMessage> messages, String schemaJson, GenerateOptions options) {
        ChatMessage[] array = toArray(messages);
        long h = acquire();
        try {
            return NativeBridge.sessionGenerateJson(h, null, array, schemaJson, options);
        } finally {
            release();
        }
    }

    /**
     * Fill {@code template} with {@code variables}, send it as a chat and post-process: the answer
     * line of a chain-of-thought template ({@link TemplateOutput#answer()}), the JSON of a template
     * with an output schema ({@link TemplateOutput#json()}; generation is then constrained to the
     * schema unless {@code options} has a constraint of its own). Code 32 for missing or unknown
     * variables. Values: see {@link PromptTemplate}.
     */
    public TemplateOutput runTemplate(PromptTemplate template, Map<String, ?> variables, GenerateOptions options) {
        LlmedgeException.requireNonNull(template, "template");
        String json = Json.object(LlmedgeException.requireNonNull(variables, "variables"));
        long h = acquire();
        try {
            long t = template.acquire();
            try {
                return NativeBridge.sessionRunTemplate(h, t, json, options);
            } finally {
                template.release();
            }
        } finally {
            release();
        }
    }

    /**
     * The two-stage dynamic flow: the model reads {@code request} and fills the template's
     * variables as JSON (constrained to a schema of them), then the filled template is answered
     * as in {@link #runTemplate}. Both stages are in the result.
     */
    public DynamicFlowOutput runDynamic(PromptTemplate template, String request, GenerateOptions options) {
        LlmedgeException.requireNonNull(template, "template");
        LlmedgeException.requireNonNull(request, "request");
        long h = acquire();
        try {
            long t = template.acquire();
            try {
                return NativeBridge.sessionRunDynamic(h, t, request, options);
            } finally {
                template.release();
            }
        } finally {
            release();
        }
    }

    /** The prompt that {@link #chat} would generate from. */
    public String renderChat(List<ChatMessage> messages) {
        ChatMessage[] array = toArray(messages);
        long h = acquire();
        try {
            return NativeBridge.sessionRenderChat(h, array);
        } finally {
            release();
        }
    }

    /**
     * Save what the KV cache holds (the last request's prompt and reply) to {@code path}, so that
     * this or a later process continues from it with {@link #loadState} without evaluating it
     * again. The file names the model's SHA-256 and the session's adapters. Code 50 when it cannot
     * be written.
     */
    public void saveState(String path) {
        LlmedgeException.requireNonNull(path, "path");
        long h = acquire();
        try {
            NativeBridge.sessionSaveState(h, path);
        } finally {
            release();
        }
    }

    public void saveState(java.nio.file.Path path) {
        saveState(LlmedgeException.requireNonNull(path, "path").toString());
    }

    /**
     * Restore a state saved by {@link #saveState} with the same model and adapters, and return
     * the number of tokens restored: the next request whose prompt starts with them evaluates
     * only the rest. A corrupt or truncated file, or one from another model or adapter set,
     * throws code 72 ({@link ErrorCode#STATE}; a missing file code 50) and leaves the cache empty.
     */
    public int loadState(String path) {
        LlmedgeException.requireNonNull(path, "path");
        long h = acquire();
        try {
            return NativeBridge.sessionLoadState(h, path);
        } finally {
            release();
        }
    }

    public int loadState(java.nio.file.Path path) {
        return loadState(LlmedgeException.requireNonNull(path, "path").toString());
    }

    /** The context window in tokens. */
    public int contextSize() {
        long h = acquire();
        try {
            return NativeBridge.sessionContextSize(h);
        } finally {
            release();
        }
    }

    /**
     * Stop the generation running on this session, from any thread: it ends before its next
     * token with {@link FinishReason#CANCELLED}. A no-op when nothing runs or the session is closed.
     */
    public void cancel() {
        long h;
        try {
            h = acquire();
        } catch (LlmedgeException closed) {
            return;
        }
        try {
            NativeBridge.sessionCancel(h);
        } finally {
            release();
        }
    }

    @Override
    void onCloseWhileBusy(long handle) {
        NativeBridge.sessionCancel(handle);
    }

    private Completion run(String prompt, int[] tokens, ChatMessage[] messages, GenerateOptions options,
            TokenListener listener) {
        long h = acquire();
        try {
            return NativeBridge.sessionGenerate(h, prompt, tokens, messages, options, listener);
        } finally {
            release();
        }
    }

    private static TokenListener listener(Consumer<String> onPiece) {
        LlmedgeException.requireNonNull(onPiece, "onPiece");
        return piece -> {
            onPiece.accept(piece);
            return true;
        };
    }

    private static ChatMessage[] toArray(List<ChatMessage> messages) {
        LlmedgeException.requireNonNull(messages, "messages");
        ChatMessage[] array = messages.toArray(new ChatMessage[0]);
        for (ChatMessage m : array) {
            LlmedgeException.requireNonNull(m, "message");
        }
        return array;
    }
}
