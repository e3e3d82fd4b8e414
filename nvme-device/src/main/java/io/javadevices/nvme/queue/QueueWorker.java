package io.javadevices.nvme.queue;

import io.javadevices.nvme.backend.IoEngine;
import io.javadevices.nvme.backend.IoEngines;
import io.javadevices.nvme.spec.Status;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

import java.util.concurrent.locks.LockSupport;

/**
 * The thread that owns one submission queue (daemon, named {@code nvme-sqN}): fetches SQEs, executes
 * them, posts completions to the SQ's CQ and raises one interrupt per batch.
 *
 * <p>Loop: drain until head == tail, reading the tail from the queue's one {@link DoorbellSource}. When the
 * queue goes empty the {@link IdlePolicy} says whether to spin, nap or park. With DBBUF active the worker then
 * re-arms as Linux {@code nvme_dbbuf_update_and_check_event} expects of a controller: store EventIdx = head,
 * full fence, re-read the shadow tail and continue if it moved (the host's side is shadow store, full
 * barrier, EventIdx load, MMIO if {@code nvme_dbbuf_need_event}); otherwise announce {@code parked}, fence,
 * re-check and park. An MMIO doorbell stores the tail and unparks this thread only if it is parked.
 *
 * <p>With DBBUF active the shadow slot is authoritative for the tail and an MMIO doorbell is only a
 * wake-up: a late posted MMIO write carrying an older value can then never make the tail regress or
 * re-execute commands.
 *
 * <p>With polled doorbells ({@link DoorbellPage}) nobody wakes the worker: guest doorbell writes are
 * plain stores. It sleeps in short timed parks ({@code nap-us}; the admin queue 1 ms) and looks again,
 * which bounds the extra latency of an idle queue's first command to about one park.
 *
 * <p>Asynchronous I/O (an I/O queue with an {@link IoEngine}): a command whose backend has an asynchronous path
 * takes an {@link InFlight} slot, is handed to the engine and returns {@link CommandHandler#DEFERRED}; after each
 * batch the worker calls {@link IoEngine#submit} once, and on every loop iteration it reaps the completions and
 * posts their CQEs (in the order the storage finished them, NVMe 1.4 §6: commands are unordered, each with the SQ
 * head of the moment), one interrupt decision per reap as per batch. With no slot free it fetches nothing until
 * one completes (backpressure). With the SQ empty but operations in flight it waits in {@link IoEngine#await}
 * (which a doorbell's {@link #wake} cuts short) where it would otherwise park: the EventIdx re-arm above is
 * unchanged. A stopped worker posts nothing more but ends only once every operation in flight has completed:
 * the kernel or a pool thread may still be moving data into guest memory until then.
 */
public final class QueueWorker implements Runnable {
    /** What the worker needs from the controller. */
    public interface Controller {
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

    private final Controller host;
    /** The asynchronous engine of an I/O queue, or null (the admin queue; tests): every command synchronous. */
    private final IoEngine engine;
    /** The in-flight slots of the engine's operations (null without an engine). */
    private final InFlight slots;
    private final IoEngine.Completions reaped = this::completed;
    /** A CQE write that failed inside {@link #completed} (thrown again by {@link #reap}). */
    private GuestMemoryException postFailure;
    private final GuestMemory memory;
    private final SubmissionQueue sq;
    private final CompletionQueue cq;
    private final CommandHandler handler;
    private final QueueStats stats = new QueueStats();
    /** Where this queue counts its commands by opcode: the admin queue's opcodes are admin opcodes. */
    private final long[] opcodeCounts;
    private final Sqe cmd = new Sqe();
    private final Thread thread;
    private final IdlePolicy idle;
    /** Where the doorbell sources report an invalid SQ tail / CQ head: the controller's guest-error path. */
    private final DoorbellSource.Rejects invalidTail;
    private final DoorbellSource.Rejects invalidHead;
    /** Doorbells live in the polled page: after each idle park the controller re-checks INTx. */
    private final boolean polledDoorbells;
    private volatile boolean stop;
    private volatile boolean parked;
    /** Set once this worker has seen its CQ shared: it then posts only under the CQ lock. */
    private volatile boolean postsLocked;
    /**
     * Batches begun plus batches ended ({@link WorkerGrace}): odd while {@link #drain} runs, the only place
     * commands (and so namespace backends) execute; even outside. Written by this thread only, twice per
     * batch, never per command.
     */
    private volatile long batchEpoch;
    private int head;
    private int unsignalled;

