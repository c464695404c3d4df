package io.llmedge;

/**
 * Routing rules between domain models and adapters, compiled from TOML: {@code [[routes]]}
 * tables as in {@code llmedge serve}'s configuration (name, model, adapters, models, tenants,
 * keywords, regex, default) and an optional {@code [router.classifier]} table. Rules apply in order:
 * model name, tenant, keywords, regex, classifier, default. Immutable and thread-safe.
 */
public final class Router extends NativeResource {
    private Router(long handle) {
        super("router", handle, NativeBridge::routerFree);
    }

    /** Compile TOML text; a mistake throws {@link ErrorCode#CONFIG} naming its line. */
    public static Router fromToml(String toml) {
        return new Router(NativeBridge.routerFromToml(toml));
    }

    /** Compile the TOML file at {@code path} ({@link ErrorCode#IO} when it cannot be read). */
    public static Router fromFile(String path) {
        return new Router(NativeBridge.routerFromFile(path));
    }

    /** {@link #route(String, String, String, RouteClassifier)} without a model name, tenant or classifier. */
    public String route(String text) {
        return route(text, null, null, null);
    }

    /**
     * Decide where a request goes: JSON {@code {"route", "model", "adapters": [{"name",
     * "scale"}], "rule", "matched"}} (no "matched" for the default rule). {@code model} is the
     * model name the request asked for (null: none), {@code tenant} the caller's (null: none).
     * {@code classifier} (may be null) is needed only when a request reaches the classifier
     * stage; without it that throws {@link ErrorCode#INVALID_ARGUMENT}.
     */
    public String route(String text, String model, String tenant, RouteClassifier classifier) {
        long h = acquire();
        try {
            if (classifier == null) {
                return NativeBridge.routerRoute(h, 0, text, model, tenant);
            }
            long c = classifier.acquire();
            try {
                return NativeBridge.routerRoute(h, c, text, model, tenant);
            } finally {
                classifier.release();
            }
        } finally {
            release();
        }
    }
}
