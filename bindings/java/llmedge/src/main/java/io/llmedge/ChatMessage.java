package io.llmedge;

import java.util.Objects;

/** One message of a conversation. */
public final class ChatMessage {
    // Read by the native library by name (bindings/java/src/convert.rs).
    private final String role;
    private final String content;

    /** A message; {@code role} is {@code system}, {@code user}, {@code assistant} or any role the template knows. */
    public ChatMessage(String role, String content) {
        this.role = LlmedgeException.requireNonNull(role, "role");
        this.content = LlmedgeException.requireNonNull(content, "content");
    }

    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }

    public String getRole() {
        return role;
    }

    public String getContent() {
        return content;
    }

    @Override
    public boolean equals(Object o) {
        if (this == o) {
            return true;
        }
        if (!(o instanceof ChatMessage)) {
            return false;
        }
        ChatMessage other = (ChatMessage) o;
        return role.equals(other.role) && content.equals(other.content);
    }

    @Override
    public int hashCode() {
        return Objects.hash(role, content);
    }

    @Override
    public String toString() {
        return role + ": " + content;
    }
}
