package io.llmedge;

/**
 * The stable error codes shared by every llmedge surface (Rust, C, Python, Java, CLI).
 * The numbers equal the Rust core's {@code ErrorCode}; they never change.
 */
public enum ErrorCode {
    /** An argument is out of range or malformed. */
    INVALID_ARGUMENT(1),
    /** A required argument was null. */
    NULL_ARGUMENT(2),
    /** Text that must be UTF-8 is not. */
    INVALID_UTF8(3),
    /** The model file does not exist or cannot be opened. */
    MODEL_NOT_FOUND(10),
    /** The file is not a valid GGUF model (bad magic, truncated, corrupt tensors). */
    INVALID_MODEL(11),
    /** The GGUF names an architecture this build of llama.cpp does not know. */
    UNSUPPORTED_ARCHITECTURE(12),
    /** The model or its context does not fit in the available memory. */
    OUT_OF_MEMORY(13),
    /** llama.cpp refused the model for another reason. */
    MODEL_LOAD(14),
    /** A LoRA adapter does not fit the model (architecture, shapes), is not a LoRA adapter or is unreadable. */
    ADAPTER(15),
    /** The model file is not in the manifest, or its hash or signature does not match. */
    MODEL_INTEGRITY(16),
    /** The vision projector is missing, not a projector, or made for another text model. */
    PROJECTOR(17),
    /** An image is corrupt, of an unsupported format, or over a limit. */
    IMAGE(18),
    /** A DICOM file has an unsupported transfer syntax, no pixel data, or no such frame. */
    DICOM(19),
    /** A llama.cpp context could not be created. */
    CONTEXT_CREATE(20),
    /** The request does not fit in the context window. */
    CONTEXT_OVERFLOW(21),
    /** llama.cpp failed while evaluating tokens. */
    DECODE(22),
    /** Text could not be tokenized, or a token id is outside the vocabulary. */
    TOKENIZE(23),
    /** A chat or prompt template failed to parse or render. */
    TEMPLATE(30),
    /** The model has no chat template and the caller gave none. */
    NO_CHAT_TEMPLATE(31),
    /** A prompt template got missing or unknown variables (the message lists both). */
    TEMPLATE_VARIABLES(32),
    /** A JSON schema, regex or grammar cannot be turned into a llama.cpp grammar. */
    GRAMMAR(33),
    /** Constrained output is unusable: generation stopped before the JSON was complete. */
    STRUCTURED_OUTPUT(34),
    /** The request or the output was blocked by the safety policy. */
    SAFETY_BLOCKED(40),
    /** A safety policy or lexicon file is invalid (the message names the file and line). */
    POLICY(41),
    /** The audit log could not be opened, written or recovered (the message names the file). */
    AUDIT(42),
    /** A file could not be read or written. */
    IO(50),
    /** A downloaded or cached file does not have the expected SHA-256. */
    CHECKSUM_MISMATCH(51),
    /** A model could not be fetched. */
    FETCH(52),
    /** The object was closed and can no longer be used. */
    CLOSED(60),
    /** The engine's queue is full, or all of a model's max sessions are open: retry later. */
    BUSY(70),
    /** The request ran past its deadline, queued or generating. */
    TIMEOUT(71),
    /** A saved session state is corrupt or belongs to another model or adapter set. */
    STATE(72),
    /** A server configuration file is invalid (the message names the file and line). */
    CONFIG(73),
    /** A request is over a configured resource limit, such as the model's max prompt tokens. */
    LIMIT(74),
    /** A bug inside llmedge. */
    INTERNAL(98),
    /** A Rust panic was caught at the JNI boundary. */
    PANIC(99);

    private final int code;

    ErrorCode(int code) {
        this.code = code;
    }

    /** The stable number. */
    public int code() {
        return code;
    }

    /** The code for a number, or {@link #INTERNAL} for a number llmedge does not define. */
    public static ErrorCode fromCode(int code) {
        for (ErrorCode c : values()) {
            if (c.code == code) {
                return c;
            }
        }
        return INTERNAL;
    }
}
