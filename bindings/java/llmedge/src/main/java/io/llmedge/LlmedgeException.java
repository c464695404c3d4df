package io.llmedge;

/**
 * Every failure of llmedge: a bad argument, a missing or corrupt model, a closed object, a
 * caught native panic. {@link #getCode()} is the stable numeric code (see {@link ErrorCode}).
 *
 * <p>Unchecked, so it passes through lambdas, streams and Kotlin code unchanged.
 */
public class LlmedgeException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int code;

    /** Thrown by the native library with the core's code and message. */
    public LlmedgeException(int code, String message) {
        super(message);
        this.code = code;
    }

    public LlmedgeException(int code, String message, Throwable cause) {
        super(message, cause);
        this.code = code;
    }

    public LlmedgeException(ErrorCode code, String message) {
        this(code.code(), message);
    }

    /** The stable numeric code, equal to the Rust core's {@code ErrorCode}. */
    public int getCode() {
        return code;
    }

    /** The code as an enum constant. */
    public ErrorCode getErrorCode() {
        return ErrorCode.fromCode(code);
    }

    @Override
    public String toString() {
        return getClass().getName() + "[" + code + " " + getErrorCode().name().toLowerCase(java.util.Locale.ROOT)
                + "]: " + getMessage();
    }

    static LlmedgeException closed(String what) {
        return new LlmedgeException(ErrorCode.CLOSED, what + " is closed");
    }

    static LlmedgeException nullArgument(String name) {
        return new LlmedgeException(ErrorCode.NULL_ARGUMENT, "null argument: " + name);
    }

    static <T> T requireNonNull(T value, String name) {
        if (value == null) {
            throw nullArgument(name);
        }
        return value;
    }
}
