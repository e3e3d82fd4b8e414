package io.javadevices.nvme.backend;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/** The io_uring engine on the real kernel: waits, wake-ups, completions from other threads, open failures. */
class UringEngineTest {

    /** Records each tag's completion once. */
    static final class Sink implements IoEngine.Completions {
        final int[] results;
        final boolean[] seen;
        int count;

        Sink(int tags) {
            results = new int[tags];
            seen = new boolean[tags];
        }

        @Override
        public void completed(int tag, int result) {
            if (seen[tag]) {
                throw new AssertionError("tag " + tag + " completed twice");
            }
            seen[tag] = true;
            results[tag] = result;
            count++;
        }

        void reset() {
            java.util.Arrays.fill(seen, false);
            count = 0;
        }
    }

    @Test
    void awaitTimesOutWhenNothingHappens() {
        try (UringEngine engine = UringEngine.open(8, Thread.currentThread())) {
            assertEquals("io_uring", engine.name());
            assertEquals(8, engine.capacity());
            engine.submit(); // arms the wake-up read
            long start = System.nanoTime();
            engine.await(TimeUnit.MILLISECONDS.toNanos(50));
            long waited = System.nanoTime() - start;
            assertTrue(waited >= TimeUnit.MILLISECONDS.toNanos(40), "returned after " + waited + " ns");
            assertEquals(0, engine.reap(new Sink(8)));
        }
    }

    @Test
    @Timeout(10)
    void wakeFromAnotherThreadCutsAwaitShort() throws Exception {
        try (UringEngine engine = UringEngine.open(8, Thread.currentThread())) {
            for (int round = 0; round < 20; round++) {
                CountDownLatch started = new CountDownLatch(1);
                Thread waker = new Thread(() -> {
                    started.countDown();
                    while (!engine.isWaiting()) {
                        Thread.onSpinWait();
                    }
                    engine.wake();
                });
                waker.start();
                started.await();
                long start = System.nanoTime();
                engine.await(TimeUnit.SECONDS.toNanos(30));
                assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5), "await was not woken");
                waker.join();
                assertEquals(0, engine.reap(new Sink(8)), "a wake-up is not a completion");
            }
        }
    }

    @Test
    @Timeout(10)
    void quietCompletionsAreVisibleAtOnceAndSignalledOncePerBurst() {
        try (UringEngine engine = UringEngine.open(8, Thread.currentThread())) {
            AtomicInteger signals = new AtomicInteger();
            engine.onCompletion(signals::incrementAndGet);
            engine.completeQuietly(1, 11);
            engine.completeQuietly(5, 55);
            assertEquals(0, signals.get(), "no wake-up per quiet completion");
            assertTrue(engine.hasCompletions(), "a worker about to sleep sees them without the signal");
            engine.signalCompleted();
            assertEquals(1, signals.get(), "one wake-up for the burst");
            long start = System.nanoTime();
            engine.await(TimeUnit.SECONDS.toNanos(30)); // the signal also ends the engine's own wait
            assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5), "await was not woken");
            Sink sink = new Sink(8);
            assertEquals(2, engine.reap(sink));
            assertEquals(11, sink.results[1]);
            assertEquals(55, sink.results[5]);
            engine.complete(2, 22);
            assertEquals(2, signals.get(), "complete() still signals each completion");
        }
    }

    @Test
    @Timeout(10)
    void wakeBeforeAwaitMakesTheNextAwaitReturnAtOnce() {
        try (UringEngine engine = UringEngine.open(8, Thread.currentThread())) {
            engine.wake();
            long start = System.nanoTime();
            engine.await(TimeUnit.SECONDS.toNanos(30));
            assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5));
        }
    }

    @Test
    @Timeout(20)
    void completionsFromAnotherThreadAreReapedWithoutLostWakeUps() throws Exception {
        int rounds = 2000;
        try (UringEngine engine = UringEngine.open(4, Thread.currentThread())) {
            Sink sink = new Sink(4);
            AtomicInteger reaped = new AtomicInteger();
            Thread producer = new Thread(() -> {
                for (int i = 0; i < rounds; i++) {
                    while (reaped.get() < i) {
                        Thread.onSpinWait();
                    }
                    engine.complete(i % 4, i);
                }
            });
            producer.start();
            for (int i = 0; i < rounds; i++) {
                sink.reset();
                while (engine.reap(sink) == 0) {
                    engine.await(TimeUnit.SECONDS.toNanos(60)); // a lost wake-up would hang here: @Timeout fails it
                }
                assertEquals(1, sink.count);
                assertEquals(i, sink.results[i % 4]);
                reaped.incrementAndGet();
            }
            producer.join();
        }
    }

    @Test
    void openFailureSaysWhy() {
        // More SQ entries than the kernel allows (32768) without IORING_SETUP_CLAMP: io_uring_setup refuses.
        UringUnavailableException e = assertThrows(UringUnavailableException.class,
                () -> UringEngine.open(8, Thread.currentThread(), 1 << 20, 0));
        assertTrue(e.getMessage().startsWith("io_uring_setup: EINVAL"), e.getMessage());
        assertInstanceOf(UnsupportedOperationException.class, e);
        assertThrows(IllegalArgumentException.class, () -> UringEngine.open(0, Thread.currentThread()));
    }

    @Test
    void reasonsNameTheUsualCauses() {
        assertTrue(UringRing.reason(UringSyscalls.ENOSYS).contains("older than 5.1"));
        assertTrue(UringRing.reason(UringSyscalls.EPERM).contains("kernel.io_uring_disabled"));
        assertTrue(UringRing.reason(UringSyscalls.EPERM).contains("seccomp"));
        assertTrue(UringRing.reason(UringSyscalls.ENOMEM).contains("RLIMIT_MEMLOCK"));
    }
}
