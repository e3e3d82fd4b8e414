package io.javadevices.nvme.queue;

import io.javadevices.nvme.backend.IoEngine;
import io.javadevices.nvme.backend.IoEngines;
import io.javadevices.nvme.spec.Status;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;
import io.javadevices.pci.WorkerPool;

/**
 * One submission queue's work, as a {@link WorkerPool.Poller} on one thread of a worker pool (I/O queues: the host's
 * shared pool or the controller's own) or on a thread of its own (the admin queue, see {@link QueueTable}): fetches
 * SQEs, executes them, posts completions to the SQ's CQ and raises one interrupt per batch. Every call comes from
 * that one thread, so the queue's work stays ordered and needs no lock.
 *
 * <p>Nothing here waits for the host: a worker on a shared thread that waited for one guest would stall every other
 * queue of that thread. So {@link #poll} advances a state machine as far as it can now:
 * <ul>
 * <li>A full CQ (a slow or hostile host that never consumes) or a clear Bus Master Enable (PCI Local Bus 3.0
 *     §6.2.2: no DMA, so no fetch and no CQE): the completion is held ({@link HeldCompletions}, bounded by the
 *     commands in flight) and nothing more is fetched until the held ones are posted. Before the thread sleeps the
 *     CQ EventIdx is armed with the known head, so the host's next head update rings the doorbell (QEMU commit
 *     fa5db2aa168b), which wakes the thread ({@link CompletionQueue#wakePosters}); BME set kicks the workers.
 * <li>No in-flight slot free (asynchronous I/O): nothing is fetched until a completion frees one.
 * <li>Stopped ({@link #requestStop}): nothing fetched, nothing posted; the worker ends ({@link #awaitExit}) only
 *     once every operation in flight has completed (the kernel or an I/O thread may still be moving data into guest
 *     memory until then), and then leaves its thread.
 * </ul>
 *
 * <p>Idle ({@link WorkerPool.Poller}'s protocol): the {@link IdlePolicy} says whether to spin, nap or sleep
 * ({@link #idleNanos}); before a sleep that only a doorbell ends, {@link #prepareToSleep} re-arms EventIdx as Linux
 * {@code nvme_dbbuf_update_and_check_event} expects, and an MMIO doorbell stores the tail and {@link #wake}s, which
 * signals the thread only if it sleeps. With DBBUF the shadow slot is authoritative for the tail and an MMIO
 * doorbell only wakes, so a late MMIO write with an older value never makes the tail regress. Polled doorbells
 * ({@link DoorbellPage}) wake nobody: the queue looks every {@code nap-us}.
 *
 * <p>Asynchronous I/O (an {@link IoEngine}): a command with an asynchronous path takes an {@link InFlight} slot and
 * returns {@link CommandHandler#DEFERRED}; each batch ends with one {@link IoEngine#submit}, each poll reaps and
 * posts (in completion order, NVMe 1.4 §6, with the SQ head of the moment). The thread never blocks in one queue's
 * engine, since it serves others: a completion from another thread wakes it ({@link IoEngine#onCompletion}); the
 * kernel's io_uring CQEs signal the eventfd the thread sleeps on ({@link WorkerPool.Registration#wakeFd},
 * {@link IoEngine#signalEventfd}), so one thread sleeps for all its rings at once; without one (a pool that parks,
 * an old kernel) the engine is looked at every {@link #UNSIGNALLED_LOOK_NANOS} while operations are in flight.
 *
 * <p>Commands that would block the thread in a backend call (a Flush of every namespace, Compare, Verify, ...)
 * go to the controller's offload thread through this queue's {@link OffloadLane}; they keep their in-flight slot
 * and complete through the engine like any operation. A full lane holds fetching back as a full slot table does.
 * A queue without an engine runs every command itself and so has a thread of its own, never a pool's.
 */
public final class QueueWorker implements WorkerPool.Poller {
    /** What the worker needs from the controller ({@link QueueHost}). */
    public interface Controller extends QueueHost {
    }

