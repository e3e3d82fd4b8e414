package io.javadevices.pci;

/**
 * Threads a host lends its devices for polling their queues: a bounded set (sized from the CPU count,
 * optionally pinned to CPUs) shared by every device the host serves, instead of one thread per queue per device
 * (SPDK's poll groups are the same idea). A device adds one {@link Poller} per queue; the pool runs each poller
 * on one of its threads, always the same one, so a queue's work stays ordered and needs no lock.
 *
 * <p>A poller must never block for long: its thread runs other devices' queues too. Work that may block (an
 * admin command that formats a namespace, a synchronous backend call of unbounded length) belongs on a thread
 * of the device's own.
 *
 * <p>The implementation lives with the host (the vfio-user server makes one per process); a device created
 * without a pool ({@link DeviceContext#workers()} null) makes a private one.
 */
public interface WorkerPool {

    /**
     * One queue's work, called only from its pool thread.
     *
     * <p>The idle protocol (the one NVMe's EventIdx needs, Linux {@code nvme_dbbuf_update_and_check_event}): when
     * every poller of a thread reported no work, the thread asks each for {@link #idleNanos()}, sleeps at most
     * the least of them, and before a sleep that only a wake-up ends it (1) calls {@link #prepareToSleep()} on
     * each (arm EventIdx, full fence, re-check), (2) publishes that it sleeps, (3) full fence, (4) asks each
     * {@link #hasWork()} once more. {@link Registration#wake()} after a doorbell store therefore never misses a
     * sleeping thread.
     */
    interface Poller {
        /** Runs the work ready now, a bounded batch; true if there was any (the thread then polls again). */
        boolean poll();

        /**
         * With no work: how long the thread may sleep before this poller needs polling again without a wake-up
         * (a polled doorbell page, a nap, a timer), in nanoseconds; {@code Long.MAX_VALUE} if only a wake-up
         * brings work; 0 to be polled again at once (spinning).
         */
        long idleNanos();

        /** About to sleep until woken: arm the wake-ups (EventIdx); true if work arrived meanwhile. */
        boolean prepareToSleep();

        /** A cheap re-check after the thread published that it sleeps: true if there is work. */
        boolean hasWork();
    }

    /** A poller's place in the pool. */
    interface Registration {
        /** Work arrived for the poller (a doorbell): wake its thread if it sleeps. Any thread; cheap when awake. */
        void wake();

        /** True if the caller is the thread that runs this poller. */
        boolean onPollerThread();

        /** The pool thread's name (for logs and stack traces). */
        String threadName();

        /**
         * A Linux eventfd whose signal also ends the sleep of this poller's thread, or -1 if the pool's threads do
         * not sleep on one. A poller whose work arrives from the kernel without a thread to call {@link #wake}
         * (an io_uring's completions: {@code IORING_REGISTER_EVENTFD}) lets the kernel signal it. Owned by the pool:
         * never closed or read by the poller. Default -1, so that a pool without eventfds needs nothing.
         */
        default int wakeFd() {
            return -1;
        }

        /**
         * Takes the poller out of the pool; returns once its thread no longer runs it (at once when called
         * from that thread, which then stops calling it after the current call). Idempotent.
         */
        void remove();
    }

    /** Adds a poller to the least loaded thread; its first {@link Poller#poll()} follows soon. */
    Registration add(Poller poller, String name);

    /** Number of threads. */
    int threads();
}
