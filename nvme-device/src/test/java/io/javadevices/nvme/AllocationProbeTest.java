package io.javadevices.nvme;

import io.javadevices.nvme.driver.HostQueue;
import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;

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
                Thread worker = Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals("nvme-sq1")).findFirst().orElseThrow();
                var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
                long before = mx.getThreadAllocatedBytes(worker.threadId());
                int n = DbbufTest.runStreaming(f, q, buf, 20_000, 32);
                long perCommand = (mx.getThreadAllocatedBytes(worker.threadId()) - before) / n;
                System.out.println("[alloc] " + ns + ": worker allocated " + perCommand + " bytes/command");
                assertTrue(perCommand < 1024, ns + ": " + perCommand + " bytes per command");
            }
        }
    }
}
