package io.javadevices.nvme.backend;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** The thread-pool engine on its own: operations on its threads, results as errnos, await cut short by wake. */
class ThreadPoolEngineUnitTest {

    private static List<int[]> reapAll(ThreadPoolEngine e, int n) {
        List<int[]> got = new ArrayList<>();
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (got.size() < n && System.nanoTime() < deadline) {
            if (e.reap((tag, result) -> got.add(new int[] {tag, result})) == 0) {
                e.await(100_000_000L);
            }
        }
        return got;
    }

    @Test
    void operationsRunOnThePoolAndReportBytesOrErrnos() {
        ThreadPoolEngine e = new ThreadPoolEngine("unit", 8, 2);
        try (RamBackend ram = new RamBackend(1 << 20); Arena arena = Arena.ofShared()) { // shared, as guest memory is: pool threads touch it
            AsyncIo io = e.syncIo(ram);
            MemorySegment data = arena.allocate(4096);
            data.fill((byte) 7);
            IoVector v = new IoVector(4);
            v.add(data);
            io.write(0, 8192, v, false);
            io.flush(1);
            e.submit();
            List<int[]> done = reapAll(e, 2);
            assertEquals(2, done.size());
            for (int[] d : done) {
                assertEquals(d[0] == 0 ? 4096 : 0, d[1], "a write reports its bytes, a flush 0");
            }
            IoVector back = new IoVector(4);
            MemorySegment read = arena.allocate(4096);
            back.add(read);
            io.read(2, 8192, back);
            io.read(3, 2L << 20, back); // beyond the end: the backend's exception becomes a negated errno
            e.submit();
            done = reapAll(e, 2);
            assertEquals(2, done.size());
            for (int[] d : done) {
                if (d[0] == 2) {
                    assertEquals(4096, d[1]);
                } else {
                    assertTrue(d[1] < 0, "failure as a negated errno: " + d[1]);
                }
            }
            assertEquals(7, read.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 100));
        } finally {
            e.close();
        }
    }

    @Test
    void wakeEndsAWaitingAwait() throws InterruptedException {
        ThreadPoolEngine e = new ThreadPoolEngine("unit", 4, 1);
        CountDownLatch waiting = new CountDownLatch(1), woke = new CountDownLatch(1);
        Thread worker = Thread.ofPlatform().start(() -> {
            waiting.countDown();
            e.await(60_000_000_000L); // a minute: only the wake can end it in time
            woke.countDown();
        });
        assertTrue(waiting.await(5, TimeUnit.SECONDS));
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (woke.getCount() > 0 && System.nanoTime() < deadline) {
            e.wake(); // until the worker is really inside await (a wake before it does nothing, by design)
            woke.await(10, TimeUnit.MILLISECONDS);
        }
        assertEquals(0, woke.getCount(), "the wake ended the await");
        worker.join(5000);
        e.close();
    }

    @Test
    void aCompletionFromAnotherThreadEndsTheAwait() throws InterruptedException {
        ThreadPoolEngine e = new ThreadPoolEngine("unit", 4, 1);
        Thread other = Thread.ofPlatform().start(() -> {
            try {
                Thread.sleep(50); // let the test thread reach await first (not an assertion: either order works)
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
            e.complete(3, -107);
        });
        List<int[]> done = reapAll(e, 1);
        assertEquals(1, done.size());
        assertArrayEquals(new int[] {3, -107}, done.getFirst());
        other.join();
        e.close();
    }

    @Test
    void threadCountIsBounded() {
        assertThrows(IllegalArgumentException.class, () -> new ThreadPoolEngine("unit", 4, 0));
        assertThrows(IllegalArgumentException.class, () -> new ThreadPoolEngine("unit", 4, 65));
        assertEquals(64, new ThreadPoolEngine("unit", 4, 64).threads(), "threads start only with the first submit");
    }
}
