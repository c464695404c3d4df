package io.llmedge;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/** Library-wide facts. */
public final class Llmedge {
    private Llmedge() {}

    /** The version of the native library (the Rust workspace version). */
    public static String version() {
        return NativeBridge.version();
    }

    /**
     * Path of llmedge's default model (SmolLM2-135M-Instruct), downloading it into the model
     * cache first if it is not there ({@code $LLMEDGE_MODELS_DIR}, else the checkout's
     * {@code models/cache}, else {@code ~/.cache/llmedge/models}).
     */
    public static String defaultModelPath() {
        return NativeBridge.defaultModelPath();
    }

    /** Names of llama.cpp's built-in chat templates, usable as {@link SessionOptions.Builder#chatTemplate}. */
    public static List<String> builtinChatTemplates() {
        return Collections.unmodifiableList(Arrays.asList(NativeBridge.builtinChatTemplates()));
    }

    /** Where the native library was loaded from (for diagnostics). */
    public static String nativeLibrarySource() {
        NativeBridge.version();
        return NativeLibrary.loadedFrom();
    }
}
