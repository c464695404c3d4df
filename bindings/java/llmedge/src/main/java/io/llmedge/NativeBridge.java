package io.llmedge;

/**
 * The native methods of {@code libllmedge_jni} (see {@code bindings/java/src/lib.rs}).
 * Every method throws {@link LlmedgeException} on failure; handles are {@code Box} pointers
 * owned by a {@link NativeResource}.
 */
final class NativeBridge {
    static {
        NativeLibrary.load();
    }

    private NativeBridge() {}

    static native String version();

    static native String defaultModelPath();

    static native String[] builtinChatTemplates();

    /** Core's {@code GenerateOptions::default()}: maxTokens, temperature, topK, topP, minP, repeatPenalty,
     * frequencyPenalty, presencePenalty, penaltyLastN. */
    static native double[] generateDefaults();

    static native void panicForTesting(String message);

    static native long modelLoad(String path, ModelOptions options);

    static native void modelFree(long model);

    static native ModelInfo modelInfo(long model);

    static native String modelSha256(long model);

    static native int[] modelTokenize(long model, String text, boolean addSpecial, boolean parseSpecial);

    static native String modelDetokenize(long model, int[] tokens, boolean special);

    static native float[] modelEmbed(long model, String text);

    static native long sessionNew(long model, SessionOptions options);

    static native void sessionFree(long session);

    static native void sessionCancel(long session);

    static native int sessionContextSize(long session);

    static native String sessionRenderChat(long session, ChatMessage[] messages);

    /** Exactly one of {@code prompt}, {@code tokens}, {@code messages} is non-null. */
    static native Completion sessionGenerate(long session, String prompt, int[] tokens, ChatMessage[] messages,
            GenerateOptions options, TokenListener listener);
}
