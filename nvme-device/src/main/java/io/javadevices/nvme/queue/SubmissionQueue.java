package io.javadevices.nvme.queue;

/**
 * A submission queue: ring in guest memory, the MMIO tail doorbell value (written by the MMIO thread)
 * and, once Doorbell Buffer Config is active, its shadow slot. Its head is owned by its worker.
 */
public final class SubmissionQueue {
    public final int qid;
    public final int size;
    public final long base;
    public final CompletionQueue cq;
    public final int priority;

    /** Last valid tail written through BAR0 (validated {@code < size} by the MMIO path). */
    public volatile int mmioTail;
    /** Non-null while DBBUF is active for this queue (never for the admin queue, dbbuf.md §1.5). */
    public volatile ShadowDoorbell shadow;
    /** Non-null with {@code doorbells=polled}: the tail is read from this page, set before the worker starts. */
    public volatile DoorbellPage polled;
    volatile QueueWorker worker;

    public SubmissionQueue(int qid, int size, long base, CompletionQueue cq, int priority) {
        this.qid = qid;
        this.size = size;
        this.base = base;
        this.cq = cq;
        this.priority = priority;
    }

    public QueueWorker worker() {
        return worker;
    }
}
