package io.llmedge;

/**
 * How images are read: limits (0 = the default: 64 MiB, 16384 pixels per side, 50 million
 * pixels) and, for DICOM, a window to use instead of the file's Window Center/Width and the
 * frame of a multi-frame file. Immutable; build with {@link #builder()}.
 */
public final class ImageOptions {
    private final long maxBytes;
    private final int maxSide;
    private final long maxPixels;
    private final double[] window;
    private final int frame;

    private ImageOptions(Builder b) {
        this.maxBytes = b.maxBytes;
        this.maxSide = b.maxSide;
        this.maxPixels = b.maxPixels;
        this.window = b.window == null ? null : b.window.clone();
        this.frame = b.frame;
    }

    public static ImageOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    long maxBytes() {
        return maxBytes;
    }

    int maxSide() {
        return maxSide;
    }

    long maxPixels() {
        return maxPixels;
    }

    double[] window() {
        return window == null ? null : window.clone();
    }

    int frame() {
        return frame;
    }

    public static final class Builder {
        private long maxBytes;
        private int maxSide;
        private long maxPixels;
        private double[] window;
        private int frame;

        private Builder() {}

        public Builder maxBytes(long n) {
            this.maxBytes = n;
            return this;
        }

        public Builder maxSide(int n) {
            this.maxSide = n;
            return this;
        }

        public Builder maxPixels(long n) {
            this.maxPixels = n;
            return this;
        }

        /** DICOM window (width at least 1) instead of the file's Window Center/Width. */
        public Builder dicomWindow(double center, double width) {
            this.window = new double[] {center, width};
            return this;
        }

        /** DICOM frame, 0-based (code 19 when the file has no such frame). */
        public Builder dicomFrame(int frame) {
            this.frame = frame;
            return this;
        }

        public ImageOptions build() {
            return new ImageOptions(this);
        }
    }
}
