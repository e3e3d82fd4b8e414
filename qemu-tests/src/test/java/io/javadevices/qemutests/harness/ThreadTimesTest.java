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
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        Thread busy = new Thread(() -> {
            while (!stop.get()) {
                Thread.onSpinWait();
            }
        }, "times-probe-7");
        busy.start();
        try {
            Thread.sleep(50); // the thread is in /proc before the first snapshot
            ThreadTimes before = ThreadTimes.now();
            Thread.sleep(200);
            ThreadTimes.Family f = ThreadTimes.now().since(before).families().get("times-probe");
            assertTrue(f != null && f.ticks() >= 5, "at least 50 ms of CPU in 200 ms of spinning: " + f);
        } finally {
            stop.set(true);
            busy.join();
        }
    }
}
