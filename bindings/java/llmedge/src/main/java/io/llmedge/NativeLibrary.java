package io.llmedge;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * Finds and loads {@code libllmedge_jni}, in this order:
 * <ol>
 *   <li>the file named by the system property {@code llmedge.native.library}, if set;</li>
 *   <li>on Android, {@code System.loadLibrary} (the AAR ships it in {@code jniLibs});</li>
 *   <li>a copy in a directory of {@code java.library.path}, if there is one;</li>
 *   <li>the copy bundled in the jar as {@code /native/<os>-<arch>/libllmedge_jni.so},
 *       extracted to a temporary file (deleted right after loading where the OS allows) in
 *       {@code llmedge.native.tmpdir} or else {@code java.io.tmpdir}.</li>
 * </ol>
 */
final class NativeLibrary {
    static final String NAME = "llmedge_jni";
    static final String PATH_PROPERTY = "llmedge.native.library";
    /** Where to extract the bundled library (default java.io.tmpdir; set it when that is mounted noexec). */
    static final String TMPDIR_PROPERTY = "llmedge.native.tmpdir";

    private static String loadedFrom;

    private NativeLibrary() {}

    /** Where the library was loaded from (a path, or "java.library.path"). */
    static synchronized String loadedFrom() {
        return loadedFrom;
    }

    static synchronized void load() {
        if (loadedFrom != null) {
            return;
        }
        String explicit = System.getProperty(PATH_PROPERTY);
        if (explicit != null && !explicit.isEmpty()) {
            System.load(new File(explicit).getAbsolutePath());
            loadedFrom = explicit;
            return;
        }
        if (isAndroid()) {
            System.loadLibrary(NAME);
            loadedFrom = "java.library.path";
            return;
        }
        String fileName = System.mapLibraryName(NAME);
        if (onLibraryPath(fileName)) {
            System.loadLibrary(NAME);
            loadedFrom = "java.library.path";
            return;
        }
        String resource = "/native/" + platform() + "/" + fileName;
        try (InputStream in = NativeLibrary.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new UnsatisfiedLinkError("llmedge: no " + fileName + " on java.library.path and none bundled for "
                        + platform() + " (looked for resource " + resource + "); set -D" + PATH_PROPERTY
                        + "=/path/to/" + fileName);
            }
            String dir = System.getProperty(TMPDIR_PROPERTY);
            Path tmp = dir != null && !dir.isEmpty()
                    ? Files.createTempFile(Paths.get(dir), "llmedge-", "-" + fileName)
                    : Files.createTempFile("llmedge-", "-" + fileName);
            try {
                Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
                System.load(tmp.toAbsolutePath().toString());
            } finally {
                deleteLoaded(tmp);
            }
            loadedFrom = resource;
        } catch (IOException e) {
            UnsatisfiedLinkError error = new UnsatisfiedLinkError("llmedge: cannot extract " + resource + ": " + e);
            error.initCause(e);
            throw error;
        }
    }

    /** A loaded library stays mapped after its file is unlinked (POSIX); Windows keeps it locked. */
    private static void deleteLoaded(Path file) {
        try {
            Files.deleteIfExists(file);
        } catch (IOException e) {
            file.toFile().deleteOnExit();
        }
    }

    private static boolean onLibraryPath(String fileName) {
        String path = System.getProperty("java.library.path", "");
        for (String dir : path.split(File.pathSeparator)) {
            if (!dir.isEmpty() && new File(dir, fileName).isFile()) {
                return true;
            }
        }
        return false;
    }

    private static boolean isAndroid() {
        return "Dalvik".equals(System.getProperty("java.vm.name"))
                || System.getProperty("java.vendor", "").toLowerCase(Locale.ROOT).contains("android");
    }

    /** {@code linux-x86_64}, {@code linux-aarch64}, {@code macos-aarch64}, ... */
    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        String osName = os.contains("linux") ? "linux"
                : os.contains("mac") || os.contains("darwin") ? "macos"
                : os.contains("windows") ? "windows"
                : os.replaceAll("[^a-z0-9]", "");
        String archName = arch.equals("amd64") || arch.equals("x86_64") ? "x86_64"
                : arch.equals("aarch64") || arch.equals("arm64") ? "aarch64"
                : arch.replaceAll("[^a-z0-9_]", "");
        return osName + "-" + archName;
    }
}
