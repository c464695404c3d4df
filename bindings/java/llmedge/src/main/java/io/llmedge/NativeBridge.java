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

    static native void sessionSaveState(long session, String path);

    /** The number of tokens restored. */
    static native int sessionLoadState(long session, String path);

    // The serving engine (bindings/java/src/engine.rs).

    static native long engineNew(long model, EngineOptions options);

    /** Cancels what is left and waits for the scheduler thread. */
    static native void engineFree(long engine);

    static native void engineShutdown(long engine, boolean drain);

    static native String engineStatsJson(long engine);

    // The router and its classifier (bindings/java/src/router.rs).

    static native long routerFromToml(String toml);

    static native long routerFromFile(String path);

    static native void routerFree(long router);

    /** The decision as JSON; {@code classifier} is 0 for none, {@code model} and {@code tenant} may be null. */
    static native String routerRoute(long router, long classifier, String text, String model, String tenant);

    static native long routeClassifierNew(long model);

    static native void routeClassifierFree(long classifier);

    // Response caches for engines (bindings/java/src/response_cache.rs).

    static native long responseCacheMemory(long capacity, long ttlMs);

    static native long responseCacheRedis(String url, String prefix, long ttlMs, long timeoutMs);

    static native void responseCacheFree(long cache);

    static native String responseCacheStatsJson(long cache);

    static native int engineSlots(long engine);

    static native int engineContextSize(long engine);

    /**
     * Exactly one of {@code prompt}, {@code tokens}, {@code messages} is non-null; {@code timeoutMs}
     * 0 = the engine's deadline. The output goes to {@code callbacks}, on the scheduler thread.
     */
    static native long engineSubmit(long engine, String prompt, int[] tokens, ChatMessage[] messages,
            GenerateOptions options, long timeoutMs, EngineRequest.Callbacks callbacks);

    static native void requestFree(long request);

    static native void requestCancel(long request);

    static native String requestId(long request);

    /** The core's error codes in numeric order, as {@code "code:name"}. */
    static native String[] errorCodes();

    /** Grammar-constrained JSON from {@code prompt}, or from {@code messages} when prompt is null. */
    static native JsonCompletion sessionGenerateJson(long session, String prompt, ChatMessage[] messages,
            String schemaJson, GenerateOptions options);

    static native TemplateOutput sessionRunTemplate(long session, long template, String variablesJson,
            GenerateOptions options);

    static native DynamicFlowOutput sessionRunDynamic(long session, long template, String request,
            GenerateOptions options);

    // Prompt templates (bindings/java/src/templates.rs).

    /** {@code format}: 0 f-string, 1 Jinja; every argument after it may be null. */
    static native long templateNew(String name, String template, int format, String system, String defaultsJson,
            String outputSchemaJson, String[] answerPrefixes);

    static native long templateFromToml(String text);

    static native void templateFree(long template);

    static native String[] templateVariables(long template, boolean requiredOnly);

    static native String templateRender(long template, String variablesJson);

    static native ChatMessage[] templateMessages(long template, String variablesJson);

    static native String templateExtractAnswer(long template, String text);

    /** 0 name, 1 description, 2 format, 3 system, 4 template, 5 output schema JSON, 6 defaults JSON, 7 all as JSON. */
    static native String templateField(long template, int field);

    static native String[] templateAnswerPrefixes(long template);

    static native long libraryNew(boolean builtin);

    static native void libraryFree(long library);

    static native void libraryAddDir(long library, String dir);

    static native void libraryInsert(long library, long template);

    static native long libraryGet(long library, String name);

    static native String[] libraryNames(long library);

    // Safety and audit (bindings/java/src/safety.rs).

    /** A null path means the built-in policy. */
    static native long safetyNew(String policyPath);

    static native void safetyFree(long safety);

    static native String safetyCheck(long safety, String text, boolean output);

    static native VerifyReport auditVerify(String path);

    static native String manifestVerify(String manifest, String pubkey);

    // LoRA adapters and model tools (bindings/java/src/lora.rs).

    static native long modelLoadLora(long model, String path);

    static native void loraFree(long lora);

    /** {info JSON, name, path}. */
    static native String[] loraInfo(long lora);

    static native boolean loraSame(long a, long b);

    /** JSON report; {@code maxChunks} 0 = all; the adapters of {@code options} (may be null) are used. */
    static native String modelPerplexity(long model, String text, int nCtx, int maxChunks, GenerateOptions options);

    static native String loraMerge(String base, String[] paths, float[] scales, String output, String outType);

    static native String loraImport(String peftDir, String base, String output, boolean f16);

    /** {@code threads} 0 = all cores; the keep arrays may be null. */
    static native String quantize(String input, String output, String type, boolean allowRequantize, boolean pure,
            int threads, String[] keepPatterns, String[] keepTypes);

    // Vision (bindings/java/src/vision.rs).
    static native void modelLoadMmproj(long model, String path);

    static native String modelVisionStats(long model);

    static native long imageOpen(String path, long maxBytes, int maxSide, long maxPixels, double[] window, int frame);

    static native long imageFromBytes(byte[] data, long maxBytes, int maxSide, long maxPixels, double[] window,
            int frame);

    static native void imageFree(long image);

    static native int[] imageSize(long image);

    static native String imageSha256(long image);

    static native Completion sessionGenerateWithImages(long session, String prompt, Image[] images,
            GenerateOptions options, TokenListener listener);
}
