package io.javadevices.nvme.queue;

import io.javadevices.nvme.spec.CqeLayout;
import io.javadevices.nvme.spec.Nvme;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

import java.util.Arrays;
import java.util.concurrent.locks.LockSupport;

/**
 * A completion queue (NVMe 1.4 §4.6): ring in guest memory, tail and phase owned by the posting worker,
 * head from the MMIO doorbell or (DBBUF active, qid ≥ 1) the shadow slot. Linux maps one SQ per CQ;
 * when several SQs share this CQ ({@link #shared}) posters serialise on this object's monitor.
 *
 * <p>The single-SQ case posts without a lock. When a second SQ attaches, its worker first waits
 * ({@link #awaitHandOver}) until every earlier poster has seen {@link #shared} outside a post, so an
 * unlocked post already under way can never interleave with a locked one on tail and phase.
 */
public final class CompletionQueue {
    public final int qid;
    public final int size;
    public final long base;
    public final int vector;
    public final boolean interruptsEnabled;

    public volatile int mmioHead;
    public volatile ShadowDoorbell shadow;
    /** Non-null with {@code doorbells=polled}: the head is read from this page (set before the CQ is published). */
    public volatile DoorbellPage polled;
    /** True once more than one SQ posted here: posting then takes this object's lock (never switched back). */
    public volatile boolean shared;
    /** Set by a poster blocked on a full queue, so the CQ doorbell wakes it. */
    volatile boolean waiting;
    private volatile SubmissionQueue[] sqs = new SubmissionQueue[0];

    // Owned by the poster (under the lock when shared).
    private int tail;
    private boolean phase = true;
    private int cachedHead;
    int pendingInterrupts;
    private int lastShadowHead;

    public CompletionQueue(int qid, int size, long base, int vector, boolean interruptsEnabled) {
        this.qid = qid;
        this.size = size;
        this.base = base;
        this.vector = vector;
        this.interruptsEnabled = interruptsEnabled;
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
     * Called by a new worker of a shared CQ before its first fetch: waits until each other worker of
     * this CQ posts only under the lock (it acknowledges at its next post or loop turn; a kick makes
     * an idle one turn) or has ended. A worker stuck in its backend delays only the newcomer.
     */
    void awaitHandOver(QueueWorker self) {
        for (SubmissionQueue other : sqs) {
            QueueWorker w = other.worker;
            long pause = 10_000L;
            while (w != null && w != self && !w.postsLockedOrGone() && !self.stopping()) {
                w.kick();
                LockSupport.parkNanos(pause);
                pause = Math.min(pause * 2, 1_000_000L);
            }
        }
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

    /** The host's head: shadow slot when DBBUF is active, else the polled page or the MMIO value (validated). */
    int currentHead(QueueStats stats) throws GuestMemoryException {
        ShadowDoorbell sh = shadow;
        if (sh != null) {
            int h = sh.load();
            if (Nvme.validDoorbell(h, size)) {
                if (h != lastShadowHead) {
                    lastShadowHead = h;
                    if (h != mmioHead) {
                        stats.shadowCq++;
                    }
                }
                return h;
            }
            return cachedHead; // invalid shadow value: ignore it (dbbuf.md checklist 22)
        }
        DoorbellPage page = polled;
        if (page != null) {
            int h = page.cqHead(qid);
            return Nvme.validDoorbell(h, size) ? h : cachedHead;
        }
        return mmioHead;
    }

    public int tail() {
        return tail;
    }

    /**
     * Writes one CQE (NVMe 1.4 §4.6, Figure 124, {@link CqeLayout}) if there is room: DW0 and DW1 (command specific,
     * DW1 reserved: 0) as one long, SQHD and SQID as one int, then CID and STATUS (phase tag in bit 0) as one int
     * written last with release semantics, so the host never sees the new phase before the rest of the entry.
     */
    boolean tryPost(GuestMemory memory, int sqid, int sqHead, int cid, int status, int dw0, QueueStats stats)
            throws GuestMemoryException {
        int next = tail + 1 == size ? 0 : tail + 1;
        if (next == cachedHead) {
            cachedHead = currentHead(stats);
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

    /** Refreshes the cached head (used while waiting for room). */
    boolean headMoved(QueueStats stats) throws GuestMemoryException {
        int h = currentHead(stats);
        if (h != cachedHead) {
            cachedHead = h;
            return true;
        }
        return false;
    }

    int cachedHead() {
        return cachedHead;
    }

    /**
     * Interrupt coalescing bookkeeping (Set Features 08h, NVMe 1.4 §5.21.1.8): adds {@code posted}
     * completions and returns true if an interrupt should fire now ({@code threshold} = entries per
     * interrupt, 1 = no coalescing). Callers hold the CQ lock when the CQ is shared.
     */
    public boolean addPendingInterrupts(int posted, int threshold) {
        pendingInterrupts += posted;
        if (pendingInterrupts >= threshold) {
            pendingInterrupts = 0;
            return true;
        }
        return false;
    }

    /** True (and clears) if completions are waiting for a coalesced interrupt. */
    public boolean takePendingInterrupts() {
        if (pendingInterrupts > 0) {
            pendingInterrupts = 0;
            return true;
        }
        return false;
    }

    /** The host's head as seen now (shadow if DBBUF is active), for INTx deassertion; -1 if unknown. */
    public int hostHead() {
        ShadowDoorbell sh = shadow;
        if (sh != null) {
            try {
                return sh.load();
            } catch (GuestMemoryException e) {
                return -1;
            }
        }
        DoorbellPage page = polled;
        if (page != null) {
            int h = page.cqHead(qid);
            return Nvme.validDoorbell(h, size) ? h : -1;
        }
        return mmioHead;
    }
}
