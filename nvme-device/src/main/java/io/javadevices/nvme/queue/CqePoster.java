package io.javadevices.nvme.queue;

import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

/**
 * Posts one SQ's completions to its CQ, or holds them ({@link HeldCompletions}) while the CQ is full or Bus Master
 * Enable is clear (a CQE is DMA too, PCI Local Bus 3.0 §6.2.2), behind any completion already held: the order of the
 * queue's CQEs is the order its commands completed. One interrupt decision per batch of posted CQEs (at most 64).
 * Worker thread only (see {@link QueueWorker#post}).
 */
final class CqePoster {
    private static final int SIGNAL_EVERY = 64;

    private final QueueHost host;
    private final GuestMemory memory;
    private final CompletionQueue cq;
    private final int qid;
    private final QueueStats stats;
    private final HeldCompletions held;
    private final DoorbellSource.Rejects invalidHead;
    private int unsignalled;

    CqePoster(QueueHost host, CompletionQueue cq, int qid, QueueStats stats, HeldCompletions held,
              DoorbellSource.Rejects invalidHead) {
        this.host = host;
        this.memory = host.memory();
        this.cq = cq;
        this.qid = qid;
        this.stats = stats;
        this.held = held;
        this.invalidHead = invalidHead;
    }

    /** Posts a CQE carrying SQ head {@code head}, or holds it. */
    void post(int head, int cid, int status, int dw0) throws GuestMemoryException {
        if (held.isEmpty() && host.busMasterEnabled()
                && cq.post(memory, qid, head, cid, status, dw0, stats, invalidHead)) {
            if (++unsignalled >= SIGNAL_EVERY) {
                signal();
            }
            return;
        }
        if (!held.add(cid, status, dw0)) {
            host.commandFailed(qid, cid, new IllegalStateException("more completions held than commands fetched"));
        }
    }

    /**
     * Posts the held completions, oldest first, while the CQ has room; true once none is left. The SQ head in
     * each is the current one: nothing was fetched since they were held.
     */
    boolean postHeld(int head) throws GuestMemoryException {
        if (!host.busMasterEnabled()) {
            return false;
        }
        while (!held.isEmpty()) {
            if (!cq.post(memory, qid, head, held.firstCid(), held.firstStatus(), held.firstDw0(), stats, invalidHead)) {
                signal();
                return false;
            }
            held.removeFirst();
            if (++unsignalled >= SIGNAL_EVERY) {
                signal();
            }
        }
        signal();
        return true;
    }

    /** One interrupt decision for the completions posted since the last one. */
    void signal() {
        if (unsignalled > 0) {
            int n = unsignalled;
            unsignalled = 0;
            host.completionsPosted(cq, n, stats);
        }
    }
}
