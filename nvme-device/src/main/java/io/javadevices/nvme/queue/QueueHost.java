package io.javadevices.nvme.queue;

import io.javadevices.pci.GuestMemory;

/** What a {@link QueueWorker} needs from its controller (implemented as {@link QueueWorker.Controller}). */
public interface QueueHost {
    GuestMemory memory();

    /** A batch of {@code posted} completions was written to {@code cq}: maybe interrupt. */
    void completionsPosted(CompletionQueue cq, int posted, QueueStats stats);

    /** The queue went idle: flush any coalesced interrupt. */
    void flushInterrupts(CompletionQueue cq, QueueStats stats);

    /** An invalid SQ tail was seen in a shadow slot or the polled page (reported once per new value). */
    void invalidSubmissionTail(int qid, int value);

    /**
     * An invalid CQ head was seen in a shadow slot or the polled page (reported once per new value; the
     * poster keeps the head it knew, so nothing is overwritten).
     */
    void invalidCompletionHead(int qid, int value);

    /** An SQE could not be fetched: its slot ({@code address}) is outside guest memory. */
    void commandFetchFailed(int qid, long address);

    /** The CQ could not be written: controller fatal status. */
    void fatal(String why);

    /** A command threw: record it in the error log. */
    void commandFailed(int sqid, int cid, Throwable t);

    /**
     * A polled-doorbell worker woke from an idle park: check what a doorbell write would have
     * triggered (INTx deassertion once the host consumed every completion).
     */
    default void polledIdle() {
    }

    /**
     * An I/O worker began executing commands on a namespace ({@link NamespaceView}, once per view): the
     * controller keeps it for the statistics and the namespace delete grace ({@link WorkerGrace}).
     */
    default void namespaceViewOpened(NamespaceView view) {
    }

    /**
     * May the function master the bus now (PCI command register bit 2)? With it clear a PCI function
     * must not issue memory accesses (PCI Local Bus 3.0 §6.2.2), so the worker fetches nothing.
     */
    default boolean busMasterEnabled() {
        return true;
    }
}
