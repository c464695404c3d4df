package io.llmedge;

import java.lang.reflect.Array;
import java.util.Map;

/**
 * The JSON writer for values sent to the native library (template variables and defaults).
 * The core parses the text; this side only serialises: strings, numbers, booleans, null, maps
 * with string keys, iterables and arrays of those.
 */
final class Json {
    private Json() {}

    /** {@code vars} as a JSON object; null stays null (no variables). */
    static String object(Map<String, ?> vars) {
        if (vars == null) {
            return null;
        }
        StringBuilder out = new StringBuilder();
        write(vars, out);
        return out.toString();
    }

    static String write(Object value) {
        StringBuilder out = new StringBuilder();
        write(value, out);
        return out.toString();
    }

    private static void write(Object value, StringBuilder out) {
        if (value == null) {
            out.append("null");
        } else if (value instanceof CharSequence || value instanceof Character) {
            string(value.toString(), out);
        } else if (value instanceof Boolean) {
            out.append(value.toString());
        } else if (value instanceof Number) {
            number((Number) value, out);
        } else if (value instanceof Map) {
            out.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) value).entrySet()) {
                if (!(e.getKey() instanceof String)) {
                    throw new LlmedgeException(ErrorCode.INVALID_ARGUMENT,
                            "invalid argument: map keys must be strings, got " + e.getKey());
                }
                if (!first) {
                    out.append(',');
                }
                first = false;
                string((String) e.getKey(), out);
                out.append(':');
                write(e.getValue(), out);
            }
            out.append('}');
        } else if (value instanceof Iterable) {
            out.append('[');
            boolean first = true;
            for (Object item : (Iterable<?>) value) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                write(item, out);
            }
            out.append(']');
        } else if (value.getClass().isArray()) {
            out.append('[');
            int n = Array.getLength(value);
            for (int i = 0; i < n; i++) {
                if (i > 0) {
                    out.append(',');
                }
                write(Array.get(value, i), out);
            }
            out.append(']');
        } else {
            throw new LlmedgeException(ErrorCode.INVALID_ARGUMENT, "invalid argument: cannot send a "
                    + value.getClass().getName() + " as a template value (use a String, Number, Boolean, Map, List or array)");
        }
    }

    private static void number(Number n, StringBuilder out) {
        if (n instanceof Double || n instanceof Float) {
            double d = n.doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                throw new LlmedgeException(ErrorCode.INVALID_ARGUMENT, "invalid argument: " + d + " is not a JSON number");
            }
            // Java's shortest round-trip form ("1.0", "2.5E-7") is valid JSON for finite values.
            out.append(n instanceof Float ? Float.toString(n.floatValue()) : Double.toString(d));
        } else {
            String text = n.toString();
            // BigDecimal and friends: anything not plain JSON goes through double.
            if (!text.matches("-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?")) {
                number(n.doubleValue(), out);
                return;
            }
            out.append(text);
        }
    }

    private static void string(String s, StringBuilder out) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"':
                    out.append("\\\"");
                    break;
                case '\\':
                    out.append("\\\\");
                    break;
                case '\n':
                    out.append("\\n");
                    break;
                case '\r':
                    out.append("\\r");
                    break;
                case '\t':
                    out.append("\\t");
                    break;
                case '\b':
                    out.append("\\b");
                    break;
                case '\f':
                    out.append("\\f");
                    break;
                default:
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else if (Character.isSurrogate(c) && !validSurrogate(s, i)) {
                        // A lone surrogate is not Unicode text: U+FFFD, as for every other string argument.
                        out.append('\ufffd');
                    } else {
                        out.append(c);
                    }
            }
        }
        out.append('"');
    }

    private static boolean validSurrogate(String s, int i) {
        char c = s.charAt(i);
        if (Character.isHighSurrogate(c)) {
            return i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1));
        }
        return i > 0 && Character.isHighSurrogate(s.charAt(i - 1));
    }
}
