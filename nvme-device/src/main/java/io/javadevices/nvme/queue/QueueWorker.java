package io.javadevices.nvme.queue;

import io.javadevices.nvme.spec.Nvme;
import io.javadevices.nvme.spec.Status;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

import java.util.concurrent.locks.LockSupport;

/**
 * The thread that owns one submission queue (daemon, named {@code nvme-sqN}): fetches SQEs, executes
 * them, posts completions to the SQ's CQ and raises one interrupt per batch.
 *
 * <p>Loop (dbbuf.md §5.4, the Dekker pattern Linux's {@code nvme_dbbuf_update_and_check_event} asks for):
 * drain until head == tail; when the queue goes empty, either nap (below) or spin on the tail for up to
 * {@code poll-us}; then with DBBUF active store EventIdx = tail, full fence, re-read the shadow tail and continue if
 * it moved; otherwise announce {@code parked}, re-check and park. An MMIO doorbell stores the tail and
 * unparks this thread only if it is parked.
 *
 * <p>With DBBUF active the shadow slot is authoritative for the tail and an MMIO doorbell is only a
 * wake-up (dbbuf.md §5.3): a late posted MMIO write carrying an older value can then never make the
 * tail regress or re-execute commands (checklist 16).
 *
 * <p>With polled doorbells ({@link DoorbellPage}) nobody wakes the worker: guest doorbell writes are
 * plain stores. It does not spin (a spin that misses only delays the next look); it sleeps in short timed
 * parks ({@code nap-us}; the admin queue {@link #POLLED_ADMIN_PARK_NANOS}) and looks again. That
 * bounds the extra latency of an idle queue's first command to about one park and keeps an idle
 * controller's CPU cost to some thousands of wake-ups a second per queue.
 *
 * <p>Naps with DBBUF ({@code nap-window-us} > 0): when a busy period that ran several commands ends
 * (the guest keeps the queue deep), the worker does not re-arm EventIdx at once but sleeps
 * {@code nap-us} and looks at the shadow tail again, for up to {@code nap-window-us}. While EventIdx lags
 * behind, Linux's {@code nvme_dbbuf_need_event} is false, so the guest keeps writing only the shadow
 * slot: no doorbell message and no core burnt spinning, which on a host with fewer cores than vCPUs +
 * workers is CPU taken from the vCPUs. A busy period of one command (QD1-like) spins {@code poll-us}
 * instead and then re-arms: there the doorbell wake-up is faster than the next look. A 20 µs spin before
 * napping catches a guest that refills at once (KVM, or a VMM in the same process), which a nap would
 * only make wait. A guest slower than that but faster than a nap can still fill its queue depth during
 * a nap and wait for us; on a CPU-starved host that wait is cheap (halving the nap whenever looks found
 * the same count cost 45 % of the IOPS here), elsewhere lower {@code nap-us}.
 */
public final class QueueWorker implements Runnable {
    /** What the worker needs from the controller. */
    public interface Controller {
        GuestMemory memory();

        /** A batch of {@code posted} completions was written to {@code cq}: maybe interrupt. */
        void completionsPosted(CompletionQueue cq, int posted, QueueStats stats);

        /** The queue went idle: flush any coalesced interrupt. */
        void flushInterrupts(CompletionQueue cq, QueueStats stats);

        /** An invalid doorbell value was seen in a shadow slot. */
        void invalidDoorbell(int qid, int value);

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
         * May the function master the bus now (PCI command register bit 2)? With it clear a PCI function
         * must not issue memory accesses (PCI Local Bus 3.0 §6.2.2), so the worker fetches nothing.
         */
        default boolean busMasterEnabled() {
            return true;
        }
    }

    /**
     * Safety-net park timeouts (with / without DBBUF). Correctness never depends on them (the re-arm
     * protocol and MMIO wake-ups do); tests raise them to prove no wake-up is lost.
     */
    public static volatile long parkNanosShadow = 2_000_000L;
    public static volatile long parkNanosMmio = 50_000_000L;
    /** Idle park of the polled admin queue: admin commands are rare and not latency-critical. */
    public static final long POLLED_ADMIN_PARK_NANOS = 1_000_000L;

