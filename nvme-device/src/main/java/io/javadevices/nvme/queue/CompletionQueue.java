package io.javadevices.nvme.queue;

import io.javadevices.nvme.spec.CqeLayout;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

import java.util.Arrays;

/**
 * A completion queue (NVMe 1.4 §4.6): ring in guest memory, tail and phase owned by the posting worker, head
 * doorbell ({@link QueueDoorbell}: BAR0, polled page or, with DBBUF on an I/O queue, the shadow slot).
 *
 * <p>Poster-owned state (tail, phase, cached head, pending interrupts, the head source's change tracking) has
 * one rule, applied here and nowhere else ({@link #post} and the interrupt bookkeeping): Linux maps one SQ per CQ,
 * and while only one SQ posts here it is touched without a lock; once several SQs share this CQ
 * ({@link #attach}) posters serialise on this object's monitor, never switched back. When a second SQ
 * attaches, its worker fetches nothing ({@link #handedOver}) until every earlier poster has seen the CQ shared
 * outside a post, so an unlocked post already under way can never interleave with a locked one.
 *
 * <p>Threads: the MMIO thread stores BAR0 head writes ({@link #mmioHead(int)}) and wakes blocked posters; the
 * queue-creating thread chooses the head source ({@link #usePolled}, {@link #useShadow}); {@link #hostHead}
 * and {@link #publishEventIdx} may run on any thread.
 */
public final class CompletionQueue {
    public final int qid;
    public final int size;
    public final long base;
    public final int vector;
    private final boolean interruptsEnabled;

    private final QueueDoorbell head;
    /** True once more than one SQ posted here: posting then takes this object's lock (never switched back). */
    private volatile boolean shared;
    /** Set by a poster blocked on a full queue, so the CQ doorbell wakes it. */
    volatile boolean waiting;
    private volatile SubmissionQueue[] sqs = new SubmissionQueue[0];

    // Owned by the poster (under the lock when shared).
    private int tail;
    private boolean phase = true;
    private int cachedHead;
    private int pendingInterrupts;

    public CompletionQueue(int qid, int size, long base, int vector, boolean interruptsEnabled) {
        this.qid = qid;
        this.size = size;
        this.base = base;
        this.vector = vector;
        this.interruptsEnabled = interruptsEnabled;
        this.head = new QueueDoorbell(qid, size, true);
    }

    /** Create I/O Completion Queue IEN (NVMe 1.4 §5.3): false = never interrupt for this CQ. */
    public boolean interruptsEnabled() {
        return interruptsEnabled;
    }

    /** MMIO thread: a BAR0 head write, already validated ({@code Nvme.validDoorbell}). */
    public void mmioHead(int value) {
        head.storeMmio(value);
    }

    /** The last valid head written through BAR0. */
    public int mmioHead() {
        return head.mmio();
    }

    /** {@code doorbells=polled}: read the head from this page (set before the CQ is used). */
    public void usePolled(DoorbellPage page) {
        head.usePolled(page);
    }

    /**
     * Doorbell Buffer Config: publishes {@code eventIdx} in the slot, then reads the head from its shadow slot.
     * Returns false, keeping the current source, if the slot is not reachable.
     */
    public boolean useShadow(ShadowDoorbell slot, int eventIdx) {
        try {
            slot.publish(eventIdx);
        } catch (GuestMemoryException e) {
            return false;
        }
        head.useShadow(slot);
        return true;
    }

    /** Publishes the CQ EventIdx if a shadow slot is in use (any thread); false if none or unreachable. */
    public boolean publishEventIdx(int eventIdx) {
        return head.publish(eventIdx);
    }

    /** The head the controller knows (current source if valid, else its fallback, else BAR0). */
    public int knownHead() {
        return head.known();
    }

    /** The host's head as seen now, validated, for INTx deassertion; -1 if invalid or unreachable. */
    public int hostHead() {
        return head.peek();
    }

    public int tail() {
        return tail;
    }

    boolean shared() {
        return shared;
    }

    public synchronized void attach(SubmissionQueue sq) {
        SubmissionQueue[] next = Arrays.copyOf(sqs, sqs.length + 1);
        next[sqs.length] = sq;
        if (next.length > 1) {
            shared = true;
        }
        sqs = next;
    }

