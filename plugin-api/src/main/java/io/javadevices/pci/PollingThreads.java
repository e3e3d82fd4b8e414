package io.javadevices.pci;

import java.lang.invoke.VarHandle;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The {@link WorkerPool}: a fixed set of daemon threads ({@code name-0}, {@code name-1}, ...), each running the
 * pollers placed on it in turn, optionally each pinned to one CPU. A new poller goes to the thread with the fewest
 * pollers, so a device with as many queues as there are threads gets one thread per queue.
 *
 * <p>One thread's loop: poll every poller; if any had work, poll again. Otherwise ask each for
 * {@link WorkerPool.Poller#idleNanos}; with 0 (a poller spins) poll again at once; else the sleep protocol of the
 * contract: {@link WorkerPool.Poller#prepareToSleep} on each (each arms its own wake-ups, or keeps its nap), publish
 * {@code SLEEPING}, full fence, {@link WorkerPool.Poller#hasWork} on each, and sleep for the least idle time unless
 * one had work. {@link Registration#wake} does a full fence, then signals only if it sees {@code SLEEPING}: with the
 * store of the work (a doorbell value, a completion) before it, this is Dekker's pattern, so either the waker sees
 * the thread sleeping or the thread's re-check sees the work. One waker per sleep wins the move back to
 * {@code AWAKE} and signals. The woken thread never waits for that signal to be written: it may already run on the
 * waker's CPU (the write woke it), and waiting there would only keep the waker off its CPU. A signal that lands
 * after the thread woke for another reason makes its next sleep return at once, which costs one idle turn and
 * loses nothing: the re-check before every sleep is what guarantees the work is seen. A thread woken while its
 * waker is still inside the write yields once, so that a waker in the middle of a batch (an NBD reader completing a
 * burst of replies) finishes it first and the thread then serves the whole batch in one turn. Only the end of the thread
 * waits, for wakers still writing, before it closes the eventfd ({@code signallers}: the thread publishes
 * {@code ended}, then reads the count; a waker counts itself, then reads {@code ended}; Dekker once more).
 *
 * <p>A thread sleeps in {@code ppoll} on an eventfd of its own ({@link EventfdSleep}), which a kernel can signal
 * too: an io_uring that registered {@link Registration#wakeFd} wakes the thread for its completions, so a thread
 * serving several rings never blocks in any one of them. Without eventfds (not Linux, native access denied) it
 * parks, and {@link Registration#wakeFd} is -1.
 *
 * <p>The loop allocates nothing, takes no lock and logs nothing: the pollers are a copy-on-write array read once
 * per turn, and the turn counter that {@link Registration#remove} waits on is one volatile store per turn. A
 * poller that throws (a device bug: pollers catch their own failures) is logged once and removed, so the thread
 * goes on serving the others.
 */
public final class PollingThreads implements WorkerPool, AutoCloseable {
    private static final System.Logger LOG = System.getLogger(PollingThreads.class.getName());
    private static final Slot[] NONE = new Slot[0];
    private static final int AWAKE = 0, SLEEPING = 1;

    private final Worker[] workers;
    private final AtomicBoolean pinFailureLogged = new AtomicBoolean();
    private volatile boolean closed;

    private PollingThreads(String name, int threads, int[] cpus) {
        this.workers = new Worker[threads];
        for (int i = 0; i < threads; i++) {
            int cpu = cpus == null || cpus.length == 0 ? -1 : cpus[i % cpus.length];
            workers[i] = new Worker(name + "-" + i, cpu);
        }
        for (Worker w : workers) {
            w.thread.start();
        }
    }

    /**
     * Starts {@code threads} polling threads named {@code name-N}.
     *
     * @param cpus null or empty: no pinning; else thread {@code i} is pinned to {@code cpus[i % cpus.length]}
     *             (a failure to pin is logged once and the thread runs unpinned)
     * @throws IllegalArgumentException threads outside 1..1024, or a CPU outside 0..1023
     */
    public static PollingThreads create(String name, int threads, int[] cpus) {
        if (threads < 1 || threads > 1024) {
            throw new IllegalArgumentException("worker threads " + threads + " outside 1..1024");
        }
        if (cpus != null) {
            for (int c : cpus) {
                if (c < 0 || c >= CpuAffinity.MAX_CPUS) {
                    throw new IllegalArgumentException("CPU " + c + " outside 0.." + (CpuAffinity.MAX_CPUS - 1));
                }
            }
        }
        return new PollingThreads(name, threads, cpus == null ? null : cpus.clone());
    }

    @Override
    public synchronized Registration add(Poller poller, String name) {
        if (closed) {
            throw new IllegalStateException("worker pool closed");
        }
        Worker least = workers[0];
        for (Worker w : workers) {
            if (w.slots.length < least.slots.length) {
                least = w;
            }
        }
        Slot slot = new Slot(poller, name, least);
        Slot[] next = Arrays.copyOf(least.slots, least.slots.length + 1);
        next[next.length - 1] = slot;
        least.slots = next;
        least.wake();
        return slot;
    }

    @Override
    public int threads() {
        return workers.length;
    }

    /** Pollers on each thread now (tests, statistics). */
    public synchronized int[] load() {
        return Arrays.stream(workers).mapToInt(w -> w.slots.length).toArray();
    }

    private synchronized void detach(Slot slot) {
        Worker w = slot.worker;
        Slot[] now = w.slots;
        int at = Arrays.asList(now).indexOf(slot);
        if (at < 0) {
            return;
        }
        Slot[] next = new Slot[now.length - 1];
        System.arraycopy(now, 0, next, 0, at);
        System.arraycopy(now, at + 1, next, at, now.length - at - 1);
        w.slots = next.length == 0 ? NONE : next;
    }

    /**
     * Ends the threads (after their current turn); the pollers still registered are not called again. Waits up
     * to a second for each thread. Idempotent.
     */
    @Override
    public void close() {
        closed = true;
        for (Worker w : workers) {
            w.wake();
        }
        for (Worker w : workers) {
            if (w.thread != Thread.currentThread()) {
                try {
                    w.thread.join(1000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /** One thread and the pollers placed on it. */
    private final class Worker implements Runnable {
        final Thread thread;
        final int cpu;
        volatile Slot[] slots = NONE;
        /** {@link #AWAKE} or {@link #SLEEPING}. */
        final AtomicInteger state = new AtomicInteger();
        /** Wakers between winning the move to {@code AWAKE} and the end of their eventfd write. */
        final AtomicInteger signallers = new AtomicInteger();
        /** Set once the thread left its loop: a waker that sees it writes nothing (the eventfd closes). */
        volatile boolean ended;
        /** Where the thread sleeps, or null: it parks. */
        final EventfdSleep eventfd = EventfdSleep.open();
        /** Turns begun (one volatile store per turn): {@link Slot#remove} waits for it to move. */
        volatile long turn;

        Worker(String name, int cpu) {
            this.cpu = cpu;
            this.thread = Thread.ofPlatform().daemon().name(name).unstarted(this);
        }

        @Override
        public void run() {
            if (cpu >= 0) {
                String failure = CpuAffinity.pinCurrentThread(cpu);
                if (failure != null && pinFailureLogged.compareAndSet(false, true)) {
                    LOG.log(System.Logger.Level.WARNING, "worker threads run unpinned: {0}", failure);
                }
            }
            try {
                loop();
            } finally {
                ended = true;
                VarHandle.fullFence(); // ended, then the count (a waker: the count, then ended)
                while (signallers.get() != 0) {
                    Thread.yield(); // a waker is writing the eventfd: it must not write to a closed descriptor
                }
                if (eventfd != null) {
                    eventfd.close();
                }
            }
        }

        private void loop() {
            while (!closed) {
                turn = turn + 1;
                Slot[] s = slots;
                if (pollAll(s)) {
                    continue;
                }
                long nanos = Long.MAX_VALUE;
                for (Slot slot : s) {
                    nanos = Math.min(nanos, slot.idleNanos());
                }
                if (nanos <= 0) {
                    Thread.onSpinWait(); // a poller spins (QD1): poll again at once
                    continue;
                }
                sleep(s, nanos);
            }
        }

        private boolean pollAll(Slot[] s) {
            boolean work = false;
            for (Slot slot : s) {
                if (slot.poll()) {
                    work = true;
                }
            }
            return work;
        }

        /** The contract's idle protocol: arm, publish sleeping, fence, re-check, sleep. */
        private void sleep(Slot[] s, long nanos) {
            for (Slot slot : s) {
                if (slot.prepareToSleep()) {
                    return;
                }
            }
            if (eventfd != null) {
                eventfd.drain(); // what signalled before is visible to the re-check below
            }
            state.set(SLEEPING);
            VarHandle.fullFence();
            try {
                for (Slot slot : s) {
                    if (slot.hasWork()) {
                        return;
                    }
                }
                if (slots != s || closed) {
                    return; // a poller came or went: look at the new set first
                }
                if (eventfd != null) {
                    eventfd.sleep(nanos);
                } else if (nanos == Long.MAX_VALUE) {
                    LockSupport.park(this);
                } else {
                    LockSupport.parkNanos(this, nanos);
                }
            } finally {
                state.set(AWAKE); // a waker that won the move first may still be writing its signal: see the class comment
                if (signallers.get() != 0) {
                    // Woken by a waker still inside its eventfd write: the kernel may run this thread on the waker's
                    // CPU at once, so give that CPU back once; the waker (an NBD reader in the middle of a burst of
                    // replies, a doorbell message) then finishes its batch before this thread serves it.
                    Thread.yield();
                }
            }
        }

        /** Ends the thread's sleep if it sleeps (after a full fence: see the class comment). Any thread. */
        void wake() {
            VarHandle.fullFence(); // the caller's store of the work, then the load of the state (Dekker)
            if (state.get() == SLEEPING && state.compareAndSet(SLEEPING, AWAKE)) {
                if (eventfd == null) {
                    LockSupport.unpark(thread); // no descriptor to outlive: unpark of an ended thread is a no-op
                    return;
                }
                signallers.incrementAndGet(); // the count, then ended (the thread: ended, then the count)
                try {
                    if (!ended) {
                        eventfd.signal();
                    }
                } finally {
                    signallers.decrementAndGet();
                }
            }
        }
    }

    /** A poller's place on its thread. */
    private final class Slot implements Registration {
        final Poller poller;
        final String name;
        final Worker worker;
        private volatile boolean removed;

        Slot(Poller poller, String name, Worker worker) {
            this.poller = poller;
            this.name = name;
            this.worker = worker;
        }

        boolean poll() {
            if (removed) {
                return false;
            }
            try {
                return poller.poll();
            } catch (Throwable t) {
                return failed(t);
            }
        }

        long idleNanos() {
            if (removed) {
                return Long.MAX_VALUE;
            }
            try {
                return poller.idleNanos();
            } catch (Throwable t) {
                failed(t);
                return 0;
            }
        }

        boolean prepareToSleep() {
            if (removed) {
                return false;
            }
            try {
                return poller.prepareToSleep();
            } catch (Throwable t) {
                return failed(t);
            }
        }

        boolean hasWork() {
            if (removed) {
                return false;
            }
            try {
                return poller.hasWork();
            } catch (Throwable t) {
                return failed(t);
            }
        }

        /** A poller let an exception out (a bug): it is not called again; the thread serves the others. */
        private boolean failed(Throwable t) {
            LOG.log(System.Logger.Level.ERROR, "poller " + name + " on " + worker.thread.getName()
                    + " failed and was removed", t);
            remove();
            return true;
        }

        @Override
        public void wake() {
            worker.wake();
        }

        @Override
        public int wakeFd() {
            return worker.eventfd == null ? -1 : worker.eventfd.fd();
        }

        @Override
        public boolean onPollerThread() {
            return Thread.currentThread() == worker.thread;
        }

        @Override
        public String threadName() {
            return worker.thread.getName();
        }

        @Override
        public void remove() {
            if (removed) {
                return;
            }
            removed = true;
            detach(this);
            if (onPollerThread()) {
                return; // the loop checks removed before each call; the current one is the last
            }
            // Wait until the thread began a turn after the removal: that turn reads the new poller array.
            long seen = worker.turn;
            while (worker.turn == seen && worker.thread.isAlive() && !closed) {
                worker.wake();
                LockSupport.parkNanos(10_000L);
            }
        }

        @Override
        public String toString() {
            return name + "@" + worker.thread.getName();
        }
    }
}
