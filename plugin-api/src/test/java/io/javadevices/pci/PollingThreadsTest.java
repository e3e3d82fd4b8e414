package io.javadevices.pci;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.*;

@Timeout(30)
class PollingThreadsTest {
    private PollingThreads pool;

    @AfterEach
    void close() {
        if (pool != null) {
            pool.close();
        }
    }

    /** Work is a counter others raise; only a wake-up (or the poller's own timer) brings the thread back. */
    static class Counter implements WorkerPool.Poller {
        final AtomicLong produced = new AtomicLong();
        final AtomicLong polls = new AtomicLong();
        volatile long consumed;
        volatile long idle = Long.MAX_VALUE;
        volatile String thread;

        @Override
        public boolean poll() {
            polls.incrementAndGet();
            thread = Thread.currentThread().getName();
            long p = produced.get();
            if (p != consumed) {
                consumed = p;
                return true;
            }
            return false;
        }

        @Override
        public long idleNanos() {
            return idle;
        }

        @Override
        public boolean prepareToSleep() {
            return false;
        }

        @Override
        public boolean hasWork() {
            return produced.get() != consumed;
        }
    }

    @Test
    void threadsAreNamedAndPollersGoToTheLeastLoaded() {
        pool = PollingThreads.create("t", 2, null);
        assertEquals(2, pool.threads());
        Counter[] c = new Counter[5];
        WorkerPool.Registration[] r = new WorkerPool.Registration[5];
        for (int i = 0; i < 5; i++) {
            c[i] = new Counter();
            r[i] = pool.add(c[i], "p" + i);
        }
        assertArrayEquals(new int[] {3, 2}, pool.load());
        assertEquals("t-0", r[0].threadName());
        assertEquals("t-1", r[1].threadName());
        assertEquals("t-0", r[2].threadName());
        r[0].remove();
        r[2].remove();
        assertArrayEquals(new int[] {1, 2}, pool.load());
        assertEquals("t-0", pool.add(new Counter(), "next").threadName(), "the emptier thread gets the next one");
        assertFalse(r[1].onPollerThread());
    }