    public QueueWorker(Controller host, SubmissionQueue sq, CommandHandler handler, IdlePolicy.Settings idle) {
        this(host, sq, handler, idle, null, 0);
    }

    /**
     * @param engines makes this queue's asynchronous engine for its thread, or null: every command synchronous
     * @param tags    the engine's tags: the in-flight slots
     */
    public QueueWorker(Controller host, SubmissionQueue sq, CommandHandler handler, IdlePolicy.Settings idle,
                       IoEngines.Factory engines, int tags) {
        this.host = host;
        this.memory = host.memory();
        this.sq = sq;
        this.cq = sq.cq;
        this.opcodeCounts = sq.qid == 0 ? stats.adminByOpcode : stats.ioByOpcode;
        this.handler = handler;
        this.polledDoorbells = sq.polled();
        this.idle = new IdlePolicy(idle, polledDoorbells);
        this.invalidTail = host::invalidSubmissionTail;
        this.invalidHead = host::invalidCompletionHead;
        this.thread = Thread.ofPlatform().daemon().name("nvme-sq" + sq.qid).unstarted(this);
        this.engine = engines == null ? null : engine(engines, tags, thread, sq.qid);
        this.slots = engine == null ? null : new InFlight(engine.capacity());
        sq.worker = this;
    }

