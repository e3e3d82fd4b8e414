package io.javadevices.nvme.queue;

import io.javadevices.nvme.spec.Status;

/**
 * Executes the commands of one queue kind (admin or NVM I/O) on the queue's worker thread.
 * Results are packed by {@link #result(int, int)} so that nothing is allocated per command.
 */
public interface CommandHandler {
    /** Returned by {@link #execute} when the command completes later (Asynchronous Event Request). */
    long DEFERRED = Long.MIN_VALUE;

    /** Executes {@code cmd}; returns {@link #result} or {@link #DEFERRED}. Must not throw (the worker guards anyway). */
    long execute(Sqe cmd, QueueWorker worker);

    /**
     * The asynchronous operation of in-flight slot {@code tag} completed with {@code result} (bytes or a negated
     * errno, {@link io.javadevices.nvme.backend.IoEngine}): returns the command's {@link #result} to post, or
     * {@link #DEFERRED} if the command goes on with another operation in the same slot. Worker thread.
     */
    default long completed(int tag, int result, QueueWorker worker) {
        return result(Status.INTERNAL_ERROR);
    }

    /**
     * Runs a command this handler handed to its queue's {@link OffloadLane}, on the controller's offload thread
     * ({@link CommandOffload}), start to end with the backend's blocking methods; what it counts goes to
     * {@code counts} (that thread's), never to the worker's statistics. Returns its {@link #result}.
     */
    default long executeOffloaded(Sqe cmd, QueueWorker worker, QueueStats counts) {
        return result(Status.INTERNAL_ERROR);
    }

    /**
     * Starts what the commands of this batch prepared and held back ({@link io.javadevices.nvme.backend.AsyncIo#submit}).
     * The worker calls it right after every {@link io.javadevices.nvme.backend.IoEngine#submit}.
     */
    default void submitPrepared() {
    }

    /** Called by the worker on each loop iteration (the admin handler completes queued async events here). */
    default void poll(QueueWorker worker) {
    }

    static long result(int status, int dw0) {
        return ((long) status << 32) | (dw0 & 0xFFFF_FFFFL);
    }

    static long result(int status) {
        return (long) status << 32;
    }

    static int status(long result) {
        return (int) (result >>> 32);
    }

    static int dw0(long result) {
        return (int) result;
    }
}
