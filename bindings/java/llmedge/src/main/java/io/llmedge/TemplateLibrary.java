package io.llmedge;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * Prompt templates by name: the built-ins ({@code role_en}/{@code role_zh}, {@code cot_*},
 * {@code few_shot_*}, {@code extract_fields_*}, {@code insurance_claim_review_*}) and folders of
 * TOML files. Thread-safe. Holds native memory: {@link #close()} frees it early, otherwise it is
 * freed once the object is garbage collected; templates taken from it stay valid.
 */
public final class TemplateLibrary extends NativeResource {
    private TemplateLibrary(long handle) {
        super("template library", handle, NativeBridge::libraryFree);
    }

    /** An empty library. */
    public TemplateLibrary() {
        this(NativeBridge.libraryNew(false));
    }

    /** The built-in templates (compiled in, so they work offline). */
    public static TemplateLibrary builtin() {
        return new TemplateLibrary(NativeBridge.libraryNew(true));
    }

    /** Every {@code *.toml} file in {@code dir}, in name order. Errors name the file and line. */
    public static TemplateLibrary loadDir(Path dir) {
        TemplateLibrary lib = new TemplateLibrary();
        try {
            lib.addDir(dir);
        } catch (RuntimeException e) {
            lib.close();
            throw e;
        }
        return lib;
    }

    /** {@link #loadDir(Path)} from a path string. */
    public static TemplateLibrary loadDir(String dir) {
        return loadDir(java.nio.file.Paths.get(LlmedgeException.requireNonNull(dir, "dir")));
    }

    /**
     * Add every {@code *.toml} file in {@code dir}; a template replaces one of the same name. On
     * an error the library is unchanged.
     */
    public TemplateLibrary addDir(Path dir) {
        String path = LlmedgeException.requireNonNull(dir, "dir").toString();
        long h = acquire();
        try {
            NativeBridge.libraryAddDir(h, path);
        } finally {
            release();
        }
        return this;
    }

    /** Add or replace one template (a copy). */
    public TemplateLibrary add(PromptTemplate template) {
        LlmedgeException.requireNonNull(template, "template");
        long h = acquire();
        try {
            long t = template.acquire();
            try {
                NativeBridge.libraryInsert(h, t);
            } finally {
                template.release();
            }
        } finally {
            release();
        }
        return this;
    }

    /** A copy of the named template; code 30 for an unknown name (the message lists the known ones). */
    public PromptTemplate get(String name) {
        long h = acquire();
        try {
            return new PromptTemplate(NativeBridge.libraryGet(h, name));
        } finally {
            release();
        }
    }

    /** Template names, sorted. */
    public List<String> names() {
        long h = acquire();
        try {
            return Collections.unmodifiableList(Arrays.asList(NativeBridge.libraryNames(h)));
        } finally {
            release();
        }
    }

    @Override
    public String toString() {
        return isClosed() ? "TemplateLibrary{closed}" : "TemplateLibrary" + names();
    }
}