    /**
     * The queue's engine, or null if it cannot be made (an io_uring ring refused for this queue: the locked-memory
     * limit reached after N rings): the queue then runs its commands synchronously, slower but correct, and says so.
     */
    private static IoEngine engine(IoEngines.Factory engines, int tags, Thread thread, int qid) {
        try {
            return engines.create(tags, thread);
        } catch (RuntimeException e) {
            System.getLogger(QueueWorker.class.getName()).log(System.Logger.Level.WARNING,
                    "queue {0}: no asynchronous I/O engine ({1}); its commands run one at a time", qid, e.toString());
            return null;
        }
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

    /** The asynchronous engine, or null (the admin queue). */
    public IoEngine engine() {
        return engine;
    }

    /** The in-flight slots, or null without an engine. Worker thread. */
    public InFlight inFlight() {
        return slots;
    }

    /** A handler opened a namespace view (once per view, not per command). Worker thread. */
    public void viewOpened(NamespaceView view) {
        host.namespaceViewOpened(view);
    }

    /** The SQ head (entries consumed), as reported in CQEs. */
    public int head() {
        return head;
    }

    /** Called by the MMIO thread after storing a doorbell value: unpark only if parked. */
    public void wake() {
        if (parked) {
            LockSupport.unpark(thread);
            if (engine != null) {
                engine.wake();
            }
        }
    }

    /** Unparks the worker unconditionally (e.g. after Doorbell Buffer Config or a queued async event). */
    public void kick() {
        LockSupport.unpark(thread);
        if (engine != null) {
            engine.wake();
        }
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
        if (engine != null) {
            engine.wake();
        }
    }

    /**
     * Waits up to {@code millis} (0 = just look) for the thread to end; true once it can no longer touch
     * guest memory: it ended (after its last operation in flight completed), or it was stopped before it ever
     * started (its loop then never runs, and nothing was ever in flight).
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
            postsLocked = cq.shared();
            if (postsLocked) {
                cq.awaitHandOver(this); // no unlocked post of an earlier poster may overlap ours
            }
            loop();
        } catch (GuestMemoryException e) {
            host.fatal("queue " + sq.qid + ": completion queue not writable: " + e.getMessage());
        } catch (Throwable t) {
            host.fatal("queue " + sq.qid + " worker failed: " + t);
        } finally {
            retire();
        }
    }

    /**
     * The loop ended (stop, or a fatal error): wait for every operation still in flight, posting nothing (the
     * kernel may still DMA into guest memory until it completes; the controller's reset waits for this thread to
     * end), then release the engine.
     */
    private void retire() {
        if (engine == null) {
            return;
        }
        stop = true;
        while (slots.inUse() > 0) {
            engine.submit(); // anything prepared but not handed over completes through the engine too
            if (engine.reap(reaped) == 0) {
                engine.await(1_000_000L);
            }
        }
        engine.close();
    }

    private void loop() throws GuestMemoryException {
        while (!stop) {
            if (engine != null && reap() > 0) {
                continue; // completions posted: look at the SQ again
            }
            if (!postsLocked && cq.shared()) {
                postsLocked = true; // a second SQ joined our CQ: from now on we post under its lock
            }
            if (!host.busMasterEnabled()) {
                // No DMA allowed: leave the queue untouched until the host sets Bus Master Enable again
                // (the controller kicks its workers on that config write).
                LockSupport.parkNanos(idle.busMasterWaitNanos());
                continue;
            }
            handler.poll(this);
            int tail = fetchTail();
            if (tail >= 0 && tail != head) {
                if (slots != null && !slots.hasFree()) {
                    engine.await(idle.parkNanos(sq.shadowed())); // backpressure: a completion frees a slot
                    continue;
                }
                idle.ran(drain(tail));
                if (engine != null) {
                    engine.submit(); // once per batch: one io_uring_enter, one hand-over to the pool
                }
                continue;
            }
            boolean inFlight = slots != null && slots.inUse() > 0;
            long spin = inFlight ? 0 : idle.spinNanos(sq.shadowed()); // spinning is for QD1, not for deep queues
            if (spin > 0 && pollForWork(spin)) {
                continue;
            }
            host.flushInterrupts(cq, stats);
            long nap = idle.napNanos(sq.shadowed());
            if (nap > 0) {
                // Nap with EventIdx one slot behind head: the one value the guest's tail cannot pass before we
                // consume more (the tail stops at head - 1 when the queue is full), so nvme_dbbuf_need_event
                // stays false, even across a wrap, and the guest writes only the shadow slot.
                if (!sq.publishEventIdx((head == 0 ? sq.size : head) - 1)) {
                    continue; // the shadow page is gone: the queue fell back to its MMIO or polled doorbell
                }
                long before = System.nanoTime();
                sleep(nap, inFlight);
                idle.napped(nap, System.nanoTime() - before);
                stats.naps++;
                continue;
            }
            if (sq.shadowed()) {
                // Re-arm (Linux nvme_dbbuf_update_and_check_event, seen from the controller): EventIdx = the
                // tail we stopped at, then a StoreLoad fence, then re-check the shadow tail.
                sq.publishEventIdx(head); // an unreachable page falls back: the re-check then reads MMIO
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
                sleep(idle.parkNanos(sq.shadowed()), inFlight);
            }
            parked = false;
            if (polledDoorbells) {
                host.polledIdle();
            }
        }
    }

    /** Parks, or with operations in flight waits in the engine, which a completion or a doorbell ends. */
    private void sleep(long nanos, boolean inFlight) {
        if (inFlight) {
            engine.await(nanos);
        } else {
            LockSupport.parkNanos(nanos);
        }
    }

    /** Posts the completions the engine has now; returns how many operations completed. */
    private int reap() throws GuestMemoryException {
        int n = engine.reap(reaped);
        if (n > 0) {
            engine.submit(); // a completion may have prepared the next step of a command (DSM ranges)
            signalPosted();
        }
        GuestMemoryException failed = postFailure;
        if (failed != null) {
            postFailure = null;
            throw failed;
        }
        return n;
    }

    /** One operation completed (engine reap, worker thread): the handler's status, posted unless stopping. */
    private void completed(int tag, int result) {
        if (!slots.claimed(tag)) {
            // A second completion of one operation, or a tag never handed out: a backend's bug. Dropping it keeps
            // the slot table intact (a slot freed twice would carry two commands at once).
            host.commandFailed(sq.qid, -1, new IllegalStateException("completion of tag " + tag + ", not in flight"));
            return;
        }
        long status;
        int cid = slots.cid(tag);
        try {
            status = handler.completed(tag, result, this);
        } catch (RuntimeException | Error e) {
            host.commandFailed(sq.qid, cid, e);
            status = CommandHandler.result(Status.INTERNAL_ERROR);
        }
        if (status == CommandHandler.DEFERRED) {
            return; // the command goes on with another operation in the same slot
        }
        slots.release(tag);
        if (CommandHandler.status(status) != Status.SUCCESS) {
            stats.countIoError();
        }
        if (stop || postFailure != null) {
            return; // after a reset or Delete I/O SQ nothing is posted (see post)
        }
        try {
            if (post(cid, CommandHandler.status(status), CommandHandler.dw0(status)) && ++unsignalled >= 64) {
                signalPosted();
            }
        } catch (GuestMemoryException e) {
            postFailure = e;
        }
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

    /** Tail to consume up to, or -1 ({@link DoorbellSource#INVALID}) if the doorbell value is invalid. */
    private int fetchTail() {
        return sq.loadTail(stats, invalidTail);
    }

    /** The batch counter: odd while this worker executes commands ({@link WorkerGrace}). */
    long batchEpoch() {
        return batchEpoch;
    }

    /** True if the caller is this worker's thread. */
    boolean isCurrentThread() {
        return Thread.currentThread() == thread;
    }

    boolean terminated() {
        return thread.getState() == Thread.State.TERMINATED;
    }

    /** Runs the commands up to {@code tail}; returns how many there were. */
    private int drain(int tail) throws GuestMemoryException {
        // Odd before the first command looks a namespace up: a volatile store followed by the table's volatile
        // load, the mirror of WorkerGrace's table store then epoch load (StoreLoad on both sides).
        batchEpoch = batchEpoch + 1;
        try {
            return drainBatch(tail);
        } finally {
            batchEpoch = batchEpoch + 1;
        }
    }

    private int drainBatch(int tail) throws GuestMemoryException {
        int commands = tail >= head ? tail - head : tail + sq.size - head;
        // Bus Master Enable is looked at before every fetch (PCI 3.0 §6.2.2): the host may clear it mid-batch.
        while (head != tail && !stop && host.busMasterEnabled() && (slots == null || slots.hasFree())) {
            long at = sq.base + (long) head * 64;
            head = head + 1 == sq.size ? 0 : head + 1;
            long result;
            int cid = 0;
            boolean fetched = false;
            try {
                memory.read(at, cmd.segment(), 0, 64);
                fetched = true;
                cid = cmd.cid();
                opcodeCounts[cmd.opcode() & 0xFF]++;
                result = handler.execute(cmd, this);
            } catch (GuestMemoryException e) {
                if (!fetched) {
                    // The SQ slot itself is outside guest memory: the entry completes with Data Transfer
                    // Error and CID 0 (its CID is unreadable), and the guest's mistake is counted. A handler
                    // that lets a GuestMemoryException escape gets the same status.
                    host.commandFetchFailed(sq.qid, e.address());
                }
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
     * Posts a completion for this SQ, waiting while the CQ is full. Returns false, posting nothing, once the
     * worker is stopping ({@link #requestStop}, checked before every attempt): a command whose backend call
     * outlived a reset or a Delete I/O SQ must not write into a CQ the host may already reuse.
     *
     * <p>Runs only on this worker's thread: from {@link #drain}, and from the handler's
     * {@link CommandHandler#poll} for deferred completions (the admin queue's Asynchronous Event Requests).
     * Tail, phase and head of the CQ belong to the poster (see {@link CompletionQueue}).
     */
    public boolean post(int cid, int status, int dw0) throws GuestMemoryException {
        assert Thread.currentThread() == thread : "QueueWorker.post off its worker thread";
        while (true) {
            if (stop) {
                return false;
            }
            if (!host.busMasterEnabled()) {
                LockSupport.parkNanos(idle.busMasterWaitNanos()); // a CQE is DMA too: hold it until BME is set (kick)
                continue;
            }
            if (!postsLocked && cq.shared()) {
                postsLocked = true; // hand-over acknowledged (CompletionQueue.awaitHandOver): the CQ now locks
            }
            if (cq.post(memory, sq.qid, head, cid, status, dw0, stats, invalidHead)) {
                return true;
            }
            if (!waitForCompletionSpace()) {
                return false;
            }
        }
    }

    /**
     * CQ full: flush the interrupt so the host consumes, arm CQ EventIdx = known head so the host's next
     * head update MMIOs (QEMU commit fa5db2aa168b), fence, re-check, park.
     */
    private boolean waitForCompletionSpace() {
        signalPosted(); // the host must see what is already posted, or it never frees space
        host.flushInterrupts(cq, stats);
        cq.waiting = true;
        parked = true;
        try {
            cq.publishEventIdx(cq.cachedHead()); // no-op without a reachable shadow slot
            GuestMemory.fullFence();
            if (!cq.headMoved(stats, invalidHead) && !stop) {
                LockSupport.parkNanos(1_000_000L);
            }
        } finally {
            parked = false;
            cq.waiting = false;
        }
        return !stop;
    }
}
