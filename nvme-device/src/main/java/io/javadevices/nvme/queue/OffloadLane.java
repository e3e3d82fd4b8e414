package io.javadevices.nvme.queue;

import io.javadevices.nvme.backend.IoEngine;
import io.javadevices.nvme.spec.Status;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * One I/O queue's hand-over of commands that would block its polling thread to the controller's
 * {@link CommandOffload}: a fixed set of {@link #CELLS} cells, each holding a copy of one SQE, its in-flight slot's
 * tag and, once run, its result and what it counted. The command keeps its {@link InFlight} slot while it runs
 * elsewhere, so everything that waits for the operations in flight (a reset's {@link QueueWorker#awaitExit}, Delete
 * I/O SQ, the guest-memory unmap barrier {@link WorkerQuiescer}) waits for it too; its completion comes back through
 * the queue's own engine ({@link IoEngine#complete}, the lock-free {@code CompletionInbox}), so the CQE is posted by
 * the worker as every other one.
 *
 * <p>Threads: {@link #hasRoom}, {@link #handOver} and {@link #finish} on the worker; {@link #poll} and
 * {@link #done} on the offload thread. Cells are owned by one side at a time: free and handed over by the worker,
 * taken and run by the offload thread, finished by the worker after the engine delivered the completion (which
 * orders the result's stores before the worker's loads). Nothing is allocated per command and nothing is shared
 * with another queue but the controller's list of lanes with work ({@link CommandOffload#schedule}: one CAS when
 * the lane was idle).
 */
public final class OffloadLane {
    /**
     * Commands of one SQ at most on the offload thread, queued or running: with all cells taken the SQ fetches
     * nothing until one completes, so a guest flooding slow commands only holds back its own queue.
     */
    public static final int CELLS = 8;
    private static final VarHandle TAIL, SCHEDULED;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            TAIL = l.findVarHandle(OffloadLane.class, "tail", int.class);
            SCHEDULED = l.findVarHandle(OffloadLane.class, "scheduled", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    final QueueWorker worker;
    final CommandHandler handler;
    private final IoEngine engine;
    private final CommandOffload offload;
    private final Sqe[] sqes = new Sqe[CELLS];
    private final int[] tags = new int[CELLS];
    private final long[] results = new long[CELLS];
    private final long[][] counts = new long[CELLS][QueueStats.TRANSFER_COUNTS];
    /** Free cells (worker only). */
    private final int[] free = new int[CELLS];
    private int freeCount = CELLS;
    /** Cells handed over, in order: written by the worker up to {@link #tail}, taken by the offload thread. */
    private final int[] ring = new int[CELLS];
    @SuppressWarnings("unused") // through TAIL
    private volatile int tail;
    private int head; // offload thread only
    @SuppressWarnings("unused") // through SCHEDULED
    private volatile boolean scheduled;
    /** The next lane in the offload's list of lanes with work (written before the push that publishes it). */
    OffloadLane next;

    OffloadLane(QueueWorker worker, CommandHandler handler, IoEngine engine, CommandOffload offload) {
        this.worker = worker;
        this.handler = handler;
        this.engine = engine;
        this.offload = offload;
        for (int i = 0; i < CELLS; i++) {
            sqes[i] = new Sqe();
            free[i] = i;
        }
    }

    /** True if one more command can be handed over. Worker thread. */
    public boolean hasRoom() {
        return freeCount > 0;
    }

    /**
     * Hands {@code cmd}, which holds in-flight slot {@code tag}, to the offload thread; it completes later through
     * the engine with the cell's index as result ({@link #finish}). Worker thread, after {@link #hasRoom}.
     */
    public void handOver(Sqe cmd, int tag) {
        int cell = free[--freeCount];
        MemorySegment.copy(cmd.segment(), 0, sqes[cell].segment(), 0, 64);
        tags[cell] = tag;
        int t = (int) TAIL.get(this);
        ring[t & (CELLS - 1)] = cell;
        TAIL.setVolatile(this, t + 1); // then the volatile load of `scheduled` (Dekker with CommandOffload's run)
        offload.schedule(this);
    }

    /**
     * The offloaded command of {@code cell} completed (its engine completion, worker thread): adds what it counted
     * to {@code stats}, frees the cell and returns the command's result ({@link CommandHandler#result}).
     */
    public long finish(int cell, QueueStats stats) {
        if (cell < 0 || cell >= CELLS) {
            return CommandHandler.result(Status.INTERNAL_ERROR); // not a cell: cannot happen
        }
        stats.addTransfers(counts[cell]);
        free[freeCount++] = cell;
        return results[cell];
    }

    /** Marks the lane as listed for the offload thread; false if it already is. Worker thread. */
    boolean list() {
        return !(boolean) SCHEDULED.getVolatile(this) && SCHEDULED.compareAndSet(this, false, true);
    }

    /** The offload thread took the lane off its list: work handed over from now on lists it again. */
    void unlist() {
        SCHEDULED.setVolatile(this, false); // then the volatile load of the tail in poll
    }

    /** The next cell handed over and not yet taken, or -1. Offload thread. */
    int poll() {
        if (head == (int) TAIL.getVolatile(this)) {
            return -1;
        }
        return ring[head++ & (CELLS - 1)];
    }

    Sqe sqe(int cell) {
        return sqes[cell];
    }

    /** The command of {@code cell} ran: stores its result and counts, then completes its slot. Offload thread. */
    void done(int cell, long result, QueueStats counted) {
        results[cell] = result;
        counted.moveTransfersTo(counts[cell]);
        engine.complete(tags[cell], cell); // publishes the stores above to the worker's reap
    }
}
