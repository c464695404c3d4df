package io.llmedge;

import java.nio.file.Path;

/** The tamper-evident audit log written by sessions with {@link SessionOptions.Builder#auditDir(String)}. */
public final class Audit {
    private Audit() {}

    /**
     * Verify a log directory (every segment and the anchor) or a single segment file: the hash
     * chain, the sequence, the anchor. Problems are findings in the report ({@link VerifyReport#ok()}
     * false); code 42 only when nothing can be read.
     */
    public static VerifyReport verify(Path path) {
        return verify(LlmedgeException.requireNonNull(path, "path").toString());
    }

    public static VerifyReport verify(String path) {
        return NativeBridge.auditVerify(LlmedgeException.requireNonNull(path, "path"));
    }
}
