package io.llmedge;

import java.nio.file.Path;

/**
 * A decoded image for a vision-language model: RGB8 pixels and their SHA-256. Reads PNG, JPEG,
 * WebP, BMP, TIFF, GIF (first frame) and DICOM (windowed; see {@link ImageOptions}); grayscale
 * and 16-bit images become RGB and EXIF orientation is applied. Only pixels are kept (no EXIF,
 * no DICOM tags). Immutable and thread-safe; {@link #close()} frees the pixels early, messages
 * that carry the image keep their own reference.
 */
public final class Image extends NativeResource {
    private final int width;
    private final int height;
    private final String sha256;

    private Image(long handle) {
        super("image", handle, NativeBridge::imageFree);
        long h = acquire();
        try {
            int[] size = NativeBridge.imageSize(h);
            this.width = size[0];
            this.height = size[1];
            this.sha256 = NativeBridge.imageSha256(h);
        } finally {
            release();
        }
    }

    /** Read an image file with the default limits. Throws codes 18 (image), 19 (DICOM), 50 (I/O). */
    public static Image open(String path) {
        return open(path, ImageOptions.defaults());
    }

    public static Image open(Path path) {
        return open(LlmedgeException.requireNonNull(path, "path").toString());
    }

    /** Read an image file with {@code options} (limits, DICOM window and frame). */
    public static Image open(String path, ImageOptions options) {
        ImageOptions o = options == null ? ImageOptions.defaults() : options;
        return new Image(NativeBridge.imageOpen(LlmedgeException.requireNonNull(path, "path"), o.maxBytes(),
                o.maxSide(), o.maxPixels(), o.window(), o.frame()));
    }

    /** Decode an encoded image (or DICOM file) held in memory. */
    public static Image fromBytes(byte[] data, ImageOptions options) {
        ImageOptions o = options == null ? ImageOptions.defaults() : options;
        return new Image(NativeBridge.imageFromBytes(LlmedgeException.requireNonNull(data, "data"), o.maxBytes(),
                o.maxSide(), o.maxPixels(), o.window(), o.frame()));
    }

    public int getWidth() {
        return width;
    }

    public int getHeight() {
        return height;
    }

    /** SHA-256 of the size and pixels: the embedding cache key, and what the audit log records. */
    public String getSha256() {
        return sha256;
    }

    @Override
    public String toString() {
        return "Image{" + width + "x" + height + ", sha256=" + sha256.substring(0, 12) + (isClosed() ? ", closed" : "") + "}";
    }
}
