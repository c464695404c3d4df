package io.llmedge;

/** The outcome of {@link Audit#verify}: the core's {@code llmedge::audit::VerifyReport}. */
public final class VerifyReport {
    private final boolean ok;
    private final long records;
    private final int files;
    private final long lastSeq;
    private final String lastHash;
    private final long unanchored;
    private final int failures;
    private final String json;
    private final String text;

    /** Built by the native library. */
    VerifyReport(boolean ok, long records, int files, long lastSeq, String lastHash, long unanchored, int failures,
            String json, String text) {
        this.ok = ok;
        this.records = records;
        this.files = files;
        this.lastSeq = lastSeq;
        this.lastHash = lastHash;
        this.unanchored = unanchored;
        this.failures = failures;
        this.json = json;
        this.text = text;
    }

    /** No failure findings (warnings such as a torn last line allowed). */
    public boolean ok() {
        return ok;
    }

    /** Lines that parse as records, whether or not they verify. */
    public long records() {
        return records;
    }

    /** Segments read. */
    public int files() {
        return files;
    }

    /** Sequence number of the last record in the verified chain (0 if none). */
    public long lastSeq() {
        return lastSeq;
    }

    /** Hash of the last record in the verified chain: keep it somewhere the log's writers cannot write. */
    public String lastHash() {
        return lastHash;
    }

    /** Records after the anchor: chained, but their removal could not be detected. */
    public long unanchored() {
        return unanchored;
    }

    /** Findings that make verification fail. */
    public int failures() {
        return failures;
    }

    /** The whole report as JSON (the form {@code llmedge audit verify --json} prints, findings included). */
    public String json() {
        return json;
    }

    /** The text {@code llmedge audit verify} prints. */
    @Override
    public String toString() {
        return text;
    }
}
