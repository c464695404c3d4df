package io.llmedge;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/** One message of a conversation. */
public final class ChatMessage {
    // Read by the native library by name (bindings/java/src/convert.rs).
    private final String role;
    private final String content;
    private final Image[] images;

    /** A message; {@code role} is {@code system}, {@code user}, {@code assistant} or any role the template knows. */
    public ChatMessage(String role, String content) {
        this(role, content, new Image[0]);
    }

    /**
     * A message with images (for a vision-language model, {@link Model#loadMmproj(String)}):
     * each stands at a {@code <__media__>} marker in {@code content}, or before the text when
     * it has none.
     */
    public ChatMessage(String role, String content, Image... images) {
        this.role = LlmedgeException.requireNonNull(role, "role");
        this.content = LlmedgeException.requireNonNull(content, "content");
        this.images = LlmedgeException.requireNonNull(images, "images").clone();
        for (Image i : this.images) {
            LlmedgeException.requireNonNull(i, "image");
        }
    }

    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    /** A user message with images. */
    public static ChatMessage user(String content, Image... images) {
        return new ChatMessage("user", content, images);
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

    public List<Image> getImages() {
        return Arrays.asList(images.clone());
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
        return role.equals(other.role) && content.equals(other.content) && Arrays.equals(images, other.images);
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
