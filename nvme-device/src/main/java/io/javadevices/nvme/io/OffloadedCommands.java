package io.javadevices.nvme.io;

import io.javadevices.nvme.queue.CommandHandler;
import io.javadevices.nvme.queue.InFlight;
import io.javadevices.nvme.queue.NamespaceView;
import io.javadevices.nvme.queue.OffloadLane;
import io.javadevices.nvme.queue.QueueStats;
import io.javadevices.nvme.queue.QueueWorker;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Status;

/**
 * The NVM commands that would block a shared polling thread, and their hand-over to the controller's offload
 * thread ({@link io.javadevices.nvme.queue.CommandOffload}) through the queue's {@link OffloadLane}:
 * <ul>
 * <li>Flush of every namespace (NSID FFFFFFFFh): one flush per namespace in a row;</li>
 * <li>Compare, Verify and Copy, and Read with FUA (its sync), on a backend that {@link NamespaceView#mayBlock}:
 *     they call its blocking methods (no asynchronous form: they read into a buffer of the command's own);</li>
 * <li>every command on such a backend without an asynchronous path for this queue (a file whose io_uring
 *     descriptor could not be opened).</li>
 * </ul>
 * Write Uncorrectable only marks blocks in memory and RAM and null namespaces are memory copies: they stay on the
 * worker. A queue without an engine ({@code io-engine=sync}) has no lane: it runs everything itself, on a thread
 * of its own.
 *
 * <p>The command takes an in-flight slot (so resets, Delete I/O SQ, namespace removal and the guest memory unmap
 * barrier wait for it as for any asynchronous operation) and a lane cell holding a copy of its SQE. The offload
 * thread runs it from the start (all checks again) on a second {@link IoCommandHandler} of this queue, with data
 * pointer and buffers of its own and no asynchronous path; its result comes back through the engine
 * ({@link #completed}).
 */
final class OffloadedCommands {
    private final IoContext context;
    /** The handler that runs offloaded commands (offload thread only; made by that thread on its first one). */
    private IoCommandHandler offThread;

    OffloadedCommands(IoContext context) {
        this.context = context;
    }

    /**
     * True if the command should go to the offload thread: {@code view}'s backend may block, and either the
     * command calls its blocking methods ({@code blockingCommand}) or the backend has no asynchronous path here.
     */
    static boolean wanted(NamespaceView view, boolean blockingCommand, QueueWorker worker) {
        return view.mayBlock() && (blockingCommand || view.async() == null) && worker.offloadLane() != null;
    }

    /** Hands {@code cmd} over: a slot and a lane cell (the worker fetched it with both free); returns SUBMITTED. */
    static int handOver(Sqe cmd, QueueWorker worker) {
        InFlight slots = worker.inFlight();
        int tag = slots.claim();
        slots.set(tag, cmd.cid(), AsyncCommands.OFFLOADED, null, 0, 0, 0, System.nanoTime());
        worker.offloadLane().handOver(cmd, tag);
        return AsyncCommands.SUBMITTED;
    }

    /** The offloaded command of slot {@code tag} completed; {@code cell} is its lane cell. Worker thread. */
    static long completed(int cell, QueueWorker worker) {
        return worker.offloadLane().finish(cell, worker.stats());
    }

    /** Runs an offloaded command (offload thread), counting into {@code counts}. */
    long execute(Sqe cmd, QueueWorker worker, QueueStats counts) {
        IoCommandHandler h = offThread;
        if (h == null) {
            h = offThread = new IoCommandHandler(context, true);
        }
        long result = h.executeHere(cmd, worker, counts);
        return CommandHandler.status(result) == AsyncCommands.SUBMITTED
                ? CommandHandler.result(Status.INTERNAL_ERROR) // cannot happen: that handler has no asynchronous path
                : result;
    }
}
