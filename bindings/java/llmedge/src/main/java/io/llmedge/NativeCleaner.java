package io.llmedge;

import java.lang.ref.PhantomReference;
import java.lang.ref.Reference;
import java.lang.ref.ReferenceQueue;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;

/**
 * A minimal {@code java.lang.ref.Cleaner}: runs an action once its owner is unreachable, or
 * earlier when asked. Written out because {@code Cleaner} needs Android API 33, and the same
 * sources build the Android library.
 */
final class NativeCleaner {
    private static final ReferenceQueue<Object> QUEUE = new ReferenceQueue<>();
    /** Keeps the phantom references themselves reachable until they are cleaned. */
    private static final Set<Cleanable> LIVE = Collections.synchronizedSet(
            Collections.newSetFromMap(new IdentityHashMap<>()));
    private static final boolean HAS_FENCE = hasReachabilityFence();

    static {
        Thread t = new Thread(NativeCleaner::drain, "llmedge-cleaner");
        t.setDaemon(true);
        t.start();
    }

    private NativeCleaner() {}

    /** A registered action; {@link #clean()} runs it at most once. */
    static final class Cleanable extends PhantomReference<Object> {
        private final Runnable action;

        private Cleanable(Object owner, Runnable action) {
            super(owner, QUEUE);
            this.action = action;
        }

        void clean() {
            if (LIVE.remove(this)) {
                clear();
                action.run();
            }
        }
    }

    /** Run {@code action} when {@code owner} becomes unreachable. The action must not refer to the owner. */
    static Cleanable register(Object owner, Runnable action) {
        Cleanable c = new Cleanable(owner, action);
        LIVE.add(c);
        return c;
    }

    /** Keep {@code o} reachable up to this point (after a native call that uses its handle). */
    static void reachabilityFence(Object o) {
        if (HAS_FENCE) {
            Reference.reachabilityFence(o);
        } else {
            // Older Android: a lock on the object cannot be elided while the object escapes.
            synchronized (o) {
                // nothing: the monitor itself is the fence
            }
        }
    }

    private static boolean hasReachabilityFence() {
        try {
            Reference.class.getMethod("reachabilityFence", Object.class);
            return true;
        } catch (NoSuchMethodException | SecurityException e) {
            return false;
        }
    }

    private static void drain() {
        while (true) {
            try {
                ((Cleanable) QUEUE.remove()).clean();
            } catch (InterruptedException e) {
                // a daemon thread: keep draining
            } catch (Throwable t) {
                // a failing free must not stop the cleaner for everything else
            }
        }
    }
}