    private final Controller host;
    private final GuestMemory memory;
    private final SubmissionQueue sq;
    private final CompletionQueue cq;
    private final CommandHandler handler;
    private final long pollNanos;
    /** The polled doorbell page, or null when doorbells arrive as MMIO writes. */
    private final DoorbellPage polled;
    private final QueueStats stats = new QueueStats();
    /** Where this queue counts its commands by opcode: the admin queue's opcodes are admin opcodes. */
    private final long[] opcodeCounts;
    private final Sqe cmd = new Sqe();
    private final Thread thread;
    private volatile boolean stop;
    private volatile boolean parked;
    /** Set once this worker has seen its CQ {@link CompletionQueue#shared}: it then posts only under the CQ lock. */
    private volatile boolean postsLocked;
    private int head;
    private int lastShadowTail;
    private int lastPolledTail;
    private boolean busy;
    /** When the queue last went idle after a busy batch (start of the nap window). */
    private long idleSince;
    /** Commands run since the queue last went idle, and whether the current idle period naps. */
    private int busyCommands;
    private boolean napping;
    /** Commands a busy period must run for the worker to nap rather than re-arm EventIdx at once. */
    static final int NAP_MIN_BATCH = 2;
    /** The spin before a nap: long enough for a guest that refills at once, short next to a nap. */
    static final long NAP_SPIN_NANOS = 20_000L;
    /** The shortest nap: below the kernel's 50 us timer slack a park is no shorter. */
    static final long NAP_FLOOR_NANOS = 50_000L;
    /** The current nap (between the floor and nap-us), what the last look found, whether the host is busy. */
    private long napNow;
    private int lastLook;
    private boolean lookAfterNap;
    private boolean cpuBusy;
    private final long napNanos;
    private final long napWindowNanos;
    private int unsignalled;

    /**
     * How a worker waits for work once its queue is empty (options {@code poll-us}, {@code nap-us},
     * {@code nap-window-us}).
     *
     * @param spinMicros      spin on the tail this long after a busy batch
     * @param napMicros       then sleep this long between looks: always with polled doorbells, and with
     *                        DBBUF for {@code napWindowMicros} before re-arming EventIdx
     * @param napWindowMicros DBBUF: how long to nap after the queue went idle (0 = re-arm at once)
     */
    public record Idle(int spinMicros, int napMicros, int napWindowMicros) {
        /** The admin queue: no spinning, no naps with DBBUF (it has no shadow slot), 1 ms looks when polled. */
        public static final Idle ADMIN = new Idle(0, (int) (POLLED_ADMIN_PARK_NANOS / 1000), 0);
    }

    public QueueWorker(Controller host, SubmissionQueue sq, CommandHandler handler, Idle idle) {
        this.host = host;
        this.memory = host.memory();
        this.sq = sq;
        this.cq = sq.cq;
        this.opcodeCounts = sq.qid == 0 ? stats.adminByOpcode : stats.ioByOpcode;
        this.handler = handler;
        this.pollNanos = idle.spinMicros() * 1000L;
        this.napNanos = idle.napMicros() * 1000L;
        this.napNow = napNanos;
        this.napWindowNanos = idle.napWindowMicros() * 1000L;
        this.polled = sq.polled;
        this.thread = Thread.ofPlatform().daemon().name("nvme-sq" + sq.qid).unstarted(this);
        sq.worker = this;
    }

    public void start() {
        thread.start();
    }

    public SubmissionQueue queue() {
        return sq;
    }

    public QueueStats stats() {
        return stats;
    }

    /** The SQ head (entries consumed), as reported in CQEs. */
    public int head() {
        return head;
    }

    /** Called by the MMIO thread after storing a doorbell value: unpark only if parked. */
    public void wake() {
        if (parked) {
            LockSupport.unpark(thread);
        }
    }

