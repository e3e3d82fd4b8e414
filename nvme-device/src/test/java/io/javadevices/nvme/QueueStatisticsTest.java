package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.pci.Histogram;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The per-queue statistics ({@code sq<N>.*}, {@link NvmeStatistics#queueKey}), the latency histograms a host exports
 * ({@code ns<N>.latency}, {@code sq<N>.latency}) and {@link NvmeController#flush()}, checked against what the driver
 * did and saw.
 */
class QueueStatisticsTest {
    @TempDir
    Path dir;

    private static void io(HostQueue q, Command c, boolean ok) {
        assertEquals(ok, q.execute(c).ok(), c.toString());
    }

    @Test
    void eachQueueCountsItsOwnCommandsBytesDoorbellsInterruptsAndErrors() {
        try (Fixture f = Fixture.of("queues", "2", "namespaces", "ram:8M")) {
            f.driver.bringUp(2, 16, false);
            HostQueue q1 = f.driver.ioQueue(1), q2 = f.driver.ioQueue(2);
            long buf = f.host.allocatePages(1);
            for (int i = 0; i < 3; i++) {
                io(q1, Command.write(1, 8L * i, 8, buf, 0), true);
            }
            io(q1, Command.read(1, 16384, 1, buf, 0), false); // past the end: LBA Out of Range
            for (int i = 0; i < 2; i++) {
                io(q2, Command.read(1, 8L * i, 8, buf, 0), true);
            }
            Map<String, Long> m = f.controller.statistics();
            assertEquals(4, m.get("sq1.commands"));
            assertEquals(2, m.get("sq2.commands"));
            assertEquals(m.get(NvmeStatistics.IO_COMMANDS), m.get("sq1.commands") + m.get("sq2.commands"));
            assertEquals(3 * 4096, m.get("sq1.bytes.written"));
            assertEquals(0, m.get("sq1.bytes.read"));
            assertEquals(2 * 4096, m.get("sq2.bytes.read"));
            assertEquals(0, m.get("sq2.bytes.written"));
            assertEquals(q1.mmioSq, m.get("sq1.doorbells.mmio"), "one BAR0 tail write per command the driver rang");
            assertEquals(q2.mmioSq, m.get("sq2.doorbells.mmio"));
            assertEquals(0, m.get("sq1.doorbells.shadow"), "no DBBUF");
            assertEquals(1, m.get("sq1.errors"));
            assertEquals(0, m.get("sq2.errors"));
            assertEquals(0, m.get("sq1.inflight"));
            assertEquals(f.driver.interrupts().count(1), m.get("sq1.interrupts"), "as the host received on vector 1");
            assertEquals(f.driver.interrupts().count(2), m.get("sq2.interrupts"));
            assertTrue(m.get("sq1.interrupts") > 0);
            assertTrue(m.get("sq0.commands") > 5, "the admin queue's bring-up commands");
            assertNull(m.get("sq3.commands"), "only queues that exist");
        }
    }

    @Test
    void shadowDoorbellsAreCountedOnTheirQueue() {
        // A 100 ms spin after each command: the next tail is then read from the shadow slot however slowly this
        // thread submits it on a loaded machine (with the default 300 us a busy build could miss every spin).
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M", "poll-us", "100000")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            for (int i = 0; i < 8; i++) {
                io(q, Command.write(1, 8L * i, 8, buf, 0), true);
            }
            Map<String, Long> m = f.controller.statistics();
            assertEquals(8, m.get("sq1.commands"));
            assertTrue(m.get("sq1.doorbells.shadow") > 0, "tails taken from the shadow slot: " + m);
            assertEquals(q.mmioSq, m.get("sq1.doorbells.mmio"), "and the BAR0 writes EventIdx asked for");
            assertEquals(m.get(NvmeStatistics.DOORBELL_SHADOW_SQ), m.get("sq1.doorbells.shadow"));
        }
    }

    @Test
    void latencyHistogramsOfTheNamespacesAndQueuesAsynchronousOperations() {
        try (Fixture f = Fixture.of("queues", "1", "io-engine", "threads",
                "namespaces", "file:" + dir.resolve("a.raw") + ":8M,ram:8M")) {
            f.driver.bringUp(1, 16, false);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            for (int i = 0; i < 10; i++) {
                io(q, Command.write(1, 8L * i, 8, buf, 0), true);
                io(q, Command.read(1, 8L * i, 8, buf, 0), true);
                io(q, Command.read(2, 8L * i, 8, buf, 0), true); // RAM: served by the worker itself
            }
            Map<String, Histogram> h = f.controller.histograms();
            Histogram ns = h.get("ns1.latency");
            assertEquals(20, ns.count(), "every operation of the file namespace");
            assertEquals(f.stat("ns1.completed"), ns.count());
            assertTrue(ns.sumNanos() > 0);
            assertEquals(0, h.get("ns2.latency").count(), "a RAM namespace has no asynchronous operations");
            Histogram sq = h.get("sq1.latency");
            assertEquals(20, sq.count());
            assertEquals(ns.sumNanos(), sq.sumNanos(), "one queue, so the same operations");
            long[] bounds = ns.upperBoundsNanos();
            assertEquals(Long.MAX_VALUE, bounds[bounds.length - 1]);
            for (int i = 1; i < bounds.length; i++) {
                assertTrue(bounds[i] > bounds[i - 1], "ascending bounds");
            }
            assertEquals(1_000, bounds[0], "1 us, the first bound");
        }
    }

    @Test
    void flushReachesEveryNamespaceAndNamesEachOneThatFailed() throws IOException {
        List<ProbeBackend> probes = new ArrayList<>();
        try (Fixture f = new Fixture(Map.of("queues", "1", "namespaces", "ram:8M,ram:8M,ram:8M"), 64L << 20, spec -> {
            ProbeBackend p = new ProbeBackend(spec.open());
            probes.add(p);
            return p;
        })) {
            f.controller.flush();
            assertEquals(List.of(1, 1, 1), probes.stream().map(p -> p.flushes.get()).toList());
            probes.get(1).failFlush = true;
            probes.get(2).failFlush = true;
            IOException e = assertThrows(IOException.class, f.controller::flush);
            assertTrue(e.getMessage().contains("namespace 2") && e.getMessage().contains("namespace 3"), e.getMessage());
            assertFalse(e.getMessage().contains("namespace 1 "), e.getMessage());
            assertEquals(List.of(2, 2, 2), probes.stream().map(p -> p.flushes.get()).toList(), "every one was tried");
        }
    }

    @Test
    void flushSyncsAFileNamespace() throws IOException {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "file:" + dir.resolve("b.raw") + ":8M")) {
            f.driver.bringUp(1, 16, false);
            io(f.driver.ioQueue(1), Command.write(1, 0, 8, f.host.allocatePages(1), 0), true);
            long before = f.stat("ns1.syncs");
            f.controller.flush();
            assertEquals(before + 1, f.stat("ns1.syncs"), "one fdatasync");
        }
    }
}