    /** While an engine that cannot signal its completions has operations in flight: how often to look at it. */
    static final long UNSIGNALLED_LOOK_NANOS = 20_000L;
    /** A stopped worker waiting for its operations in flight, or a CQ hand-over under way: look this often. */
    private static final long STOP_LOOK_NANOS = 1_000_000L;
    private static final long HAND_OVER_LOOK_NANOS = 20_000L;
    /** A full CQ: the safety-net look (the armed CQ EventIdx and the head doorbell's wake-up are the real path). */
    private static final long CQ_FULL_LOOK_NANOS = 1_000_000L;
    /** Asynchronous Event Requests the admin queue may hold besides its one synchronous command. */
    private static final int ADMIN_HELD_EXTRA = 32;

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
    private final IdlePolicy idle;
    private final HeldCompletions held;
    private final CqePoster poster;
    /** The hand-over of commands that would block this thread to the controller's offload thread, or null. */
    private final OffloadLane lane;
    /** Where the doorbell sources report an invalid SQ tail / CQ head: the controller's guest-error path. */
    private final DoorbellSource.Rejects invalidTail;
    private final DoorbellSource.Rejects invalidHead;
    /** Doorbells live in the polled page: after each idle sleep the controller re-checks INTx. */
    private final boolean polledDoorbells;
    /** The pool to run on, or null: a thread of this worker's own. */
    private final WorkerPool pool;
    private final String name;
    private final WorkerLife life = new WorkerLife();
    private volatile boolean stop;
    /** Set by {@link #kick}: look at everything once more even if nothing seems to have changed. */
    private volatile boolean kicked;
    /** Set once this worker has seen its CQ shared: it then posts only under the CQ lock. */
    private volatile boolean postsLocked;
    /** A shared CQ's earlier posters all post under its lock ({@link CompletionQueue#handedOver}). */
    private boolean handedOver;
    /**
     * Batches begun plus batches ended ({@link WorkerGrace}): odd while {@link #drain} runs, the only place
     * commands (and so namespace backends) execute; even outside. Written by this thread only, twice per
     * batch, never per command.
     */
    private volatile long batchEpoch;
    private int head;
    /** Idle state (worker thread only): wake-ups armed for a sleep; fetch held back for want of a slot. */
    private boolean armed;
    private boolean backpressured;
    private boolean engineClosed;
    private boolean eventfdAsked;

    /** A worker on a thread of its own (the admin queue; tests), every command synchronous. */
    public QueueWorker(Controller host, SubmissionQueue sq, CommandHandler handler, IdlePolicy.Settings idle) {
        this(host, sq, handler, idle, null, 0, null, null);
    }

    /**
     * @param engines makes this queue's asynchronous engine, or null: every command synchronous
     * @param tags    the engine's tags: the in-flight slots
     * @param pool    the threads to run on, or null: a thread of its own, ended with the worker
     * @param offload the controller's thread for commands that would block, or null: they run here
     */
    public QueueWorker(Controller host, SubmissionQueue sq, CommandHandler handler, IdlePolicy.Settings idle,
                       IoEngines.Factory engines, int tags, WorkerPool pool, CommandOffload offload) {
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
        this.name = "nvme-sq" + sq.qid;
        this.engine = engines == null ? null : IoEngines.createOrNull(engines, tags, name, sq.qid);
        // Without an engine (io-engine=sync, or no ring for this queue) every command runs here, one at a time, and
        // may block in its backend: such a queue gets a thread of its own, never a shared polling thread.
        this.pool = engine == null ? null : pool;
        this.slots = engine == null ? null : new InFlight(engine.capacity());
        this.held = new HeldCompletions((slots == null ? 0 : slots.capacity()) + 1 + (sq.qid == 0 ? ADMIN_HELD_EXTRA : 0));
        this.poster = new CqePoster(host, cq, sq.qid, stats, held, invalidHead);
        this.lane = engine == null || offload == null ? null : offload.lane(this, handler, engine);
        if (engine != null) {
            engine.onCompletion(this::wake);
        }
        sq.worker = this;
    }

