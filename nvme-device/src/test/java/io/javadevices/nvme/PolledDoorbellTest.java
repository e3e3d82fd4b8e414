package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;
import io.javadevices.pci.InterruptSink;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code doorbells=polled}: BAR0's doorbell page is direct memory (the test host maps it like QEMU maps a
 * vfio-user sparse area), the driver's doorbell writes are plain stores, and the workers find them by
 * polling. No MMIO doorbell callback may happen, and the workers' safety-net timers are raised so that
 * only polling can make progress.
 */
class PolledDoorbellTest {
    private static byte[] pattern(long seed, int length) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** Writes then reads back {@code rounds} batches of 8 blocks on one queue, checking the data. */
    private static void verifiedIo(Fixture f, HostQueue q, int rounds) throws GuestMemoryException {
        GuestMemory mem = f.host.memory();
        long[] bufs = new long[8];
        for (int i = 0; i < bufs.length; i++) {
            bufs[i] = f.host.allocatePages(1);
        }
        long base = q.qid * 4096L;
        for (int r = 0; r < rounds; r++) {
            for (int i = 0; i < bufs.length; i++) {
                mem.write(bufs[i], MemorySegment.ofArray(pattern(r * 100L + i + q.qid * 7919L, 4096)), 0, 4096);
                q.queue(Command.write(1, base + i * 8L, 8, bufs[i], 0));
            }
            q.ringSq();
            for (Completion c : q.awaitCompletions(bufs.length, Duration.ofSeconds(10))) {
                assertTrue(c.ok(), c.toString());
            }
            for (int i = 0; i < bufs.length; i++) {
                mem.fill(bufs[i], 4096, (byte) 0);
                q.queue(Command.read(1, base + i * 8L, 8, bufs[i], 0));
            }
            q.ringSq();
            for (Completion c : q.awaitCompletions(bufs.length, Duration.ofSeconds(10))) {
                assertTrue(c.ok(), c.toString());
            }
            for (int i = 0; i < bufs.length; i++) {
                byte[] got = new byte[4096];
                mem.read(bufs[i], MemorySegment.ofArray(got), 0, 4096);
                assertArrayEquals(pattern(r * 100L + i + q.qid * 7919L, 4096), got, "block " + i + " round " + r);
            }
        }
    }

