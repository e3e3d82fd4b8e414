package io.javadevices.nvme.queue;

import io.javadevices.nvme.backend.IoEngine;
import io.javadevices.nvme.spec.Status;

import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * One controller's thread for the commands that would block a polling thread: a backend call that can take seconds
 * (an {@code fdatasync} on busy storage, an NBD server that answers late) run by a queue on the shared
 * {@link io.javadevices.pci.WorkerPool} would stall every other VM's queues on that thread. Such a command is
 * handed over through its queue's {@link OffloadLane} and run here, one at a time, by
 * {@link CommandHandler#executeOffloaded}; its completion goes back through the queue's engine and is posted by
 * the queue's worker. The thread starts with the first command handed over, so a controller that never sends
 * one has none; it belongs to one controller, so a command stuck here delays only that controller's offloaded
 * commands, never another's.
 *
 * <p>Lanes with work form a lock-free list (Linux {@code llist_add}/{@code llist_del_all}: a CAS push by the
 * workers, one swap by this thread), each lane listed at most once. The thread parks with Dekker's pattern on
 * both sides (store "parked", load the list; push, load "parked").
 *
 * <p>Like a queue worker, this thread counts its executions ({@link #batchEpoch}: odd while a command runs), so
 * the namespace-delete grace ({@link WorkerGrace}) also waits for a command that looked the namespace up here.
 */
public final class CommandOffload {
    /** While Bus Master Enable is clear: how often to look whether it is set again. */
    private static final long BUS_MASTER_LOOK_NANOS = 1_000_000L;
    private final String name;
    private final AtomicReference<OffloadLane> listed = new AtomicReference<>();
    /** What the running command counts (reads, writes, flushes), moved into its cell when it is done. */
    private final QueueStats counts = new QueueStats();
    private volatile Thread thread;
    private volatile boolean parked;
    private volatile boolean closed;
    private volatile long batchEpoch;

    /** @param name the thread's name, e.g. {@code nvme-offload} */
    public CommandOffload(String name) {
        this.name = name;
    }

    /** A lane for {@code worker}'s commands (made once per I/O queue that has an engine). */
    OffloadLane lane(QueueWorker worker, CommandHandler handler, IoEngine engine) {
        return new OffloadLane(worker, handler, engine, this);
    }

    /** {@code lane} has work: lists it unless it is listed, and wakes the thread. Worker thread. */
    void schedule(OffloadLane lane) {
        if (!lane.list()) {
            return; // listed: the thread takes it off its list before it looks at its cells (see run)
        }
        OffloadLane top;
        do {
            top = listed.get();
            lane.next = top;
        } while (!listed.compareAndSet(top, lane));
        Thread t = thread;
        if (t == null) {
            t = start();
        }
        if (parked) {
            LockSupport.unpark(t);
        }
    }

    private synchronized Thread start() {
        Thread t = thread;
        if (t == null && !closed) {
            t = Thread.ofPlatform().daemon().name(name).unstarted(this::run);
            thread = t;
            t.start();
        }
        return t;
    }

    /** Odd while a command runs here (written by this thread only). */
    long batchEpoch() {
        return batchEpoch;
    }

    /** The offload thread's name, or null before its first command. */
    public String threadName() {
        Thread t = thread;
        return t == null ? null : t.getName();
    }

    private void run() {
        while (true) {
            OffloadLane lanes = listed.getAndSet(null);
            if (lanes == null) {
                if (closed) {
                    return; // after a last look: a command handed over before the close completes (aborted)
                }
                parked = true;
                if (listed.get() == null && !closed) {
                    LockSupport.park(this);
                }
                parked = false;
                continue;
            }
            while (lanes != null) {
                OffloadLane lane = lanes;
                lanes = lane.next; // read before unlisting: a worker may list the lane again at once
                lane.next = null;
                lane.unlist();
                for (int cell = lane.poll(); cell >= 0; cell = lane.poll()) {
                    execute(lane, cell);
                }
            }
        }
    }

    private void execute(OffloadLane lane, int cell) {
        QueueWorker worker = lane.worker;
        // No DMA while Bus Master Enable is clear (PCI Local Bus 3.0 §6.2.2): a command handed over before the host
        // cleared it starts only once it is set again, as the worker fetches nothing meanwhile. A stopping queue
        // (reset, Delete I/O SQ) posts nothing any more: its commands not yet started never run.
        while (!worker.busMasterEnabled() && !worker.stopping() && !closed) {
            LockSupport.parkNanos(BUS_MASTER_LOOK_NANOS);
        }
        if (worker.stopping() || closed) {
            lane.done(cell, CommandHandler.result(Status.ABORTED_SQ_DELETION), counts);
            return;
        }
        long result;
        batchEpoch = batchEpoch + 1; // odd before the command looks a namespace up (see WorkerGrace)
        try {
            result = lane.handler.executeOffloaded(lane.sqe(cell), worker, counts);
        } catch (RuntimeException | Error e) {
            // One bad command must not end the thread: Internal Error, recorded as a worker records it.
            worker.commandFailed(lane.sqe(cell).cid(), e);
            result = CommandHandler.result(Status.INTERNAL_ERROR);
        } finally {
            batchEpoch = batchEpoch + 1;
        }
        lane.done(cell, result, counts);
    }

    /**
     * The controller closed: the thread ends once it is idle (never interrupted: that would close a FileChannel
     * under a command; one still stuck in its backend ends when the backend returns).
     */
    public void close() {
        closed = true;
        Thread t;
        synchronized (this) {
            t = thread;
        }
        if (t != null) {
            LockSupport.unpark(t);
        }
    }
}