    /**
     * Asked by a worker before its first fetch: true unless this CQ is shared and another of its workers does not
     * yet post only under the lock (it acknowledges at its next post or poll; it is kicked to make that soon) and
     * has not ended. Never waits: the asking worker's thread may be the one that runs the other worker.
     */
    boolean handedOver(QueueWorker self) {
        if (!shared) {
            return true;
        }
        for (SubmissionQueue other : sqs) {
            QueueWorker w = other.worker;
            if (w != null && w != self && !w.postsLockedOrGone()) {
                w.kick();
                return false;
            }
        }
        return true;
    }

    public synchronized void detach(SubmissionQueue sq) {
        sqs = Arrays.stream(sqs).filter(s -> s != sq).toArray(SubmissionQueue[]::new);
    }

    public boolean hasSubmissionQueues() {
        return sqs.length > 0;
    }

    /** Wakes posters blocked on a full queue (called after a head doorbell). */
    public void wakePosters() {
        if (waiting) {
            for (SubmissionQueue sq : sqs) {
                QueueWorker w = sq.worker;
                if (w != null) {
                    w.wake();
                }
            }
        }
    }

    /**
     * Writes one CQE (NVMe 1.4 §4.6, Figure 124, {@link CqeLayout}) if there is room (false if the queue is full):
     * DW0 and DW1 (command specific, DW1 reserved: 0) as one long, SQHD and SQID as one int, then CID and STATUS
     * (phase tag in bit 0) as one int written last with release semantics, so the host never sees the new phase
     * before the rest of the entry. An invalid head the host left in a shadow slot or the polled page goes to
     * {@code rejects} (once per value) and the known head is kept.
     */
    boolean post(GuestMemory memory, int sqid, int sqHead, int cid, int status, int dw0, QueueStats stats,
                 DoorbellSource.Rejects rejects) throws GuestMemoryException {
        if (!shared) {
            return tryPost(memory, sqid, sqHead, cid, status, dw0, stats, rejects);
        }
        synchronized (this) {
            return tryPost(memory, sqid, sqHead, cid, status, dw0, stats, rejects);
        }
    }

    private boolean tryPost(GuestMemory memory, int sqid, int sqHead, int cid, int status, int dw0, QueueStats stats,
                            DoorbellSource.Rejects rejects) throws GuestMemoryException {
        int next = tail + 1 == size ? 0 : tail + 1;
        if (next == cachedHead) {
            refreshHead(stats, rejects);
            if (next == cachedHead) {
                return false;
            }
        }
        long at = base + tail * CqeLayout.SIZE;
        memory.writeLong(at + CqeLayout.DW0, dw0 & 0xFFFF_FFFFL);
        memory.writeInt(at + CqeLayout.SQHD, (sqHead & 0xFFFF) | (sqid << 16));
        memory.storeIntRelease(at + CqeLayout.CID, (cid & 0xFFFF) | (phase ? 1 << 16 : 0) | (status & 0x7FFF) << 17);
        tail = next;
        if (next == 0) {
            phase = !phase;
        }
        return true;
    }

    /** Re-reads the host's head (an invalid value keeps the cached one); true if it moved. Poster only. */
    boolean headMoved(QueueStats stats, DoorbellSource.Rejects rejects) {
        synchronized (this) { // rare (full queue): always locked, also correct before the CQ is shared
            int before = cachedHead;
            refreshHead(stats, rejects);
            return cachedHead != before;
        }
    }

    private void refreshHead(QueueStats stats, DoorbellSource.Rejects rejects) {
        int h = head.load(stats, rejects);
        if (h != DoorbellSource.INVALID) {
            cachedHead = h;
        }
    }

    int cachedHead() {
        return cachedHead;
    }

    /**
     * Interrupt coalescing bookkeeping (Set Features 08h, NVMe 1.4 §5.21.1.8): adds {@code posted}
     * completions and returns true (clearing the count) if an interrupt should fire now ({@code threshold} =
     * entries per interrupt, 1 = no coalescing). Poster only.
     */
    public boolean addPendingInterrupts(int posted, int threshold) {
        return interruptDue(posted, threshold);
    }

    /** True (and clears) if completions are waiting for a coalesced interrupt. Poster only. */
    public boolean takePendingInterrupts() {
        return interruptDue(0, 1);
    }

    private boolean interruptDue(int posted, int threshold) {
        if (!shared) {
            return countPending(posted, threshold);
        }
        synchronized (this) {
            return countPending(posted, threshold);
        }
    }

    private boolean countPending(int posted, int threshold) {
        pendingInterrupts += posted;
        if (pendingInterrupts > 0 && pendingInterrupts >= threshold) {
            pendingInterrupts = 0;
            return true;
        }
        return false;
    }
}
