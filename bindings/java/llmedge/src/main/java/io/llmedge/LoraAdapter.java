package io.llmedge;

/**
 * A LoRA adapter loaded into one model with {@link Model#loadLora(String)}. Attach it with a
 * scale to every request of a session ({@link SessionOptions.Builder#addLora(LoraAdapter, float)})
 * or to one request ({@link GenerateOptions.Builder#addLora(LoraAdapter, float)}); loading the
 * same file again returns the same adapter. Thread-safe. Holds a reference to native memory:
 * {@link #close()} drops it early, otherwise it goes once garbage collected (sessions that use
 * the adapter keep it alive).
 */
public final class LoraAdapter extends NativeResource {
    private final String infoJson;
    private final String name;
    private final String path;

    LoraAdapter(long handle) {
        super("LoRA adapter", handle, NativeBridge::loraFree);
        String[] read;
        long h = acquire();
        try {
            read = NativeBridge.loraInfo(h);
        } catch (RuntimeException | Error e) {
            release();
            close();
            throw e;
        }
        release();
        this.infoJson = read[0];
        this.name = read[1];
        this.path = read[2];
    }

    /**
     * Metadata as JSON: {@code path}, {@code name}, {@code architecture}, {@code alpha},
     * {@code rank}, {@code tensors}, {@code parameters}, {@code size_bytes}, {@code sha256}.
     */
    public String infoJson() {
        return infoJson;
    }

    /** {@code general.name} of the adapter, or its file name. */
    public String getName() {
        return name;
    }

    /** The adapter file. */
    public String getPath() {
        return path;
    }

    /** True when both are the same adapter of the same model. */
    public boolean sameAs(LoraAdapter other) {
        if (other == null) {
            return false;
        }
        long a = acquire();
        try {
            long b = other.acquire();
            try {
                return NativeBridge.loraSame(a, b);
            } finally {
                other.release();
            }
        } finally {
            release();
        }
    }

    @Override
    public String toString() {
        return "LoraAdapter{" + name + ", " + path + (isClosed() ? ", closed" : "") + "}";
    }
}
