package io.llmedge;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/** The model the tests run: $LLMEDGE_TEST_MODEL, else llmedge's default model (fetched if needed). */
final class TestModels {
    private static String path;

    private TestModels() {}

    static synchronized String path() {
        if (path == null) {
            String env = System.getenv("LLMEDGE_TEST_MODEL");
            path = env != null && !env.isEmpty() ? env : Llmedge.defaultModelPath();
            if (!Files.isRegularFile(Paths.get(path))) {
                throw new IllegalStateException("test model not found: " + path);
            }
        }
        return path;
    }

    /**
     * The test model with one thread per session: tests run sessions side by side, and on a busy
     * machine llama.cpp's spinning worker threads slow down several-fold when they outnumber the
     * free cores.
     */
    static Model load() {
        return Model.load(path(), ModelOptions.builder().threads(1).build());
    }

    /** The llmedge CLI built by cargo (passed by the build as -Dllmedge.cli). */
    static Path cli() throws IOException {
        String cli = System.getProperty("llmedge.cli");
        if (cli == null || cli.isEmpty()) {
            throw new IllegalStateException("-Dllmedge.cli is not set");
        }
        Path p = Paths.get(cli).toAbsolutePath().normalize();
        if (!Files.isExecutable(p)) {
            throw new IllegalStateException("llmedge CLI not found at " + p + ": run `cargo build --release --workspace` first");
        }
        return p;
    }

    /** Greedy options, as the CLI's --greedy -n N. */
    static GenerateOptions greedy(int maxTokens) {
        return GenerateOptions.builder().greedy(true).maxTokens(maxTokens).build();
    }

    /** VmRSS of this process in KiB (Linux). */
    static long rssKiB() throws IOException {
        for (String line : Files.readAllLines(Paths.get("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new IllegalStateException("no VmRSS in /proc/self/status");
    }
}
