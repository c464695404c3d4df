package io.llmedge;

import java.nio.file.Path;

/**
 * The safety layer on its own: sensitive-term filtering and PII redaction under a policy, for
 * checking text outside a generation (sessions apply it to every request already; see
 * {@link SessionOptions.Builder#safetyPolicy(String)}). Thread-safe. Holds native memory:
 * {@link #close()} frees it early, otherwise it is freed once garbage collected.
 *
 * <p>Results are JSON: {@code verdict} ({@code {"verdict":"allow"}}, {@code "flag"}, or
 * {@code "block"} with {@code category} and {@code message}), {@code text} (redacted),
 * {@code matches}, {@code redactions}, and for inputs {@code pii}.
 */
public final class Safety extends NativeResource {
    private Safety(long handle) {
        super("safety", handle, NativeBridge::safetyFree);
    }

    /** The built-in policy (Chinese and English lexicons, every PII kind). */
    public Safety() {
        this(NativeBridge.safetyNew(null));
    }

    /** A policy file (TOML); code 41 for an invalid file (with its line), 50 when it cannot be read. */
    public static Safety fromPolicyFile(Path path) {
        return fromPolicyFile(LlmedgeException.requireNonNull(path, "path").toString());
    }

    public static Safety fromPolicyFile(String path) {
        return new Safety(NativeBridge.safetyNew(LlmedgeException.requireNonNull(path, "path")));
    }

    /** Check and redact a user input, as a request's input is checked. */
    public String checkInput(String text) {
        return check(text, false);
    }

    /** Check and redact a complete model output (its {@code text} is empty when blocked). */
    public String checkOutput(String text) {
        return check(text, true);
    }

    private String check(String text, boolean output) {
        long h = acquire();
        try {
            return NativeBridge.safetyCheck(h, text, output);
        } finally {
            release();
        }
    }
}
