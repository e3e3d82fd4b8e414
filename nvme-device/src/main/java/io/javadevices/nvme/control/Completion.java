package io.javadevices.nvme.control;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A piece of work the {@link io.javadevices.nvme.queue.WorkerGrace} runs later, on its own thread, once the commands
 * in flight have finished (a removed namespace's flush and close, a shrink's truncation), and the control call that
 * waits a bounded time for it: a worker stuck in its backend must not hang the control plane.
 */
final class Completion {
    /** The work: may fail with an exception, which {@link #failure} reports. */
    @FunctionalInterface
    interface Work {
        void run() throws Exception;
    }

    private final CountDownLatch done = new CountDownLatch(1);
    private volatile Exception failure;

    /** Runs {@code work} and records how it ended (the release thread). */
    void run(Work work) {
        try {
            work.run();
        } catch (Exception e) {
            failure = e;
        } finally {
            done.countDown();
        }
    }

    /** Waits at most {@code millis}: true if the work has run (successfully or not). */
    boolean await(long millis) {
        try {
            return done.await(millis, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** What the work failed with, or null (not failed, or not run yet). */
    Exception failure() {
        return failure;
    }
}
