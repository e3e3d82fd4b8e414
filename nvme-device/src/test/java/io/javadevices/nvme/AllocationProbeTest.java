package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.driver.Sgl;
import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.*;

/** Measures what the I/O worker allocates per command once warmed up (the hot path should not allocate). */
class AllocationProbeTest {

    @Test
    void workerAllocatesLittlePerCommand() {
        for (String ns : new String[] {"null:1G", "ram:64M"}) {
            try (Fixture f = Fixture.of("queues", "1", "namespaces", ns)) {
                f.driver.bringUp(1, 64, true);
                HostQueue q = f.driver.ioQueue(1);
                long buf = f.host.allocatePages(1);
                DbbufTest.runStreaming(f, q, buf, 30_000, 32); // warm up (JIT)
                Thread worker = f.workerThread(1);
                var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
                long before = mx.getThreadAllocatedBytes(worker.threadId());
                int n = DbbufTest.runStreaming(f, q, buf, 20_000, 32);
                long perCommand = (mx.getThreadAllocatedBytes(worker.threadId()) - before) / n;
                System.out.println("[alloc] " + ns + ": worker allocated " + perCommand + " bytes/command");
                assertTrue(perCommand < 1024, ns + ": " + perCommand + " bytes per command");
            }
        }
    }

    /**
     * Asynchronous execution through the thread-pool engine (slots, vectors, the hand-over to the pool and the
     * completion inbox) allocates no more per command on the worker than the slices of guest memory.
     */
    @Test
    void asyncWorkerAllocatesLittlePerCommand() {
        try (Fixture f = new Fixture(java.util.Map.of("queues", "1", "namespaces", "ram:64M", "io-engine", "threads"),
                64L << 20, spec -> new PooledBackend(spec.open()))) {
            f.driver.bringUp(1, 64, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            DbbufTest.runStreaming(f, q, buf, 30_000, 32); // warm up (JIT)
            Thread worker = f.workerThread(1);
            var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
            long before = mx.getThreadAllocatedBytes(worker.threadId());
            int n = DbbufTest.runStreaming(f, q, buf, 20_000, 32);
            long perCommand = (mx.getThreadAllocatedBytes(worker.threadId()) - before) / n;
            System.out.println("[alloc] async ram:64M on threads: worker allocated " + perCommand + " bytes/command");
            assertTrue(perCommand < 1024, perCommand + " bytes per command");
            assertTrue(f.stat("ns1.completed") >= 50_000, "the commands went through the engine");
        }
    }

    /** The SGL walk allocates nothing either: Linux-shaped reads (a Last Segment list of two Data Blocks). */
    @Test
    void sglWalkAllocatesLittlePerCommand() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:64M")) {
            f.driver.bringUp(1, 64, true);
            HostQueue q = f.driver.ioQueue(1);
            long a = f.host.allocatePages(1), b = f.host.allocatePages(2), list = f.host.allocate(2 * Sgl.BYTES, 256);
            Command read = Sgl.linux(Command.read(1, 0, 8, 0, 0), f.host.memory(), new long[] {a, b + 100},
                    new int[] {2048, 2048}, list);
            streamSame(q, read, 30_000); // warm up (JIT)
            Thread worker = f.workerThread(1);
            var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
            long before = mx.getThreadAllocatedBytes(worker.threadId());
            int n = streamSame(q, read, 20_000);
            long perCommand = (mx.getThreadAllocatedBytes(worker.threadId()) - before) / n;
            System.out.println("[alloc] SGL reads: worker allocated " + perCommand + " bytes/command");
            assertTrue(perCommand < 1024, perCommand + " bytes per command");
            assertEquals(50_000, f.stat(NvmeStatistics.IO_SGL));
        }
    }

    /** Submits {@code command} {@code total} times at QD 32, asserting every completion succeeded. */
    private static int streamSame(HostQueue q, Command command, int total) {
        int submitted = 0, completed = 0;
        while (completed < total) {
            while (submitted < total && q.inflight() < Math.min(32, q.capacity())) {
                q.submit(command);
                submitted++;
            }
            for (Completion c : q.awaitCompletions(1, Duration.ofSeconds(10))) {
                assertTrue(c.ok(), c.toString());
                completed++;
            }
        }
        return completed;
    }
}
