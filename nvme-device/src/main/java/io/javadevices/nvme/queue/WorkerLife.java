package io.javadevices.nvme.queue;

import io.javadevices.pci.PollingThreads;
import io.javadevices.pci.WorkerPool;

/**
 * A {@link QueueWorker}'s place on its thread and its end: started on a pool (or on a thread of its own), stopped
 * before it started, ended (left its thread, nothing in flight), and the wait for that end.
 */
final class WorkerLife {
    private final Object lock = new Object();
    private boolean started; // under lock
    private boolean stopped; // under lock
    private volatile boolean ended;
    /** The worker's own thread (admin queue, tests), or null on a shared pool. Set before the registration. */
    private volatile PollingThreads ownThread;
    /** Set once placed; null before (the poller then does nothing yet). */
    volatile WorkerPool.Registration registration;

    /** Places {@code poller} on {@code pool}, or on a new thread of its own when null; nothing if already stopped. */
    void start(WorkerPool pool, WorkerPool.Poller poller, String name) {
        synchronized (lock) {
            if (stopped) {
                end(); // stopped before it ever started: it never ran, nothing was in flight
                return;
            }
            started = true;
        }
        WorkerPool threads = pool;
        if (threads == null) {
            ownThread = PollingThreads.create(name, 1, null);
            threads = ownThread;
        }
        try {
            registration = threads.add(poller, name);
        } catch (RuntimeException e) {
            end(); // a closed pool: the worker never runs, so nothing can wait for it to end
            throw e;
        }
    }

    /** The worker was told to stop: if it never started, it has ended now. */
    void stopRequested() {
        synchronized (lock) {
            stopped = true;
            if (!started) {
                end();
            }
        }
    }

    /** The worker's thread: it leaves the pool (and ends its own thread) and is ended. */
    void leave() {
        registration.remove();
        if (ownThread != null) {
            ownThread.close();
        }
        end();
    }

    /** The thread's name, or null before the start. */
    String threadName() {
        WorkerPool.Registration r = registration;
        return r == null ? null : r.threadName();
    }

    /** Wakes the worker's thread if it sleeps (nothing before the start). Any thread. */
    void wake() {
        WorkerPool.Registration r = registration;
        if (r != null) {
            r.wake();
        }
    }

    boolean ended() {
        return ended;
    }

    /** True if the caller is the thread that runs the worker. */
    boolean onThread() {
        WorkerPool.Registration r = registration;
        return r != null && r.onPollerThread();
    }

    /** Waits up to {@code millis} for the end; never on the worker's own thread (that wait could not end). */
    boolean await(long millis) {
        if (millis <= 0 || onThread()) {
            return ended; // just a look, or on the worker's own thread: no wait
        }
        if (!ended) {
            waitForEnd(millis);
        }
        if (ended) {
            joinOwnThread();
        }
        return ended;
    }

    private void waitForEnd(long millis) {
        long deadline = System.nanoTime() + millis * 1_000_000L;
        synchronized (lock) {
            while (!ended) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    break;
                }
                try {
                    lock.wait(Math.max(1, left / 1_000_000L));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
        }
    }

    /**
     * An ended worker with a thread of its own: that thread closed its pool and is on its way out; waiting for it
     * (not on it, and only for a real wait) means that once the end is reported the thread and its eventfd are gone
     * too, so a reset or a deleted queue leaves no descriptor behind even for a moment.
     */
    private void joinOwnThread() {
        PollingThreads own = ownThread;
        if (own != null) {
            own.close(); // idempotent: joins the thread (at most a second)
        }
    }

    private void end() {
        synchronized (lock) {
            ended = true;
            lock.notifyAll();
        }
    }
}