    /** Places the worker on its pool (or starts its own thread); its first poll follows soon. */
    public void start() {
        life.start(pool, this, name);
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

    /** Where commands that would block this thread go ({@link CommandOffload}), or null: they run here. */
    public OffloadLane offloadLane() {
        return lane;
    }

    /** Bus Master Enable (PCI Local Bus 3.0 §6.2.2): clear, no DMA at all. Any thread. */
    boolean busMasterEnabled() {
        return host.busMasterEnabled();
    }

    /** A command run elsewhere for this queue failed with an exception (a bug): recorded as the worker's own. */
    void commandFailed(int cid, Throwable t) {
        host.commandFailed(sq.qid, cid, t);
    }

    /** A handler opened a namespace view (once per view, not per command). Worker thread. */
    public void viewOpened(NamespaceView view) {
        host.namespaceViewOpened(view);
    }

    /** The SQ head (entries consumed), as reported in CQEs. */
    public int head() {
        return head;
    }

    /** The name of the thread that runs this worker, or null before {@link #start}. */
    public String threadName() {
        return life.threadName();
    }

    /** After storing a doorbell value or a completion: wakes the worker's thread only if it sleeps. Any thread. */
    public void wake() {
        life.wake();
    }

    /** Makes the worker look at everything once more (after Doorbell Buffer Config, a queued async event, BME set). */
    public void kick() {
        kicked = true;
        wake();
    }

    /**
     * Tells the worker to stop and returns at once: it fetches no further SQE and posts no completion from now on,
     * even for a command whose backend call is still running ({@link #post}). {@link #awaitExit} says when it can no
     * longer touch guest memory. Never interrupts a thread (that would close FileChannels).
     */
    public void requestStop() {
        stop = true;
        life.stopRequested();
        wake();
    }

    /**
     * Waits up to {@code millis} (0 = just look) for the worker to end (after its last operation in flight
     * completed, or stopped before it started); true once it can no longer touch guest memory. Only looks when
     * called on the worker's own thread (a wait there could never end).
     */
    public boolean awaitExit(long millis) {
        if (millis > 0 && !life.ended()) {
            wake();
        }
        return life.await(millis);
    }

    /** Shared-CQ hand-over: true once this worker posts to its CQ only under the CQ lock, or is gone. */
    boolean postsLockedOrGone() {
        return postsLocked || life.ended();
    }

    public boolean stopping() {
        return stop;
    }

    // ------------------------------------------------------------------ WorkerPool.Poller

    @Override
    public boolean poll() {
        if (life.registration == null) {
            return false; // start() has not stored its registration yet: look again in a moment
        }
        if (!eventfdAsked) {
            eventfdAsked = true; // the kernel's io_uring completions then wake this thread (see the class comment)
            if (engine != null) {
                engine.signalEventfd(life.registration.wakeFd());
            }
        }
        if (idle.napOver()) {
            stats.naps++;
        }
        if (armed) {
            armed = false;
            if (!held.isEmpty()) {
                cq.waiting = false; // this worker armed the CQ wait (prepareToSleep); a sibling SQ's stays
            }
            if (polledDoorbells) {
                host.polledIdle();
            }
        }
        kicked = false; // cleared before looking: a kick after this is seen by hasWork
        try {
            if (stop) {
                return retire();
            }
            if (!handedOver) {
                postsLocked = cq.shared(); // nothing posted yet: from the first post on, under the lock if shared
                if (!(handedOver = cq.handedOver(this))) {
                    return false; // an earlier poster of the shared CQ has not acknowledged yet (it was kicked)
                }
            }
            boolean worked = engine != null && reap() > 0;
            if (!postsLocked && cq.shared()) {
                postsLocked = true; // a second SQ joined our CQ: from now on we post under its lock
            }
            if (!held.isEmpty() && !poster.postHeld(head)) {
                return worked; // the CQ is still full (or BME clear): fetch nothing
            }
            backpressured = false;
            if (!host.busMasterEnabled()) {
                return worked; // no DMA allowed: the controller kicks its workers when BME is set again
            }
            handler.poll(this);
            int tail = fetchTail();
            if (tail >= 0 && tail != head) {
                if (slots != null && !slots.hasFree() || lane != null && !lane.hasRoom()) {
                    backpressured = true; // a completion frees a slot (or an offload cell) and wakes the thread
                    return worked;
                }
                idle.ran(drain(tail));
                if (engine != null) {
                    submitBatch(); // once per batch: one io_uring_enter, one hand-over to the I/O threads, one NBD send
                }
                worked = true;
            }
            return worked;
        } catch (GuestMemoryException e) {
            host.fatal("queue " + sq.qid + ": completion queue not writable: " + e.getMessage());
            stop = true;
            return true;
        } catch (Throwable t) {
            host.fatal("queue " + sq.qid + " worker failed: " + t);
            stop = true;
            return true;
        }
    }

    /**
     * Nothing to do now: how long the thread may sleep for this queue. Spin (0) after a one-command busy period;
     * then, with DBBUF and a deep busy period, nap with EventIdx one slot behind head: the one value the guest's
     * tail cannot pass before we consume more (the tail stops at head - 1 when the queue is full), so
     * {@code nvme_dbbuf_need_event} stays false, even across a wrap, and the guest writes only the shadow slot;
     * otherwise the safety-net sleep, after {@link #prepareToSleep} re-armed.
     */
    @Override
    public long idleNanos() {
        if (life.registration == null || stop) {
            return life.registration == null ? HAND_OVER_LOOK_NANOS : STOP_LOOK_NANOS;
        }
        if (!handedOver) {
            return HAND_OVER_LOOK_NANOS;
        }
        if (!held.isEmpty()) {
            return host.busMasterEnabled() ? CQ_FULL_LOOK_NANOS : idle.busMasterWaitNanos();
        }
        if (!host.busMasterEnabled()) {
            return idle.busMasterWaitNanos();
        }
        if (backpressured) {
            return looks(idle.parkNanos(sq.shadowed()));
        }
        if (idle.spinning(slots == null ? 0 : slots.inUse(), sq.shadowed())) {
            return 0; // spinning is for QD1, not for deep queues (never with operations in flight)
        }
        host.flushInterrupts(cq, stats);
        long nap = idle.napNanos(sq.shadowed());
        if (nap > 0) {
            if (!sq.publishEventIdx((head == 0 ? sq.size : head) - 1)) {
                return 0; // the shadow page is gone: the queue fell back to its MMIO or polled doorbell
            }
            idle.napStarted(nap);
            return looks(nap);
        }
        return looks(idle.parkNanos(sq.shadowed()));
    }

    /** With operations in flight on an engine that cannot signal them: no longer than its look interval. */
    private long looks(long nanos) {
        if (engine != null && !engine.signalsCompletions() && slots.inUse() > 0) {
            return Math.min(nanos, UNSIGNALLED_LOOK_NANOS);
        }
        return nanos;
    }

    /**
     * Arms this queue's wake-ups before a sleep: with a held completion the CQ EventIdx (= the known head, so the
     * host's next head update rings the doorbell), with an empty SQ under DBBUF the SQ EventIdx = head (Linux
     * {@code nvme_dbbuf_update_and_check_event}: the host stores the shadow tail, fences, loads EventIdx and
     * rings if it passed it), each followed by a full fence and a re-check. A nap keeps its lagging EventIdx.
     */
    @Override
    public boolean prepareToSleep() {
        if (life.registration == null || stop || !handedOver) {
            return false;
        }
        if (!held.isEmpty()) {
            if (!host.busMasterEnabled()) {
                return false;
            }
            host.flushInterrupts(cq, stats); // the host must see what is already posted, or it never frees space
            cq.waiting = true;
            armed = true;
            cq.publishEventIdx(cq.cachedHead()); // no-op without a reachable shadow slot
            GuestMemory.fullFence();
            return cq.headMoved(stats, invalidHead);
        }
        if (idle.inNap() || backpressured || !host.busMasterEnabled()) {
            return false;
        }
        if (sq.shadowed()) {
            sq.publishEventIdx(head); // an unreachable page falls back: the re-check then reads MMIO
            GuestMemory.fullFence();
            int again = fetchTail();
            if (again >= 0 && again != head) {
                return true;
            }
        }
        armed = true;
        return false;
    }

    /** The re-check after the thread published that it sleeps (the other half of {@link #wake}'s Dekker). */
    @Override
    public boolean hasWork() {
        if (life.registration == null) {
            return false;
        }
        if (stop) {
            return slots == null || slots.inUse() == 0 || engine.hasCompletions();
        }
        if (kicked || engine != null && engine.hasCompletions()) {
            return true;
        }
        if (!handedOver || idle.inNap() || backpressured || !host.busMasterEnabled()) {
            return false; // each ends by its timed look, a completion or a kick
        }
        if (!held.isEmpty()) {
            return cq.headMoved(stats, invalidHead);
        }
        int t = fetchTail();
        return t >= 0 && t != head;
    }

    /**
     * The worker stops: nothing is posted any more; it waits (polled, never blocking its thread) for every
     * operation still in flight (the kernel may still DMA into guest memory until it completes; the controller's
     * reset waits for {@link #awaitExit}), then releases the engine and leaves its thread.
     */
    private boolean retire() {
        held.clear();
        if (engine != null && slots.inUse() > 0) {
            submitBatch(); // anything prepared but not handed over completes through the engine too
            return engine.reap(reaped) > 0;
        }
        if (engine != null && !engineClosed) {
            engineClosed = true;
            engine.close();
        }
        life.leave();
        return false;
    }

    /** Starts what the batch prepared: the engine's operations, then what the backends' paths held back. */
    private void submitBatch() {
        engine.submit();
        handler.submitPrepared();
    }

    /** Posts the completions the engine has now; returns how many operations completed. */
    private int reap() throws GuestMemoryException {
        int n = engine.reap(reaped);
        if (n > 0) {
            submitBatch(); // a completion may have prepared the next step of a command (DSM ranges)
            poster.signal();
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
            post(cid, CommandHandler.status(status), CommandHandler.dw0(status));
        } catch (GuestMemoryException e) {
            postFailure = e;
        }
    }

    /** Tail to consume up to, or -1 ({@link DoorbellSource#INVALID}) if the doorbell value is invalid. */
    private int fetchTail() {
        return sq.loadTail(stats, invalidTail);
    }

    /** The batch counter: odd while this worker executes commands ({@link WorkerGrace}). */
    long batchEpoch() {
        return batchEpoch;
    }

    /** True if the caller is the thread that runs this worker. */
    boolean isCurrentThread() {
        return life.onThread();
    }

    /** True once the worker ended: it can no longer touch guest memory. */
    boolean terminated() {
        return life.ended();
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
        // A held completion (CQ full) stops the batch: nothing more is fetched until it is posted.
        while (head != tail && !stop && held.isEmpty() && host.busMasterEnabled() && (slots == null || slots.hasFree())
                && (lane == null || lane.hasRoom())) {
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
            }
        }
        poster.signal();
        return commands;
    }

    /**
     * Posts a completion for this SQ, or holds it while the CQ is full or Bus Master Enable is clear
     * ({@link CqePoster}). Returns false, posting nothing, once the worker is stopping ({@link #requestStop}): a
     * command whose backend call outlived a reset or a Delete I/O SQ must not write into a CQ the host may already
     * reuse.
     *
     * <p>Runs only on this worker's thread: from {@link #drain}, from {@link #completed}, and from the handler's
     * {@link CommandHandler#poll} for deferred completions (the admin queue's Asynchronous Event Requests).
     * Tail, phase and head of the CQ belong to the poster (see {@link CompletionQueue}).
     */
    public boolean post(int cid, int status, int dw0) throws GuestMemoryException {
        assert life.registration == null || life.onThread() : "QueueWorker.post off its worker thread";
        if (stop) {
            return false;
        }
        if (!postsLocked && cq.shared()) {
            postsLocked = true; // hand-over acknowledged (CompletionQueue.handedOver): the CQ now locks
        }
        poster.post(head, cid, status, dw0);
        return true;
    }
}
