package io.llmedge;

/**
 * The classifier stage's model for a {@link Router}: a greedy session on a model whose answer is
 * constrained to the route names (no safety or audit: the request's own record carries the
 * decision). Thread-safe; requests that reach it take turns. Keeps the model's weights alive.
 */
public final class RouteClassifier extends NativeResource {
    public RouteClassifier(Model model) {
        super("route classifier", create(model), NativeBridge::routeClassifierFree);
    }

    private static long create(Model model) {
        long h = LlmedgeException.requireNonNull(model, "model").acquire();
        try {
            return NativeBridge.routeClassifierNew(h);
        } finally {
            model.release();
        }
    }
}
