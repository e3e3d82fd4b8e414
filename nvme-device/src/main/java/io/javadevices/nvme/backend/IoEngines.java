package io.javadevices.nvme.backend;


/**
 * Chooses the {@link IoEngine} of the I/O queue workers once per controller (option {@code io-engine}) and makes
 * one per worker. {@code threads}: a {@link ThreadPoolEngine} of {@code io-threads} threads per queue;
 * {@code io_uring}: one ring per queue, refused if the kernel does not let it be set up; {@code auto}: io_uring
 * when it can be set up, else threads. The choice and the reason for a fallback are reported once at start
 * ({@link Choice#description}, logged by the controller).
 */
public final class IoEngines {
    /** Makes the engine of one queue worker: {@code capacity} tags, for the worker called {@code name}. */
    @FunctionalInterface
    public interface Factory {
        IoEngine create(int capacity, String name);
    }

    /** The engine chosen: what makes each worker's engine, and how to describe it to a user. */
    public record Choice(String name, String description, Factory factory) {
        /** A new engine with {@code capacity} tags for the queue worker called {@code name}. */
        public IoEngine create(int capacity, String name) {
            return factory.create(capacity, name);
        }

        public boolean uring() {
            return name.equals("io_uring");
        }
    }

    private IoEngines() {
    }

    /**
     * Queue {@code qid}'s engine, or null if it cannot be made (an io_uring ring refused for this queue: the
     * locked-memory limit reached after N rings): the queue then runs its commands synchronously, slower but
     * correct, and says so.
     */
    public static IoEngine createOrNull(Factory engines, int tags, String name, int qid) {
        try {
            return engines.create(tags, name);
        } catch (RuntimeException e) {
            System.getLogger(IoEngines.class.getName()).log(System.Logger.Level.WARNING,
                    "queue {0}: no asynchronous I/O engine ({1}); its commands run one at a time", qid, e.toString());
            return null;
        }
    }

    /**
     * @param kind    {@code auto}, {@code io_uring}, {@code threads} or {@code sync}
     * @param threads threads per queue for the thread-pool engine
     * @throws IllegalArgumentException {@code io_uring} asked for and not available
     */
    public static Choice choose(String kind, int threads) {
        if (kind.equals("sync")) {
            // No engine: every command runs on its queue's worker, one at a time (the design before asynchronous
            // execution; kept to compare against and to rule the engines out when chasing a problem). Its backend
            // calls block, so such a queue runs on a thread of its own, never on the shared polling threads (see
            // QueueWorker), as every queue did before the pool.
            return new Choice("sync", "synchronous (one command at a time per I/O queue; io-engine=sync)", null);
        }
        String uringUnavailable = kind.equals("threads") ? null : uringUnavailable();
        if (kind.equals("io_uring") && uringUnavailable != null) {
            throw new IllegalArgumentException("io-engine=io_uring: " + uringUnavailable);
        }
        if (!kind.equals("threads") && uringUnavailable == null) {
            return new Choice("io_uring", "io_uring (one ring per I/O queue; file namespaces through it, "
                    + "other backends complete into it)", UringEngine::open);
        }
        String why = kind.equals("threads") ? "io-engine=threads" : "io_uring not available: " + uringUnavailable;
        return new Choice("threads", "threads (" + threads + " per I/O queue; " + why + ")",
                (capacity, name) -> new ThreadPoolEngine(name, capacity, threads));
    }

    /** The probe's answer, once per process: a seccomp policy or sysctl does not change under a running server. */
    private static volatile String probed;

    /**
     * Why io_uring cannot be used here, or null if it can: sets up a small ring and closes it again. The reason
     * names the errno and its usual cause (ENOSYS: an old kernel; EPERM: {@code kernel.io_uring_disabled} or a
     * seccomp/container policy; ENOMEM: RLIMIT_MEMLOCK before Linux 5.12), see {@link UringEngine#open}.
     */
    private static String uringUnavailable() {
        String answer = probed;
        if (answer == null) {
            try {
                UringEngine.open(2, Thread.currentThread()).close();
                answer = "";
            } catch (RuntimeException e) { // UringUnavailableException, or a denied native access
                answer = e.getMessage() == null ? e.toString() : e.getMessage();
            }
            probed = answer;
        }
        return answer.isEmpty() ? null : answer;
    }
}
