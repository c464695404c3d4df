package io.llmedge;

import java.util.Map;

/**
 * Model tools: merging LoRA adapters into a model, importing Hugging Face PEFT adapters and
 * quantizing. Each writes its output atomically and returns a JSON report; failures throw
 * {@link LlmedgeException} (code 15 for an adapter that does not fit, 1 for bad options).
 */
public final class Tools {
    private Tools() {}

    /**
     * Merge adapter files (path to scale, in iteration order; use a {@link java.util.LinkedHashMap})
     * into {@code base} and write {@code output}. {@code outType} is the ggml type of the merged
     * tensors ({@code "f16"}, {@code "q8_0"}, …) or null to keep each tensor's type. Returns JSON:
     * {@code output}, {@code merged_tensors}, {@code copied_tensors}, {@code adapters},
     * {@code output_bytes}, {@code seconds}.
     */
    public static String loraMerge(String base, Map<String, Float> adapters, String output, String outType) {
        LlmedgeException.requireNonNull(adapters, "adapters");
        String[] paths = new String[adapters.size()];
        float[] scales = new float[adapters.size()];
        int i = 0;
        for (Map.Entry<String, Float> e : adapters.entrySet()) {
            paths[i] = e.getKey();
            scales[i] = LlmedgeException.requireNonNull(e.getValue(), "scale");
            i++;
        }
        return NativeBridge.loraMerge(base, paths, scales, output, outType);
    }

    /** {@link #loraMerge(String, Map, String, String)} for one adapter. */
    public static String loraMerge(String base, String adapter, float scale, String output, String outType) {
        return NativeBridge.loraMerge(base, new String[] {adapter}, new float[] {scale}, output, outType);
    }

    /**
     * Convert a PEFT adapter folder ({@code adapter_config.json} + {@code adapter_model.safetensors})
     * into a GGUF adapter for {@code base}, in F16 or (default) F32. DoRA and other unsupported
     * adapters throw code 15. Returns JSON: {@code architecture}, {@code rank}, {@code alpha},
     * {@code peft_alpha}, {@code use_rslora}, {@code tensors}, {@code parameters}, {@code out}.
     */
    /**
     * Verify a model manifest: the signature against the public key file {@code pubkey} (may be
     * null: not checked) and the SHA-256 and size of every listed file. Returns JSON with
     * {@code ok}, {@code signed}, {@code signature} and {@code files}; problems are reported,
     * not thrown ({@link ErrorCode#MODEL_INTEGRITY} only for an invalid manifest).
     */
    public static String manifestVerify(String manifest, String pubkey) {
        return NativeBridge.manifestVerify(LlmedgeException.requireNonNull(manifest, "manifest"), pubkey);
    }

    public static String loraImport(String peftDir, String base, String output, boolean f16) {
        return NativeBridge.loraImport(peftDir, base, output, f16);
    }

    /**
     * Quantize {@code input} to {@code type} ({@code "Q4_K_M"}, {@code "Q8_0"}, {@code "F16"}, …).
     * An already-quantized input needs {@code allowRequantize} (else code 1). Returns JSON:
     * {@code output}, {@code file_type}, {@code input_bytes}, {@code output_bytes},
     * {@code tensors}, {@code seconds}.
     */
    public static String quantize(String input, String output, String type, boolean allowRequantize) {
        return quantize(input, output, type, allowRequantize, false, 0, null);
    }

    /**
     * {@link #quantize(String, String, String, boolean)} with every option: {@code pure} quantizes
     * every tensor to {@code type} without llama.cpp's mixtures, {@code threads} (0 = all cores),
     * {@code keep} maps tensor-name regexes to the ggml type their tensors get (may be null).
     */
    public static String quantize(String input, String output, String type, boolean allowRequantize,
            boolean pure, int threads, Map<String, String> keep) {
        String[] patterns = null;
        String[] types = null;
        if (keep != null) {
            patterns = new String[keep.size()];
            types = new String[keep.size()];
            int i = 0;
            for (Map.Entry<String, String> e : keep.entrySet()) {
                patterns[i] = e.getKey();
                types[i] = e.getValue();
                i++;
            }
        }
        return NativeBridge.quantize(input, output, type, allowRequantize, pure, threads, patterns, types);
    }
}
