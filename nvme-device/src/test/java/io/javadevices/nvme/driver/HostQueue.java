package io.javadevices.nvme.driver;

import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;
import io.javadevices.pci.testkit.InterruptRecorder;

import java.time.Duration;
import java.util.ArrayList;
import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.locks.LockSupport;

/**
 * One host queue pair as the Linux driver keeps it ({@code struct nvme_queue}): SQ tail, CQ head and
 * phase, optional shadow/EventIdx slot pointers (set by {@code nvme_dbbuf_init} for qid ≥ 1). Used by
 * one thread at a time.
 */
public final class HostQueue {
    final LinuxLikeDriver driver;
    public final int qid;
    public final int depth;
    public final int cqDepth;
    public final long sqBase;
    public final long cqBase;
    public final int vector;
    private final GuestMemory memory;
    private int sqTail;
    private int cqHead;
    private boolean phase = true;
    private int lastSqTail; // Linux nvme_queue.last_sq_tail
    // Shadow slot addresses (0 = not using DBBUF): nvme_queue.dbbuf_sq_db etc.
    long dbSq, dbCq, eiSq, eiCq;
    private final ArrayDeque<Integer> freeCids = new ArrayDeque<>();
    private int inflight;
    public long mmioSq, mmioCq;

    HostQueue(LinuxLikeDriver driver, int qid, int depth, long sqBase, long cqBase, int vector) {
        this(driver, qid, depth, depth, sqBase, cqBase, vector);
    }

    HostQueue(LinuxLikeDriver driver, int qid, int depth, int cqDepth, long sqBase, long cqBase, int vector) {
        this.driver = driver;
        this.qid = qid;
        this.depth = depth;
        this.cqDepth = cqDepth;
        this.sqBase = sqBase;
        this.cqBase = cqBase;
        this.vector = vector;
        this.memory = driver.memory();
        for (int i = 0; i < depth - 1; i++) {
            freeCids.add(i);
        }
    }

    public boolean shadowed() {
        return dbSq != 0;
    }

    public int inflight() {
        return inflight;
    }

    public int capacity() {
        return depth - 1;
    }

    public int sqTail() {
        return sqTail;
    }

    /** Writes the SQE at the tail without ringing (blk-mq with bd->last false). Returns the CID. */
    public int queue(Command c) {
        Integer cid = freeCids.poll();
        if (cid == null) {
            throw new IllegalStateException("queue " + qid + " full");
        }
        return queueWithCid(c, cid);
    }

    /** Like {@link #queue} with an explicit CID (the caller manages CIDs). */
    public int queueWithCid(Command c, int cid) {
        c.cid(cid);
        try {
            c.writeTo(memory, sqBase + 64L * sqTail);
        } catch (GuestMemoryException e) {
            throw new IllegalStateException(e);
        }
        sqTail = sqTail + 1 == depth ? 0 : sqTail + 1;
        inflight++;
        return cid;
    }

    /** Submits one command and rings (bd->last true). */
    public int submit(Command c) {
        int cid = queue(c);
        ringSq();
        return cid;
    }

    /** nvme_write_sq_db: shadow update + need_event check when DBBUF is on, MMIO only if needed. */
    public void ringSq() {
        if (sqTail == lastSqTail) {
            return;
        }
        if (!shadowed() || driver.dbbufUpdateAndCheckEvent(sqTail, dbSq, eiSq)) {
            driver.mmioDoorbell(qid, false, sqTail);
            mmioSq++;
        }
        lastSqTail = sqTail;
    }

    /** Reaps every CQE whose phase matches (nvme_poll_cq), then updates the CQ head doorbell once. */
    public List<Completion> reap() {
        List<Completion> done = new ArrayList<>();
        try {
            while (true) {
                long at = cqBase + 16L * cqHead;
                int dw3 = memory.loadIntAcquire(at + 12); // phase first, then the rest (dma_rmb)
                if (((dw3 >>> 16) & 1) != (phase ? 1 : 0)) {
                    break;
                }
                int dw0 = memory.readInt(at);
                int dw2 = memory.readInt(at + 8);
                Completion c = new Completion(dw0, dw2 & 0xFFFF, dw2 >>> 16, dw3 & 0xFFFF, (dw3 >>> 17) & 0x7FFF);
                done.add(c);
                cqHead = cqHead + 1 == cqDepth ? 0 : cqHead + 1;
                if (cqHead == 0) {
                    phase = !phase;
                }
                if (c.cid() < depth - 1 && inflight > 0) {
                    inflight--;
                    freeCids.add(c.cid());
                }
            }
        } catch (GuestMemoryException e) {
            throw new IllegalStateException(e);
        }
        if (!done.isEmpty()) {
            ringCq();
        }
        return done;
    }

    /** Reaps at most {@code max} CQEs (a host that stops consuming part-way). */
    public int cqHead() {
        return cqHead;
    }

    /** nvme_ring_cq_doorbell. */
    void ringCq() {
        if (!shadowed() || driver.dbbufUpdateAndCheckEvent(cqHead, dbCq, eiCq)) {
            driver.mmioDoorbell(qid, true, cqHead);
            mmioCq++;
        }
    }

    /** Reaps until {@code count} completions arrived, waiting on this queue's interrupt vector. */
    public List<Completion> awaitCompletions(int count, Duration timeout) {
        List<Completion> all = new ArrayList<>();
        long deadline = System.nanoTime() + timeout.toNanos();
        InterruptRecorder irq = driver.interrupts();
        int spins = 0;
        while (all.size() < count) {
            long seen = irq.count(vector);
            List<Completion> got = reap();
            all.addAll(got);
            if (all.size() >= count) {
                break;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("queue " + qid + ": " + all.size() + " of " + count
                        + " completions after " + timeout + "; controller " + driver.controllerStats());
            }
            if (got.isEmpty()) {
                if (++spins < 200) {
                    Thread.onSpinWait();
                } else {
                    try {
                        irq.await(vector, seen, Duration.ofMillis(1));
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new AssertionError(e);
                    }
                }
            } else {
                spins = 0;
            }
        }
        return all;
    }

    /** Submits {@code c} and waits for its completion. */
    public Completion execute(Command c, Duration timeout) {
        int cid = submit(c);
        List<Completion> got = awaitCompletions(1, timeout);
        for (Completion done : got) {
            if (done.cid() == cid) {
                return done;
            }
        }
        throw new AssertionError("unexpected completions " + got + " waiting for cid " + cid);
    }

    public Completion execute(Command c) {
        return execute(c, Duration.ofSeconds(10));
    }

    /** Polls without interrupts for a short time: returns what arrived (possibly nothing). */
    public List<Completion> pollFor(Duration d) {
        List<Completion> all = new ArrayList<>();
        long deadline = System.nanoTime() + d.toNanos();
        while (System.nanoTime() < deadline) {
            all.addAll(reap());
            LockSupport.parkNanos(100_000);
        }
        return all;
    }

    /** Resets the ring state (after a controller reset the queue memory is reused from index 0). */
    void clearShadowPointers() {
        dbSq = dbCq = eiSq = eiCq = 0;
    }
}
