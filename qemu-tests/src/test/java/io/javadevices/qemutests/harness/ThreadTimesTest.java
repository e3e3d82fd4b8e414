package io.javadevices.qemutests.harness;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The benchmark's per-thread-family CPU accounting, on this JVM's own threads. */
class ThreadTimesTest {
    @Test
    void familiesDropATrailingNumber() {
        assertEquals("nvme-poll", ThreadTimes.family("nvme-poll-1"));
        assertEquals("nvme-poll", ThreadTimes.family("nvme-poll-12"));
        assertEquals("nbd-reader nbd+", ThreadTimes.family("nbd-reader nbd+"));
        assertEquals("C2 CompilerThre", ThreadTimes.family("C2 CompilerThre"));
        assertEquals("GC Thread", ThreadTimes.family("GC Thread#1"));
    }

    @Test
    void aBusyThreadsCpuIsCounted() throws Exception {
        Thread busy = new Thread(() -> {
            long end = System.nanoTime() + 300_000_000L;
            long x = 0;
            while (System.nanoTime() < end) {
                x += System.nanoTime() & 1;
            }
            if (x == 42) {
                System.out.print("");
            }
        }, "times-probe-7");
        busy.start();
        Thread.sleep(50); // the thread exists in /proc before the first snapshot
        ThreadTimes before = ThreadTimes.now();
        Thread.sleep(200); // inside the spin: the thread is still there for the second snapshot
        ThreadTimes.Family f = ThreadTimes.now().since(before).families().get("times-probe");
        busy.join();
        assertTrue(f != null && f.ticks() >= 5, "at least 50 ms of CPU in 200 ms of spinning: " + f);
    }
}