    @ParameterizedTest(name = "dbbuf={0}")
    @ValueSource(booleans = {false, true})
    void multiQueueIoWithoutAnyMmioDoorbell(boolean dbbuf) throws Exception {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "2", "doorbells", "polled")) {
            int queues = f.driver.bringUp(2, 32, dbbuf);
            assertEquals(2, queues);
            List<Thread> threads = new ArrayList<>();
            List<Throwable> failures = new ArrayList<>();
            for (HostQueue q : f.driver.ioQueues()) {
                threads.add(Thread.ofPlatform().start(() -> {
                    try {
                        verifiedIo(f, q, 40);
                    } catch (Throwable t) {
                        synchronized (failures) {
                            failures.add(t);
                        }
                    }
                }));
            }
            for (Thread t : threads) {
                t.join();
            }
            assertEquals(List.of(), failures);
            assertEquals(1, f.stat(NvmeStatistics.DOORBELLS_POLLED));
            assertEquals(0, f.stat(NvmeStatistics.DOORBELL_MMIO_SQ), "every SQ doorbell was a store to the mapped page");
            assertEquals(0, f.stat(NvmeStatistics.DOORBELL_MMIO_CQ));
            assertEquals(2 * 40 * 16, f.stat(NvmeStatistics.IO_COMMANDS));
            if (dbbuf) {
                assertEquals(1, f.stat(NvmeStatistics.DBBUF_ACTIVE));
                assertTrue(f.stat(NvmeStatistics.DOORBELL_SHADOW_SQ) > 0, "shadow slots are still authoritative");
            } else {
                assertTrue(f.stat(NvmeStatistics.DOORBELL_POLLED_SQ) >= 2 * 40 * 2, "tail updates seen in the page: "
                        + f.stat(NvmeStatistics.DOORBELL_POLLED_SQ));
            }
            assertTrue(f.driver.interrupts().count(1) > 0 && f.driver.interrupts().count(2) > 0, "MSI-X per queue");
        }
    }

    /** The same through the thread-pool engine: a worker with operations in flight still polls the page. */
    @ParameterizedTest(name = "dbbuf={0}")
    @ValueSource(booleans = {false, true})
    void asynchronousIoWithPolledDoorbells(boolean dbbuf) throws Exception {
        try (Fixture f = new Fixture(java.util.Map.of("queues", "2", "doorbells", "polled", "io-engine", "threads",
                "park-dbbuf-us", "5000000", "park-trapped-us", "5000000"), 64L << 20,
                spec -> new PooledBackend(spec.open()))) {
            assertEquals(2, f.driver.bringUp(2, 32, dbbuf));
            for (HostQueue q : f.driver.ioQueues()) {
                verifiedIo(f, q, 10);
            }
            assertEquals(0, f.stat(NvmeStatistics.DOORBELL_MMIO_SQ), "every SQ doorbell was a store to the mapped page");
            assertEquals(2 * 10 * 16, f.stat("ns1.completed"), "every command went through the engine");
        }
    }

    @Test
    void clientThatDeclinedTheMappingStillWorks() throws Exception {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1", "doorbells", "polled")) {
            f.host.trapDirectWindows(); // doorbells arrive as MMIO writes, as when QEMU's mmap fails
            f.driver.bringUp(1, 16, false);
            HostQueue q = f.driver.ioQueue(1);
            verifiedIo(f, q, 5);
            assertTrue(f.stat(NvmeStatistics.DOORBELL_MMIO_SQ) > 0);
            MemorySegment page = f.host.directWindow(0, 0x1000).orElseThrow();
            assertEquals(q.sqTail(), GuestMemory.loadIntAcquire(page, 8), "MMIO doorbells are stored into the page");
        }
    }

    @Test
    void resetClearsThePageSoStaleTailsNeverRunAgain() throws Exception {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1", "doorbells", "polled")) {
            f.driver.bringUp(1, 32, false);
            verifiedIo(f, f.driver.ioQueue(1), 3);
            MemorySegment page = f.host.directWindow(0, 0x1000).orElseThrow();
            assertNotEquals(0, GuestMemory.loadIntAcquire(page, 8), "I/O SQ tail is in the page");
            long before = f.stat(NvmeStatistics.IO_COMMANDS);

            f.driver.disable();
            assertEquals(0, GuestMemory.loadIntAcquire(page, 0), "admin SQ tail cleared by CC.EN = 0");
            assertEquals(0, GuestMemory.loadIntAcquire(page, 8), "I/O SQ tail cleared");
            assertEquals(0, GuestMemory.loadIntAcquire(page, 12), "I/O CQ head cleared");

            // A stale tail the guest leaves behind before re-creating the queue must not execute anything.
            f.host.mmioWrite32(0, 0x1008, 5);
            f.driver.bringUp(1, 32, false);
            Thread.sleep(20);
            assertEquals(before, f.stat(NvmeStatistics.IO_COMMANDS), "nothing ran from the stale tail");
            verifiedIo(f, f.driver.ioQueue(1), 2);
            assertEquals(before + 2 * 16, f.stat(NvmeStatistics.IO_COMMANDS));
        }
    }

    /**
     * Between two guests the host replaces the window (DirectBarMemory's "fresh memory per session"):
     * the controller's reset re-reads it, and the former guest's stores into the page it kept do not
     * move the new guest's queues.
     */
    @Test
    void aNewGuestGetsAFreshPageTheFormerOneCannotReach() throws Exception {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1", "doorbells", "polled")) {
            f.driver.bringUp(1, 32, false);
            verifiedIo(f, f.driver.ioQueue(1), 1);
            MemorySegment former = f.host.directWindow(0, 0x1000).orElseThrow();

            f.host.replaceDirectWindows(); // new memory, then the device reset
            assertNotEquals(former.address(), f.host.directWindow(0, 0x1000).orElseThrow().address());
            f.driver.bringUp(1, 32, false); // the next guest
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            long before = f.stat(NvmeStatistics.IO_COMMANDS);
            q.queue(Command.read(1, 0, 1, buf, 0)); // written, not rung
            GuestMemory.storeIntRelease(former, 8, q.sqTail()); // the former guest rings queue 1 in its old page
            Thread.sleep(20); // workers look at least every nap (200 us): give them many looks
            assertEquals(before, f.stat(NvmeStatistics.IO_COMMANDS), "a store into the old page ran the new guest's command");
            q.ringSq();
            assertTrue(q.awaitCompletions(1, Duration.ofSeconds(5)).get(0).ok());
            assertEquals(before + 1, f.stat(NvmeStatistics.IO_COMMANDS));
        }
    }

    @Test
    void invalidPolledTailRaisesOneAsyncEventAndIsIgnored() throws Exception {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1", "doorbells", "polled")) {
            f.driver.bringUp(1, 16, false);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            assertTrue(q.execute(Command.read(1, 0, 1, buf, 0)).ok());
            long commands = f.stat(NvmeStatistics.IO_COMMANDS);
            f.host.mmioWrite32(0, 0x1008, 0xFFF0); // beyond the queue's 16 entries
            assertEquals(0x010100, f.driver.awaitAsyncEvent(Duration.ofSeconds(5)), "AER: invalid doorbell write value");
            assertEquals(commands, f.stat(NvmeStatistics.IO_COMMANDS), "an invalid tail executes nothing");
            f.host.mmioWrite32(0, 0x1008, q.sqTail()); // the host repairs the doorbell
            assertTrue(q.execute(Command.read(1, 1, 1, buf, 0)).ok());
        }
    }

    @Test
    void polledNeedsAHostThatMapsBarMemory() {
        DeviceContext ctx = new DeviceContext(GuestMemory.of(0, MemorySegment.ofArray(new long[512])), InterruptSink.NONE);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new NvmeController(NvmeOptions.parse(Map.of("namespaces", "null:1M", "doorbells", "polled")), ctx));
        assertTrue(e.getMessage().contains("doorbells=polled"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> NvmeOptions.parse(Map.of("doorbells", "sometimes")));
        assertFalse(NvmeOptions.defaults().polledDoorbells());
    }
}
