package io.javadevices.nvme.queue;

/**
 * A submission queue (NVMe 1.4 §4.1): ring in guest memory, its tail doorbell ({@link QueueDoorbell}: BAR0,
 * polled page or, once Doorbell Buffer Config is active, its shadow slot) and the worker that owns its head.
 *
 * <p>Threads: the MMIO thread stores BAR0 tail writes ({@link #mmioTail(int)}); the thread that creates or
 * reconfigures queues chooses the doorbell source ({@link #usePolled} before the worker starts,
 * {@link #useShadow} at any time, then kicks the worker); only the worker loads the tail and publishes EventIdx.
 */
public final class SubmissionQueue {
    public final int qid;
    public final int size;
    public final long base;
    public final CompletionQueue cq;
    public final int priority;

    private final QueueDoorbell tail;
    volatile QueueWorker worker;
    /** Valid BAR0 tail writes to this SQ ({@code sq<N>.doorbells.mmio}); the MMIO thread is the only writer. */
    private long mmioWrites;

    public SubmissionQueue(int qid, int size, long base, CompletionQueue cq, int priority) {
        this.qid = qid;
        this.size = size;
        this.base = base;
        this.cq = cq;
        this.priority = priority;
        this.tail = new QueueDoorbell(qid, size, false);
    }

    public QueueWorker worker() {
        return worker;
    }

    /** MMIO thread: a BAR0 tail write, already validated ({@code Nvme.validDoorbell}). With a shadow it only wakes. */
    public void mmioTail(int value) {
        mmioWrites++;
        tail.storeMmio(value);
    }

    /** BAR0 tail writes accepted since this SQ was created (read racily by the statistics: a moment old at most). */
    public long mmioWrites() {
        return mmioWrites;
    }

    /** The last valid tail written through BAR0. */
    public int mmioTail() {
        return tail.mmio();
    }

    /** {@code doorbells=polled}: read the tail from this page (set before the worker starts). */
    public void usePolled(DoorbellPage page) {
        tail.usePolled(page);
    }

    /**
     * Doorbell Buffer Config: the shadow slot is authoritative for the tail from now on. I/O queues only: the
     * admin queue stays on BAR0, as Linux {@code nvme_dbbuf_init} (which skips qid 0) and SPDK expect.
     */
    public void useShadow(ShadowDoorbell slot) {
        tail.useShadow(slot);
    }

    /** The tail the controller works towards (current source if valid, else its fallback, else BAR0). */
    public int knownTail() {
        return tail.known();
    }

    boolean shadowed() {
        return tail.shadowed();
    }

    boolean polled() {
        return tail.polled();
    }

    /** Worker: the tail to consume up to, or {@link DoorbellSource#INVALID}. */
    int loadTail(QueueStats stats, DoorbellSource.Rejects rejects) {
        return tail.load(stats, rejects);
    }

    /** Worker: publishes the SQ EventIdx; false without a (reachable) shadow slot. */
    boolean publishEventIdx(int eventIdx) {
        return tail.publish(eventIdx);
    }
}
