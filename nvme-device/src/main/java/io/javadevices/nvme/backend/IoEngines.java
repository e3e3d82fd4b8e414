package io.javadevices.nvme.backend;


/**
 * Chooses the {@link IoEngine} of the I/O queue workers once per controller (option {@code io-engine}) and makes
 * one per worker. {@code threads}: a {@link ThreadPoolEngine} of {@code io-threads} threads per queue;
 * {@code io_uring}: one ring per queue, refused if the kernel does not let it be set up; {@code auto}: io_uring
 * when it can be set up, else threads. The choice and the reason for a fallback are reported once at start
 * ({@link Choice#description}, logged by the controller).
 */
public final class IoEngines {
    /** Makes the engine of one queue worker: {@code capacity} tags, for the worker's {@code thread}. */
    @FunctionalInterface
    public interface Factory {
        IoEngine create(int capacity, Thread worker);
    }

    /** The engine chosen: what makes each worker's engine, and how to describe it to a user. */
    public record Choice(String name, String description, Factory factory) {
        /** A new engine with {@code capacity} tags for the queue worker running on {@code worker}. */
        public IoEngine create(int capacity, Thread worker) {
            return factory.create(capacity, worker);
        }

        public boolean uring() {
            return name.equals("io_uring");
        }
    }

    private IoEngines() {
    }

    /**
     * @param kind    {@code auto}, {@code io_uring} or {@code threads}
     * @param threads threads per queue for the thread-pool engine
     * @throws IllegalArgumentException {@code io_uring} asked for and not available
     */
    public static Choice choose(String kind, int threads) {
        String uringUnavailable = uringUnavailable();
        if (kind.equals("io_uring") && uringUnavailable != null) {
            throw new IllegalArgumentException("io-engine=io_uring: " + uringUnavailable);
        }
        if (!kind.equals("threads") && uringUnavailable == null) {
            return uringChoice();
        }
        String why = kind.equals("threads") ? "io-engine=threads" : "io_uring not available: " + uringUnavailable;
        return new Choice("threads", "threads (" + threads + " per I/O queue; " + why + ")",
                (capacity, worker) -> new ThreadPoolEngine(worker.getName(), capacity, threads));
    }

    // ------------------------------------------------------------------ io_uring: THE place the ring engine plugs in
    // The lead plugs UringEngine in here: uringUnavailable() returns null once a ring can be set up (probe a
    // small ring and close it; the reason as text otherwise: seccomp, ENOSYS, a kernel too old), and
    // uringChoice() returns new Choice("io_uring", "io_uring (one ring per I/O queue)", UringEngine::open).
    // Until then auto means threads.

    /** Why io_uring cannot be used here, or null if it can. */
    private static String uringUnavailable() {
        return "no io_uring engine in this build";
    }

    private static Choice uringChoice() {
        throw new IllegalStateException("io_uring engine not plugged in");
    }
}