    /** Unparks the worker unconditionally (e.g. after Doorbell Buffer Config or a queued async event). */
    public void kick() {
        LockSupport.unpark(thread);
    }

    /**
     * Tells the worker to stop and returns at once: it fetches no further SQE and posts no completion
     * from now on, even for a command whose backend call is still running (checked after every backend
     * call, {@link #post}). The controller learns that it can no longer touch guest memory from
     * {@link #awaitExit}. Never interrupts the thread (that would close FileChannels).
     */
    public void requestStop() {
        stop = true;
        LockSupport.unpark(thread);
    }

    /**
     * Waits up to {@code millis} (0 = just look) for the thread to end; true once it can no longer touch
     * guest memory: it ended, or it was stopped before it ever started (its loop then never runs).
     */
    public boolean awaitExit(long millis) {
        if (Thread.currentThread() == thread) {
            return false;
        }
        if (millis > 0 && thread.isAlive()) {
            LockSupport.unpark(thread);
            try {
                thread.join(millis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        Thread.State state = thread.getState();
        return state == Thread.State.TERMINATED || state == Thread.State.NEW && stop;
    }

    /** Shared-CQ hand-over: true once this worker posts to its CQ only under the CQ lock, or is gone. */
    boolean postsLockedOrGone() {
        return postsLocked || thread.getState() == Thread.State.TERMINATED;
    }

    public boolean stopping() {
        return stop;
    }

    @Override
    public void run() {
        try {
            postsLocked = cq.shared;
            if (postsLocked) {
                cq.awaitHandOver(this); // no unlocked post of an earlier poster may overlap ours
            }
            loop();
        } catch (GuestMemoryException e) {
            host.fatal("queue " + sq.qid + ": completion queue not writable: " + e.getMessage());
        } catch (Throwable t) {
            host.fatal("queue " + sq.qid + " worker failed: " + t);
        }
    }

    private void loop() throws GuestMemoryException {
        while (!stop) {
            if (!postsLocked && cq.shared) {
                postsLocked = true; // a second SQ joined our CQ: from now on we post under its lock
            }
            if (!host.busMasterEnabled()) {
                // No DMA allowed: leave the queue untouched until the host sets Bus Master Enable again
                // (the controller kicks its workers on that config write).
                LockSupport.parkNanos(parkNanosMmio);
                continue;
            }
            handler.poll(this);
            int tail = fetchTail();
            if (tail >= 0 && tail != head) {
                int ran = drain(tail);
                if (lookAfterNap) {
                    lookAfterNap = false;
                    adaptNap(ran);
                }
                busyCommands += ran;
                busy = true;
                continue;
            }
            if (busy) { // the queue just went empty
                busy = false;
                idleSince = System.nanoTime();
                // Nap only when the guest kept the queue deep (this busy period ran several commands);
                // QD1-like traffic spins briefly instead and then waits for the doorbell, the lowest latency.
                boolean deep = busyCommands >= NAP_MIN_BATCH;
                busyCommands = 0;
                napping = deep && napNanos > 0 && napWindowNanos > 0 && sq.shadow != null;
                // Polled doorbells never spin: nothing can wake a parked worker, so a spin that misses only
                // delays the next look (measured: QD1 p50 330 us with a 100 us spin vs 240 us without).
                boolean spin = polled == null && !napping;
                if (spin && pollNanos > 0 && pollForWork(pollNanos)) {
                    continue;
                }
                // Before a nap, a short spin catches a guest fast enough to refill at once (a KVM guest, an
                // in-process VMM): napping would only make it wait for us.
                if (napping && pollNanos > 0 && pollForWork(Math.min(pollNanos, NAP_SPIN_NANOS))) {
                    continue;
                }
            }
            host.flushInterrupts(cq, stats);
            ShadowDoorbell sh = sq.shadow;
            if (sh != null && napping && System.nanoTime() - idleSince < napWindowNanos) {
                // Nap instead of spinning, with EventIdx one slot behind head: the one value the guest's
                // tail cannot pass before we consume more (the tail stops at head - 1 when the queue is full),
                // so nvme_dbbuf_need_event stays false, even across a wrap, and the guest writes only the
                // shadow slot. We look again after the nap (see the class comment).
                try {
                    sh.publish((head == 0 ? sq.size : head) - 1);
                } catch (GuestMemoryException e) {
                    sq.shadow = null;
                    continue;
                }
                long before = System.nanoTime();
                LockSupport.parkNanos(napNow);
                // Woken much later than asked: the host's CPUs are busy (e.g. TCG vCPUs). A guest that
                // waits for us then leaves its CPU to others, so a long nap costs nothing (see adaptNap).
                cpuBusy = System.nanoTime() - before > napNow + napNow / 4 + 100_000;
                stats.naps++;
                lookAfterNap = true;
                continue;
            }
            if (sh != null) {
                // Re-arm: EventIdx = the tail we stopped at, then StoreLoad fence, then re-check (dbbuf.md §5.4).
                try {
                    sh.publish(head);
                } catch (GuestMemoryException e) {
                    sq.shadow = null; // page unmapped: fall back to MMIO doorbells
                }
                GuestMemory.fullFence();
                int again = fetchTail();
                if (again >= 0 && again != head) {
                    continue;
                }
            }
            parked = true; // Dekker with the MMIO thread: store parked, fence, re-load the tail
            GuestMemory.fullFence();
            int again = fetchTail();
            if (!stop && (again < 0 || again == head)) {
                LockSupport.parkNanos(polled != null ? Math.max(napNanos, 1000) : sq.shadow != null ? parkNanosShadow : parkNanosMmio);
            }
            parked = false;
            if (polled != null) {
                host.polledIdle();
            }
        }
    }

    /**
     * Adapts the nap to what the look after it found. A guest waiting for our completions with its whole
     * queue depth shows the same count look after look; when the host has CPU to spare that wait is lost
     * throughput, so the nap halves (down to {@link #NAP_FLOOR_NANOS}). It doubles back when the count
     * shrinks with the nap (a guest limited by its own speed). On a CPU-starved host (the nap overslept)
     * the nap stays long: there the waiting guest's vCPU gives its CPU to the rest (halving regardless
     * cost 45 % of the IOPS on the 2-CPU TCG host).
     */
    private void adaptNap(int found) {
        boolean halve = !cpuBusy && found >= 4 && found == lastLook;
        if (halve) {
            napNow = Math.max(napNow / 2, Math.min(NAP_FLOOR_NANOS, napNanos));
        } else if (found * 4 < lastLook * 3 || cpuBusy) {
            napNow = Math.min(napNow * 2, napNanos);
        }
        lastLook = found;
    }

    private boolean pollForWork(long nanos) {
        long deadline = System.nanoTime() + nanos;
        do {
            Thread.onSpinWait();
            int t = fetchTail();
            if (t >= 0 && t != head) {
                return true;
            }
        } while (System.nanoTime() < deadline && !stop);
        return false;
    }

    /** Tail to consume up to, or -1 if the doorbell value is invalid. */
    private int fetchTail() {
        ShadowDoorbell sh = sq.shadow;
        if (sh != null) {
            try {
                int t = sh.load();
                if (!Nvme.validDoorbell(t, sq.size)) {
                    host.invalidDoorbell(sq.qid, t);
                    return -1;
                }
                if (t != lastShadowTail) {
                    lastShadowTail = t;
                    if (t != sq.mmioTail) {
                        stats.shadowSq++;
                    }
                }
                return t;
            } catch (GuestMemoryException e) {
                sq.shadow = null;
            }
        }
        return polled != null ? polledTail() : sq.mmioTail;
    }

    /** The tail from the polled page; an invalid value is reported once per distinct value and ignored. */
    private int polledTail() {
        int t = polled.sqTail(sq.qid);
        boolean valid = Nvme.validDoorbell(t, sq.size);
        if (t != lastPolledTail) {
            lastPolledTail = t;
            if (valid) {
                stats.polledSq++;
            } else {
                host.invalidDoorbell(sq.qid, t);
            }
        }
        return valid ? t : -1;
    }

    /** Runs the commands up to {@code tail}; returns how many there were. */
    private int drain(int tail) throws GuestMemoryException {
        int commands = tail >= head ? tail - head : tail + sq.size - head;
        // Bus Master Enable is looked at before every fetch (PCI 3.0 §6.2.2): the host may clear it mid-batch.
        while (head != tail && !stop && host.busMasterEnabled()) {
            long at = sq.base + (long) head * 64;
            head = head + 1 == sq.size ? 0 : head + 1;
            long result;
            int cid = 0;
            try {
                memory.read(at, cmd.segment(), 0, 64);
                cid = cmd.cid();
                opcodeCounts[cmd.opcode() & 0xFF]++;
                result = handler.execute(cmd, this);
            } catch (GuestMemoryException e) {
                result = CommandHandler.result(Status.DATA_TRANSFER_ERROR);
            } catch (RuntimeException | Error e) {
                // One bad command must not kill the queue: complete it with Internal Error.
                host.commandFailed(sq.qid, cid, e);
                result = CommandHandler.result(Status.INTERNAL_ERROR);
            }
            if (result != CommandHandler.DEFERRED) {
                if (!post(cid, CommandHandler.status(result), CommandHandler.dw0(result))) {
                    break;
                }
                if (++unsignalled >= 64) {
                    signalPosted();
                }
            }
        }
        signalPosted();
        return commands;
    }

    /** One interrupt decision for the completions posted since the last one. */
    private void signalPosted() {
        if (unsignalled > 0) {
            int n = unsignalled;
            unsignalled = 0;
            host.completionsPosted(cq, n, stats);
        }
    }

    /**
     * Posts a completion for this SQ, waiting while the CQ is full. Returns false, posting nothing, if
     * the worker is stopping: a command whose backend call outlived a reset or a Delete I/O SQ must not
     * write into a CQ the host may already reuse. Also used by the admin handler for deferred (AER)
     * completions, on this thread.
     */
    public boolean post(int cid, int status, int dw0) throws GuestMemoryException {
        while (true) {
            if (stop) {
                return false;
            }
            if (!host.busMasterEnabled()) {
                LockSupport.parkNanos(parkNanosMmio); // a CQE is DMA too: hold it until BME is set (kick)
                continue;
            }
            boolean done;
            if (cq.shared) {
                if (!postsLocked) {
                    postsLocked = true; // hand-over acknowledged (CompletionQueue.awaitHandOver)
                }
                synchronized (cq) {
                    done = cq.tryPost(memory, sq.qid, head, cid, status, dw0, stats);
                }
            } else {
                done = cq.tryPost(memory, sq.qid, head, cid, status, dw0, stats);
            }
            if (done) {
                return true;
            }
            if (!waitForCompletionSpace()) {
                return false;
            }
        }
    }

    /**
     * CQ full: flush the interrupt so the host consumes, arm CQ EventIdx = known head so the host's next
     * head update MMIOs (dbbuf.md §5.5, QEMU fa5db2aa168b), fence, re-check, park.
     */
    private boolean waitForCompletionSpace() throws GuestMemoryException {
        signalPosted(); // the host must see what is already posted, or it never frees space
        host.flushInterrupts(cq, stats);
        cq.waiting = true;
        parked = true;
        try {
            ShadowDoorbell sh = cq.shadow;
            if (sh != null) {
                try {
                    sh.publish(cq.cachedHead());
                } catch (GuestMemoryException e) {
                    cq.shadow = null;
                }
                GuestMemory.fullFence();
            }
            boolean moved;
            synchronized (cq) {
                moved = cq.headMoved(stats);
            }
            if (!moved && !stop) {
                LockSupport.parkNanos(1_000_000L);
            }
        } finally {
            parked = false;
            cq.waiting = false;
        }
        return !stop;
    }
}
