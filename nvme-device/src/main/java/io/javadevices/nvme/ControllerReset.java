package io.javadevices.nvme;

import io.javadevices.nvme.queue.QueueWorker;

import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Completes controller resets, shutdowns and queue deletions only once no queue worker involved can
 * touch guest memory any more, without holding the thread that asked for them.
 *
 * <p>A CC.EN 1→0 write (NVMe 1.4 §7.6.1, controller reset §7.3.2), CC.SHN (§7.6.2), an FLR or
 * {@link io.javadevices.pci.PciDevice#reset()} only tells the workers to stop ({@link #begin}) and
 * returns: the register write must not stall the vCPU for as long as a backend call runs. One thread
 * per controller ({@code nvme-reset}) then waits until every worker has ended and runs the rest of the
 * request (the teardown that clears CSTS.RDY, or SHST = complete). Requests run in order, so a later
 * reset completes only after an earlier one did. With no worker left running (none was started, or all
 * have ended) the request completes at once on the caller's thread.
 *
 * <p>A worker still inside its backend after {@code boundNanos} (CAP.TO) is reported through
 * {@code fatal} as CSTS.CFS and waited for further: the controller never claims RDY = 0 while a
 * worker could still DMA (Linux frees and reuses the queue memory once it sees RDY = 0). When the
 * worker finally returns it posts nothing ({@link QueueWorker#post} checks its stop flag) and the reset
 * completes then.
 */
final class ControllerReset {
    private static final long LOOK_MILLIS = 20;

    private final long boundNanos;
    private final Consumer<String> fatal;
    private final ThreadPoolExecutor thread;
    /** Requests begun and not yet completed (volatile reads only: the doorbell path looks at it). */
    private final AtomicInteger inProgress = new AtomicInteger();
    private volatile boolean closed;

    ControllerReset(long boundNanos, Consumer<String> fatal) {
        this.boundNanos = boundNanos;
        this.fatal = fatal;
        // Zero core threads: a controller that is not resetting has no extra thread.
        this.thread = new ThreadPoolExecutor(0, 1, 1, TimeUnit.SECONDS, new LinkedBlockingQueue<>(),
                r -> Thread.ofPlatform().daemon().name("nvme-reset").unstarted(r));
    }

    long boundNanos() {
        return boundNanos;
    }

    /**
     * Stops every worker {@code workers} returns (now, without waiting) and runs {@code then} on the
     * reset thread once all of them have ended. {@code workers} is asked again after they ended, so a
     * worker started meanwhile by a stopping admin command (Create I/O SQ) is stopped and awaited too.
     */
    void begin(Supplier<List<QueueWorker>> workers, Runnable then) {
        List<QueueWorker> now = workers.get();
        now.forEach(QueueWorker::requestStop);
        if (!inProgress() && allEnded(now) && allEnded(workers.get())) { // asked again: see awaitAll
            then.run(); // nothing left that could DMA: complete on the caller's thread, as before
            return;
        }
        inProgress.incrementAndGet();
        thread.execute(() -> {
            try {
                awaitAll(workers);
                if (!closed) {
                    then.run();
                }
            } finally {
                inProgress.decrementAndGet();
                synchronized (this) {
                    notifyAll();
                }
            }
        });
    }

    /** True from {@link #begin} until its completion ran: doorbells are ignored, CC.EN = 1 waits. */
    boolean inProgress() {
        return inProgress.get() > 0;
    }

    /** Waits up to {@code nanos} until no request is in progress; true if none is. */
    boolean awaitIdle(long nanos) {
        long deadline = System.nanoTime() + nanos;
        synchronized (this) {
            while (inProgress() && !closed) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(this, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return !inProgress();
                }
            }
        }
        return !inProgress();
    }

    /**
     * Delete I/O SQ (§5.6) on the admin worker: stops {@code worker} and waits until it ended; true then.
     * False if the admin worker is itself told to stop meanwhile (a reset: it completes nothing more).
     * Past the bound the controller reports CFS and goes on waiting.
     *
     * <p>Waiting on the admin worker is acceptable: admin commands run in order, and what follows a
     * Delete I/O SQ (its Delete I/O CQ, in Linux __nvme_disable_io_queues) must not run before it
     * anyway; Linux waits for each deletion with the admin timeout (60 s, above CAP.TO). The MMIO
     * thread is not held, and a reset still stops the admin worker within {@link #LOOK_MILLIS}.
     */
    boolean stopAndAwait(QueueWorker worker, QueueWorker admin) {
        worker.requestStop();
        long deadline = System.nanoTime() + boundNanos;
        boolean reported = false;
        while (!worker.awaitExit(LOOK_MILLIS)) {
            if (admin.stopping() || closed) {
                return false;
            }
            if (!reported && System.nanoTime() - deadline > 0) {
                reported = true;
                fatal.accept("queue " + worker.queue().qid + " worker did not stop within "
                        + boundNanos / 1_000_000 + " ms of Delete I/O SQ");
            }
        }
        return true;
    }

    private void awaitAll(Supplier<List<QueueWorker>> workers) {
        long deadline = System.nanoTime() + boundNanos;
        boolean reported = false;
        while (!closed) {
            for (QueueWorker w : workers.get()) {
                w.requestStop();
                while (!w.awaitExit(LOOK_MILLIS) && !closed) {
                    if (!reported && System.nanoTime() - deadline > 0) {
                        reported = true;
                        fatal.accept("queue " + w.queue().qid + " worker did not stop within "
                                + boundNanos / 1_000_000 + " ms of a controller reset");
                    }
                }
            }
            // Every worker listed has ended. A stopping admin worker may have started one more (Create I/O SQ)
            // after the list was taken and then ended at once: only a list asked for now, after the admin
            // worker ended, holds it for sure.
            if (allEnded(workers.get())) {
                return;
            }
        }
    }

    private static boolean allEnded(List<QueueWorker> workers) {
        for (QueueWorker w : workers) {
            if (!w.awaitExit(0)) {
                return false;
            }
        }
        return true;
    }

    /**
     * The controller is closing: waits up to the bound for the requests under way, then stops waiting (a
     * worker still stuck is abandoned) and ends the thread.
     */
    void close() {
        awaitIdle(boundNanos);
        closed = true;
        synchronized (this) {
            notifyAll();
        }
        thread.shutdown();
    }
}