    @Test
    void noWakeUpIsLostOverManyRoundTrips() throws Exception {
        pool = PollingThreads.create("t", 1, null);
        Counter a = new Counter(), b = new Counter();
        WorkerPool.Registration ra = pool.add(a, "a");
        WorkerPool.Registration rb = pool.add(b, "b");
        for (int i = 1; i <= 20_000; i++) {
            Counter c = (i & 1) == 0 ? a : b;
            long want = c.produced.incrementAndGet();
            ((i & 1) == 0 ? ra : rb).wake();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5); // idle is forever: only wake() helps
            while (c.consumed != want) {
                assertTrue(System.nanoTime() < deadline, "wake-up " + i + " lost");
                Thread.onSpinWait();
            }
        }
    }

    @Test
    void manyWakersAtOnceLoseNoWakeUp() throws Exception {
        pool = PollingThreads.create("t", 1, null);
        Counter c = new Counter();
        WorkerPool.Registration r = pool.add(c, "c");
        int wakers = 3, each = 5_000;
        Thread[] threads = new Thread[wakers];
        AtomicReference<Throwable> failure = new AtomicReference<>();
        for (int w = 0; w < wakers; w++) {
            threads[w] = Thread.ofPlatform().start(() -> {
                try {
                    for (int i = 0; i < each; i++) {
                        long want = c.produced.incrementAndGet();
                        r.wake();
                        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
                        while (c.consumed < want) { // idle is forever: only some waker's wake() helps
                            if (System.nanoTime() > deadline) {
                                throw new AssertionError("work " + want + " not seen; consumed " + c.consumed);
                            }
                            Thread.onSpinWait();
                        }
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            });
        }
        for (Thread t : threads) {
            t.join();
        }
        assertNull(failure.get());
        assertEquals((long) wakers * each, c.consumed);
    }

    @Test
    void wakersRacingTheEndOfThePoolNeverTouchItsClosedEventfd() throws Exception {
        // A waker that won the move to AWAKE may still be writing its signal when the thread ends; the thread waits
        // for it before closing the eventfd (and its memory: a late write would throw IllegalStateException here).
        for (int round = 0; round < 50; round++) {
            PollingThreads p = PollingThreads.create("end", 1, null);
            Counter c = new Counter();
            WorkerPool.Registration r = p.add(c, "c");
            AtomicReference<Throwable> failure = new AtomicReference<>();
            CountDownLatch started = new CountDownLatch(2);
            Thread[] wakers = new Thread[2];
            for (int w = 0; w < wakers.length; w++) {
                wakers[w] = Thread.ofPlatform().start(() -> {
                    started.countDown();
                    try {
                        for (int i = 0; i < 20_000; i++) {
                            c.produced.incrementAndGet();
                            r.wake();
                        }
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    }
                });
            }
            started.await();
            p.close();
            for (Thread t : wakers) {
                t.join();
            }
            assertNull(failure.get(), "round " + round);
        }
    }

    @Test
    void aTimedIdlePollsAgainWithoutAWakeUp() throws Exception {
        pool = PollingThreads.create("t", 1, null);
        Counter c = new Counter();
        c.idle = 1_000_000L; // 1 ms
        pool.add(c, "timer");
        long before = c.polls.get();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (c.polls.get() < before + 5) {
            assertTrue(System.nanoTime() < deadline, "the 1 ms idle did not end by itself");
            Thread.sleep(1);
        }
    }

    @Test
    void prepareToSleepReportingWorkKeepsTheThreadPolling() throws Exception {
        pool = PollingThreads.create("t", 1, null);
        AtomicInteger prepared = new AtomicInteger();
        Counter c = new Counter() {
            @Override
            public boolean prepareToSleep() {
                return prepared.incrementAndGet() < 100; // "work arrived while arming", 99 times
            }
        };
        pool.add(c, "arming");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (prepared.get() < 100) {
            assertTrue(System.nanoTime() < deadline);
            Thread.sleep(1);
        }
        assertTrue(c.polls.get() >= 100, "polled again after each arm that found work: " + c.polls.get());
    }

    @Test
    void removeFromItsOwnThreadStopsTheCallsAtOnce() throws Exception {
        pool = PollingThreads.create("t", 1, null);
        AtomicReference<WorkerPool.Registration> self = new AtomicReference<>();
        AtomicInteger calls = new AtomicInteger();
        CountDownLatch removed = new CountDownLatch(1);
        WorkerPool.Poller quitter = new Counter() {
            @Override
            public boolean poll() {
                calls.incrementAndGet();
                WorkerPool.Registration r = self.get();
                if (r != null && calls.get() >= 3) {
                    assertTrue(r.onPollerThread());
                    r.remove(); // returns at once on its own thread
                    r.remove(); // idempotent
                    removed.countDown();
                }
                return true; // keep the thread busy
            }
        };
        self.set(pool.add(quitter, "quitter"));
        assertTrue(removed.await(5, TimeUnit.SECONDS));
        int after = calls.get();
        Counter other = new Counter();
        awaitPolls(other, pool.add(other, "other"), 10); // the thread made turns since
        assertEquals(after, calls.get(), "called after it removed itself");
        assertArrayEquals(new int[] {1}, pool.load());
    }

    @Test
    void removeFromAnotherThreadReturnsOnceTheThreadNoLongerCallsIt() throws Exception {
        pool = PollingThreads.create("t", 1, null);
        CountDownLatch inPoll = new CountDownLatch(1), release = new CountDownLatch(1);
        AtomicInteger callsAfterRemove = new AtomicInteger();
        AtomicInteger state = new AtomicInteger(); // 1 once remove() returned
        Counter slow = new Counter() {
            @Override
            public boolean poll() {
                if (state.get() == 1) {
                    callsAfterRemove.incrementAndGet();
                }
                inPoll.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
                return false;
            }
        };
        WorkerPool.Registration r = pool.add(slow, "slow");
        assertTrue(inPoll.await(5, TimeUnit.SECONDS));
        CompletableFuture<Void> removing = CompletableFuture.runAsync(() -> {
            r.remove();
            state.set(1);
        });
        Thread.sleep(20); // give remove() the chance to return too early (it must wait for the poll)
        assertFalse(removing.isDone(), "remove() returned while its poller was still being called");
        release.countDown();
        removing.get(5, TimeUnit.SECONDS);
        Counter other = new Counter();
        awaitPolls(other, pool.add(other, "other"), 10);
        assertEquals(0, callsAfterRemove.get());
    }

    @Test
    void aPollerThatThrowsIsRemovedAndTheOthersGoOn() throws Exception {
        pool = PollingThreads.create("t", 1, null);
        Counter bad = new Counter() {
            @Override
            public boolean poll() {
                super.poll();
                throw new IllegalStateException("device bug");
            }
        };
        pool.add(bad, "bad");
        Counter good = new Counter();
        WorkerPool.Registration rg = pool.add(good, "good");
        awaitPolls(good, rg, 10);
        long badPolls = bad.polls.get();
        awaitPolls(good, rg, 20);
        assertEquals(1, badPolls, "the throwing poller was called once");
        assertEquals(badPolls, bad.polls.get());
        assertArrayEquals(new int[] {1}, pool.load());
    }

    @Test
    void badSizesAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> PollingThreads.create("t", 0, null));
        assertThrows(IllegalArgumentException.class, () -> PollingThreads.create("t", 1025, null));
        assertThrows(IllegalArgumentException.class, () -> PollingThreads.create("t", 1, new int[] {-1}));
        assertThrows(IllegalArgumentException.class, () -> PollingThreads.create("t", 1, new int[] {1024}));
        PollingThreads closed = PollingThreads.create("t", 1, null);
        closed.close();
        closed.close(); // idempotent
        assertThrows(IllegalStateException.class, () -> closed.add(new Counter(), "late"));
    }

    @Test
    void aCpuThatCannotBePinnedLeavesTheThreadRunningUnpinned() throws Exception {
        AtomicReference<String> failure = new AtomicReference<>();
        Thread t = Thread.ofPlatform().start(() -> failure.set(CpuAffinity.pinCurrentThread(1023)));
        t.join();
        assertNotNull(failure.get(), "no test machine has CPU 1023 in its allowed set");
        pool = PollingThreads.create("t", 1, new int[] {1023});
        Counter c = new Counter();
        awaitPolls(c, pool.add(c, "c"), 3);
    }

    @Test
    void threadsArePinnedToTheirCpu() throws Exception {
        int cpu = firstAllowedCpu();
        pool = PollingThreads.create("t", 1, new int[] {cpu});
        AtomicReference<String> allowed = new AtomicReference<>();
        Counter c = new Counter() {
            @Override
            public boolean poll() {
                if (allowed.get() == null) {
                    allowed.set(cpusAllowed());
                }
                return super.poll();
            }
        };
        awaitPolls(c, pool.add(c, "c"), 2);
        assertEquals(Integer.toString(cpu), allowed.get(), "Cpus_allowed_list of the pool thread");
    }

    @Test
    void cpuListsParseLikeTheKernelsCpusetSyntax() {
        assertArrayEquals(new int[] {0, 1, 2, 3, 8}, CpuAffinity.parse("0-3,8"));
        assertArrayEquals(new int[] {5}, CpuAffinity.parse(" 5 "));
        assertArrayEquals(new int[] {7, 2}, CpuAffinity.parse("7,2"));
        for (String bad : new String[] {"", " ", "a", "3-1", "1,1", "0-2,1", "1024", "-1", "1-", ",", "1,", "0x1", "1-2-3"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CpuAffinity.parse(bad),
                    "\"" + bad + "\"");
            assertNotNull(e.getMessage());
        }
    }

    /** Gives {@code c} work and wakes it until it was polled {@code atLeast} more times. */
    private static void awaitPolls(Counter c, WorkerPool.Registration r, long atLeast) throws InterruptedException {
        long start = c.polls.get();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (c.polls.get() < start + atLeast) {
            c.produced.incrementAndGet();
            r.wake();
            assertTrue(System.nanoTime() < deadline, "not polled");
            Thread.sleep(1);
        }
    }

    /** The calling thread's allowed CPUs as the kernel lists them ({@code /proc/thread-self/status}). */
    private static String cpusAllowed() {
        try {
            return Files.readAllLines(Path.of("/proc/thread-self/status")).stream()
                    .filter(l -> l.startsWith("Cpus_allowed_list:")).map(l -> l.substring(18).strip())
                    .findFirst().orElse("?");
        } catch (java.io.IOException e) {
            return e.toString();
        }
    }

    private static int firstAllowedCpu() {
        String list = cpusAllowed();
        String first = list.split(",")[0].split("-")[0];
        return Integer.parseInt(first);
    }
}
