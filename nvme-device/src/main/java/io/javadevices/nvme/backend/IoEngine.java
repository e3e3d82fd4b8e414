package io.javadevices.nvme.backend;

/**
 * One queue worker's asynchronous I/O engine: how the commands of one submission queue are in flight
 * together and complete as the storage finishes them, in any order (NVMe 1.4 §6: commands are not ordered
 * unless fused). Every queue worker owns one engine; nothing in it is shared with another queue, so the I/O
 * path takes no lock shared across queues.
 *
 * <p>Operations are identified by a <em>tag</em> in {@code [0, capacity)}: the index of the worker's in-flight
 * slot. A tag is in flight at most once; its completion comes back exactly once, as {@code (tag, result)}
 * with {@code result >= 0} on success (bytes moved, or 0) and {@code result < 0} a negated Linux errno
 * ({@code -EIO}, {@code -EFAULT} for guest memory the kernel could not touch, {@code -ENOTCONN} for a
 * network backend without a connection, ...).
 *
 * <p>Threads: {@link #submit}, {@link #reap}, {@link #await} and {@link #close} run on the worker's thread
 * only; {@link #complete} and {@link #wake} on any thread (a thread-pool thread, an NBD connection's reader,
 * the MMIO thread that rang a doorbell).
 *
 * <p>Implementations: an io_uring ring per queue (files and block devices, through the FFM API), and a
 * bounded thread pool per queue where io_uring is not available; chosen by {@code io-engine=auto} and
 * reported at start.
 */
public interface IoEngine extends AutoCloseable {

    /** Receives completions on the worker's thread ({@link #reap}). */
    interface Completions {
        void completed(int tag, int result);
    }

    /** {@code io_uring} or {@code threads}: for the start-up line and the statistics. */
    String name();

    /** Tags are {@code [0, capacity())}. */
    int capacity();

    /**
     * Hands the operations prepared since the last call to the kernel or the threads (one {@code io_uring_enter}
     * per worker batch, not one per command). Worker thread.
     */
    void submit();

    /** Delivers every completion available now to {@code sink}, without blocking; returns how many. Worker thread. */
    int reap(Completions sink);

    /**
     * Waits up to {@code nanos} for a completion or a {@link #wake}; may return early for no reason (like
     * {@code LockSupport.parkNanos}). Worker thread, only while it has operations in flight.
     */
    void await(long nanos);

    /** Cuts a current or the next {@link #await} short (a doorbell rang). Any thread; cheap when nobody waits. */
    void wake();

    /**
     * Reports the completion of {@code tag} from another thread (a pool thread, a network backend's reader):
     * queued for the next {@link #reap}, and the worker woken if it waits. Allocation-free and lock-free.
     */
    void complete(int tag, int result);

    /**
     * {@link #complete} without waking anyone yet: a thread that completes a burst (a network backend's reader with
     * many replies in one receive) queues each completion quietly and then calls {@link #signalCompleted} once, so
     * the worker's thread is woken once per burst rather than once per completion. Default: {@link #complete}.
     */
    default void completeQuietly(int tag, int result) {
        complete(tag, result);
    }

    /** Wakes the worker for the completions {@link #completeQuietly} queued. Any thread. Default: nothing to do. */
    default void signalCompleted() {
    }

    /**
     * {@code signal} runs after every completion {@link #complete} queued (on the completing thread, after the
     * completion is visible to {@link #hasCompletions}): a queue worker on a shared pool thread, which never waits
     * in {@link #await}, wakes its thread with it. Set once, before the first {@link #submit}.
     */
    default void onCompletion(Runnable signal) {
    }

    /** True if {@link #reap} may deliver something now (false: not known). Worker thread; no system call. */
    default boolean hasCompletions() {
        return false;
    }

    /**
     * True if every completion runs the {@link #onCompletion} signal and shows in {@link #hasCompletions}; false if
     * some may arrive unannounced (the kernel's io_uring CQEs), so that a worker that does not wait in
     * {@link #await} must look periodically.
     */
    default boolean signalsCompletions() {
        return false;
    }

    /**
     * Asks the engine to have its completions signal {@code eventFd} (the eventfd its worker's pool thread sleeps
     * on), where completions come from the kernel without a thread that could run {@link #onCompletion}; true if
     * they will from now on (then {@link #signalsCompletions}). Worker thread. Default: nothing to do.
     */
    default boolean signalEventfd(int eventFd) {
        return false;
    }

    /** Releases the engine. Worker thread, once nothing is in flight. */
    @Override
    void close();
}
