package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Doorbell Buffer Config (admin 7Ch, NVMe 1.3 §5.7) end to end with the Linux-like driver: command validation,
 * the shadow/EventIdx protocol of Linux nvme_dbbuf_update_and_check_event, resets and hostile shadow values.
 */
class DbbufTest {
    private static int readInt(Fixture f, long a) {
        try {
            return f.host.memory().readInt(a);
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
    }

    private static void writeInt(Fixture f, long a, int v) {
        try {
            f.host.memory().writeInt(a, v);
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
    }

    private static void status(Completion c, int sct, int sc) {
        assertEquals(sct, c.sct(), c.toString());
        assertEquals(sc, c.sc(), c.toString());
    }

    /** Brings up the admin queue, one queue pair, and returns the driver (no DBBUF yet). */
    private static HostQueue queuesOnly(Fixture f, int depth) {
        f.driver.enable();
        f.driver.setNumberOfQueues(1);
        f.driver.enableMsix(2);
        return f.driver.createQueuePair(1, depth, 1);
    }

    @Test
    void oacsAdvertisesDbbufAndTheEffectsLogListsIt() {
        try (Fixture f = Fixture.withoutSafetyNet()) {
            f.driver.enable();
            byte[] id = f.driver.identify(1, 0);
            assertEquals(1, id[257] & 1);
            assertTrue(f.driver.admin(Command.getLogPage(5, 0, 4096, f.driver.dataPage())).ok());
            assertEquals(1, f.driver.readData(4096)[4 * 0x7C] & 1);
        }
    }

    @Test
    void malformedDbbufCommandsAreRejectedWithInvalidField() {
        try (Fixture f = Fixture.withoutSafetyNet()) {
            HostQueue q = queuesOnly(f, 16);
            LinuxLikeDriver d = f.driver;
            long a = f.host.allocatePages(1), b = f.host.allocatePages(1);
            status(d.admin(Command.dbbuf(a + 8, b)), 0, 0x02);          // PRP1 unaligned
            status(d.admin(Command.dbbuf(a, b + 8)), 0, 0x02);          // PRP2 unaligned
            status(d.admin(Command.dbbuf(a, a)), 0, 0x02);              // PRP1 == PRP2
            status(d.admin(Command.dbbuf(a, b).flags(0x40)), 0, 0x02);  // PSDT = SGL
            status(d.admin(Command.dbbuf(1L << 40, b)), 0, 0x02);       // outside RAM
            status(d.admin(Command.dbbuf(a, f.host.ramSize())), 0, 0x02);
            status(d.admin(Command.dbbuf(a, b).flags(0x01)), 0, 0x02);  // fused
            assertEquals(0, f.stat(NvmeStatistics.DBBUF_ACTIVE), "state unchanged: still MMIO");
            assertEquals(7, f.stat(NvmeStatistics.DBBUF_REJECTED));
            assertTrue(q.execute(Command.flush(1)).ok());
            // GPA 0 is mapped RAM in the test host: accepted (like QEMU/SPDK), and "enabled" is a flag.
            assertTrue(d.admin(Command.dbbuf(0, b)).ok());
            assertEquals(1, f.stat(NvmeStatistics.DBBUF_ACTIVE));
            d.disable();
        }
        // With CC.MPS = 1 (8 KiB pages) a 4 KiB-aligned address is unaligned.
        try (Fixture f = Fixture.withoutSafetyNet()) {
            f.driver.enable(1);
            long a = f.host.allocate(8192, 8192), b = f.host.allocate(8192, 8192);
            status(f.driver.admin(Command.dbbuf(a + 4096, b)), 0, 0x02);
            assertTrue(f.driver.admin(Command.dbbuf(a, b)).ok());
        }
    }

    @Test
    void linuxOrderQueuesThenDbbufRingsFarLessThanOncePerCommand() {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1", "namespaces", "null:1G")) {
            f.driver.bringUp(1, 64, true);
            HostQueue q = f.driver.ioQueue(1);
            assertTrue(q.shadowed());
            long buf = f.host.allocatePages(1);
            long before = f.driver.mmioDoorbellWrites();
            int commands = runStreaming(f, q, buf, 20_000, 32);
            long mmio = f.driver.mmioDoorbellWrites() - before;
            double perCommand = (double) mmio / commands;
            assertTrue(perCommand < 0.5, "MMIO doorbells per command with DBBUF: " + perCommand);
            assertTrue(f.stat(NvmeStatistics.DOORBELL_SHADOW_SQ) > 0);
            assertEquals(commands, f.stat(NvmeStatistics.IO_READS));
        }
    }

    @Test
    void withoutDbbufEverySubmissionRingsTheMmioDoorbell() {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1", "namespaces", "null:1G", "dbbuf", "off")) {
            f.driver.bringUp(1, 64, true);
            HostQueue q = f.driver.ioQueue(1);
            assertFalse(q.shadowed());
            long buf = f.host.allocatePages(1);
            long sqBefore = q.mmioSq;
            int commands = runStreaming(f, q, buf, 5_000, 32);
            double sqPerCommand = (double) (q.mmioSq - sqBefore) / commands;
            assertEquals(1.0, sqPerCommand, 0.01, "one SQ doorbell MMIO per submission without DBBUF");
            assertEquals(f.stat(NvmeStatistics.DOORBELL_MMIO_SQ), q.mmioSq + f.driver.adminQueue().mmioSq);
            assertEquals(0, f.stat(NvmeStatistics.DOORBELL_SHADOW_SQ));
        }
    }

    /** Keeps up to {@code qd} reads in flight, submitting each one individually (bd->last = true). */
    static int runStreaming(Fixture f, HostQueue q, long buf, int total, int qd) {
        int submitted = 0, completed = 0;
        while (completed < total) {
            while (submitted < total && q.inflight() < Math.min(qd, q.capacity())) {
                q.submit(Command.read(1, submitted % 1000, 1, buf, 0));
                submitted++;
            }
            List<Completion> done = q.awaitCompletions(1, Duration.ofSeconds(10));
            for (Completion c : done) {
                assertTrue(c.ok(), c.toString());
            }
            completed += done.size();
        }
        return completed;
    }

    @Test
    void spdkOrderDbbufBeforeQueuesAssociatesNewQueues() {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "2")) {
            f.driver.enable();
            f.driver.setNumberOfQueues(2);
            f.driver.allocateDbbuf();
            assertTrue(f.driver.sendDbbuf().ok());
            f.driver.enableMsix(3);
            HostQueue q1 = f.driver.createQueuePair(1, 16, 1);
            HostQueue q2 = f.driver.createQueuePair(2, 16, 2);
            assertTrue(q1.shadowed() && q2.shadowed());
            long buf = f.host.allocatePages(1);
            for (int i = 0; i < 50; i++) {
                assertTrue(q1.execute(Command.read(1, i, 1, buf, 0)).ok());
                assertTrue(q2.execute(Command.write(1, i, 1, buf, 0)).ok());
            }
            assertEquals(100, f.stat(NvmeStatistics.IO_COMMANDS));
        }
    }

    @Test
    void staleShadowValueAtQueueCreationRunsNoStaleCommands() {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1")) {
            f.driver.enable();
            f.driver.setNumberOfQueues(1);
            f.driver.allocateDbbuf();
            assertTrue(f.driver.sendDbbuf().ok());
            writeInt(f, f.driver.shadowPage() + 8, 5000); // stale, ≥ qsize
            f.driver.enableMsix(2);
            HostQueue q = f.driver.createQueuePair(1, 16, 1);
            long buf = f.host.allocatePages(1);
            for (int i = 0; i < 40; i++) {
                assertTrue(q.execute(Command.read(1, i, 1, buf, 0)).ok());
            }
        }
    }

    @Test
    void reissuedDbbufMovesQueuesToTheNewPages() throws Exception {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "2")) {
            f.driver.bringUp(2, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            for (int i = 0; i < 20; i++) {
                assertTrue(q.execute(Command.read(1, i, 1, buf, 0)).ok());
            }
            long[] old = f.driver.reissueDbbuf();
            // Sentinels in the old pages must never change again.
            byte[] sentinel = new byte[4096];
            java.util.Arrays.fill(sentinel, (byte) 0x5A);
            f.host.memory().write(old[1], sentinel, 0, 4096);
            byte[] oldShadow = new byte[4096];
            f.host.memory().read(old[0], oldShadow, 0, 4096);
            Set<Integer> seen = new HashSet<>();
            for (int i = 0; i < 100; i++) {
                Completion c = q.execute(Command.read(1, i, 1, buf, 0));
                assertTrue(c.ok());
                seen.add(i);
                assertTrue(f.driver.ioQueue(2).execute(Command.flush(1)).ok());
            }
            byte[] after = new byte[4096];
            f.host.memory().read(old[1], after, 0, 4096);
            assertArrayEquals(sentinel, after, "old EventIdx page untouched");
            f.host.memory().read(old[0], after, 0, 4096);
            assertArrayEquals(oldShadow, after);
            assertEquals(2, f.stat(NvmeStatistics.DBBUF_ACCEPTED));
        }
    }

    @Test
    void dbbufWhileIoIsInFlightLosesNoCommand() {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1")) {
            f.driver.enable();
            f.driver.setNumberOfQueues(1);
            f.driver.allocateDbbuf(); // host points queues at the slots before the controller knows
            f.driver.enableMsix(2);
            HostQueue q = f.driver.createQueuePair(1, 32, 1);
            assertTrue(q.shadowed());
            long buf = f.host.allocatePages(1);
            for (int i = 0; i < 8; i++) {
                q.submit(Command.read(1, i, 1, buf, 0)); // only the first crosses EventIdx 0 → MMIO
            }
            assertEquals(1, q.mmioSq);
            List<Completion> early = q.pollFor(Duration.ofMillis(50));
            assertEquals(1, early.size(), "without DBBUF only the MMIO'd command is visible");
            assertTrue(f.driver.sendDbbuf().ok());
            List<Completion> rest = q.awaitCompletions(7, Duration.ofSeconds(5));
            assertEquals(7, rest.size());
        }
    }

    @Test
    void shadowOnlyTailWriteIsPickedUpByTheSafetyNetPark() throws Exception {
        // Relies on the safety-net park by definition: the default park-dbbuf-us.
        try (Fixture f = Fixture.of("queues", "1")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            assertTrue(q.execute(Command.read(1, 0, 1, buf, 0)).ok());
            // Host writes the SQE and the shadow tail but never MMIOs (not permitted, but must not hang).
            int tail = q.sqTail();
            Command.read(1, 1, 1, buf, 0).cid(7).writeTo(f.host.memory(), q.sqBase + 64L * tail);
            writeInt(f, f.driver.shadowPage() + 8, tail + 1);
            GuestMemory.fullFence();
            long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            while (f.stat(NvmeStatistics.IO_READS) < 2 && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertEquals(2, f.stat(NvmeStatistics.IO_READS));
        }
    }

    @Test
    void lateMmioWithAnOlderTailNeverRegressesTheShadowTail() throws Exception {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            for (int i = 0; i < 5; i++) {
                q.queue(Command.read(1, i, 1, buf, 0));
            }
            q.ringSq();
            assertEquals(5, q.awaitCompletions(5, Duration.ofSeconds(5)).size());
            // A late posted MMIO write carrying an old tail (2) arrives after the shadow said 5.
            f.host.mmioWrite32(0, 0x1008, 2);
            Thread.sleep(30);
            assertTrue(q.pollFor(Duration.ofMillis(20)).isEmpty(), "no command executed twice");
            assertEquals(5, f.stat(NvmeStatistics.IO_READS));
            assertTrue(q.execute(Command.read(1, 9, 1, buf, 0)).ok());
            assertEquals(6, f.stat(NvmeStatistics.IO_READS));
        }
    }

    @Test
    void mmioWithoutShadowUpdateOnlyWakesTheWorker() throws Exception {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            assertTrue(q.execute(Command.read(1, 0, 1, buf, 0)).ok());
            // Buggy host: MMIO only. Defined behaviour: the shadow is authoritative, the MMIO only wakes.
            int tail = q.sqTail();
            Command.read(1, 1, 1, buf, 0).cid(9).writeTo(f.host.memory(), q.sqBase + 64L * tail);
            f.host.mmioWrite32(0, 0x1008, tail + 1);
            Thread.sleep(20);
            assertEquals(1, f.stat(NvmeStatistics.IO_READS));
            // The conforming path continues: the host's next shadow update covers the entry too.
            writeInt(f, f.driver.shadowPage() + 8, tail + 1);
            f.host.mmioWrite32(0, 0x1008, tail + 1);
            assertEquals(1, q.awaitCompletions(1, Duration.ofSeconds(5)).size());
            assertEquals(2, f.stat(NvmeStatistics.IO_READS));
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 3, 16, 1024})
    void batchedShadowUpdatesAcrossRingWraparound(int depth) {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1", "namespaces", "null:1G")) {
            f.driver.bringUp(1, depth, true);
            wraps(f, f.driver.ioQueue(1), depth, 3);
        }
    }

    @Test
    void wraparoundAtMaximumQueueEntries() {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1", "namespaces", "null:1G", "mqes", "63")) {
            f.driver.bringUp(1, 64, true);
            wraps(f, f.driver.ioQueue(1), 64, 4);
        }
    }

    private static void wraps(Fixture f, HostQueue q, int depth, int wraps) {
        Random rnd = new Random(depth);
        long buf = f.host.allocatePages(1);
        int total = Math.max(depth * wraps, 60);
        int done = 0;
        Set<Integer> outstanding = new HashSet<>();
        long eiAddr = f.driver.eventIdxPage() + 8;
        while (done < total) {
            int batch = 1 + rnd.nextInt(Math.max(1, q.capacity() - q.inflight()));
            for (int i = 0; i < batch && q.inflight() < q.capacity(); i++) {
                int cid = q.queue(Command.read(1, i, 1, buf, 0));
                assertTrue(outstanding.add(cid), "cid reused while outstanding");
            }
            q.ringSq(); // one shadow update advancing the tail by the whole batch
            for (Completion c : q.awaitCompletions(1, Duration.ofSeconds(10))) {
                assertTrue(c.ok());
                assertTrue(outstanding.remove(c.cid()), "cid completed twice or unknown: " + c);
                done++;
            }
            int ei = readInt(f, eiAddr);
            assertTrue(ei >= 0 && ei < depth, "EventIdx " + ei + " within the queue");
        }
        for (Completion c : q.awaitCompletions(outstanding.size(), Duration.ofSeconds(10))) {
            assertTrue(outstanding.remove(c.cid()));
        }
        assertTrue(outstanding.isEmpty());
    }

    @Test
    void needEventWindowEdgesMatchLinux() {
        assertTrue(LinuxLikeDriver.needEvent(5, 6, 5), "ei = old");
        assertFalse(LinuxLikeDriver.needEvent(6, 6, 5), "ei = new");
        assertFalse(LinuxLikeDriver.needEvent(4, 6, 5), "ei = old - 1");
        assertTrue(LinuxLikeDriver.needEvent(1023, 2, 1020), "across the ring wrap");
        assertTrue(LinuxLikeDriver.needEvent(0xFFFF, 2, 1020), "0xFFFF only on wrap");
        assertFalse(LinuxLikeDriver.needEvent(0xFFFF, 30, 20));
    }

    @Test
    void racingHostNeverLosesAWakeupWithoutSafetyNet() {
        // The safety-net parks are 5 s (withoutSafetyNet): a lost wake-up hangs and fails this test.
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1", "namespaces", "null:1G", "poll-us", "0")) {
            f.driver.bringUp(1, 8, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            for (int i = 0; i < 5000; i++) {
                q.submit(Command.read(1, 0, 1, buf, 0));
                q.awaitCompletions(1, Duration.ofSeconds(5));
            }
        }
    }

    @Test
    void invalidShadowTailRaisesAnAsyncEventAndIsIgnored() throws Exception {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            assertTrue(q.execute(Command.read(1, 0, 1, buf, 0)).ok());
            writeInt(f, f.driver.shadowPage() + 8, 0xFFF0);
            f.host.mmioWrite32(0, 0x1008, 3); // wake
            assertEquals(0x010100, f.driver.awaitAsyncEvent(Duration.ofSeconds(5)), "AER: invalid doorbell write value");
            writeInt(f, f.driver.shadowPage() + 8, q.sqTail());
            assertTrue(q.execute(Command.read(1, 1, 1, buf, 0)).ok());
        }
    }

    @Test
    void eventIdxIsLittleEndianWithUpper16BitsZero() throws Exception {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            f.host.memory().writeInt(f.driver.eventIdxPage() + 8, 0xFFFF_FFFF);
            long buf = f.host.allocatePages(1);
            for (int i = 0; i < 3; i++) {
                assertTrue(q.execute(Command.read(1, 0, 1, buf, 0)).ok());
            }
            Thread.sleep(20);
            int ei = readInt(f, f.driver.eventIdxPage() + 8);
            assertEquals(0, ei >>> 16, "upper 16 bits zero");
            assertEquals(q.sqTail(), ei);
            byte[] raw = new byte[4];
            f.host.memory().read(f.driver.eventIdxPage() + 8, raw, 0, 4);
            assertEquals(q.sqTail(), raw[0] & 0xFF, "little-endian");
        }
    }

    @Test
    void adminQueueStaysOnMmioDoorbells() {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1")) {
            f.driver.bringUp(1, 16, true);
            // The admin tail and head come from BAR0 only: a value in slot 0 is never read as a tail. The
            // controller mirrors its MMIO values into slot 0 as QEMU does (DbbufSeedTest).
            writeInt(f, f.driver.shadowPage(), 0xFFF0);
            for (int i = 0; i < 40; i++) {
                f.driver.identify(1, 0);
            }
            assertEquals(f.driver.adminQueue().sqTail(), readInt(f, f.driver.shadowPage()), "slot 0 mirrors the MMIO tail");
        }
    }

    @Test
    void shadowOnlyCqHeadUpdatesAndAFullCqMakeProgress() throws Exception {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1", "mqes", "63")) {
            f.driver.enable();
            f.driver.setNumberOfQueues(1);
            f.driver.allocateDbbuf();
            f.driver.enableMsix(2);
            HostQueue q = f.driver.createQueuePair(1, 16, 4, 1); // SQ 16, CQ 4 (3 usable)
            assertTrue(f.driver.sendDbbuf().ok());
            long buf = f.host.allocatePages(1);
            for (int i = 0; i < 10; i++) {
                q.queue(Command.read(1, i, 1, buf, 0));
            }
            q.ringSq();
            Thread.sleep(30);
            // 3 CQEs fit; the 4th command may have executed and waits to post its completion.
            assertTrue(f.stat(NvmeStatistics.IO_READS) <= 4, "controller blocks on the full CQ: " + f.stat(NvmeStatistics.IO_READS));
            assertEquals(1, f.host.interrupts().count(1) > 0 ? 1 : 0);
            int got = 0;
            long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            while (got < 10 && System.nanoTime() < deadline) {
                got += q.reap().size(); // shadow CQ head (+ MMIO when the armed EventIdx is crossed)
                Thread.onSpinWait();
            }
            assertEquals(10, got);
        }
    }

    @Test
    void interruptForEveryBatchAfterShadowOnlyConsumption() {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            for (int i = 0; i < 20; i++) {
                long seen = f.host.interrupts().count(1);
                q.submit(Command.read(1, i, 1, buf, 0));
                try {
                    assertTrue(f.host.interrupts().await(1, seen, Duration.ofSeconds(5)) > seen, "interrupt " + i);
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
                assertEquals(1, q.reap().size());
            }
            assertTrue(q.mmioCq <= 2, "CQ head through the shadow; MMIO at most once per wrap (EventIdx 0xFFFF): " + q.mmioCq);
        }
    }

    @Test
    void intxDeassertsOnTheShadowHead() throws Exception {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1")) {
            f.driver.bringUp(1, 16, true);
            f.host.disableMsix();
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            q.submit(Command.read(1, 0, 1, buf, 0));
            long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            while (!f.host.interrupts().intxAsserted() && System.nanoTime() < deadline) {
                Thread.onSpinWait();
            }
            assertTrue(f.host.interrupts().intxAsserted());
            assertEquals(1, q.reap().size());
            assertFalse(f.host.interrupts().intxAsserted(), "deasserted once the host consumed everything");
        }
    }

    @Test
    void controllerResetForgetsDbbuf() throws Exception {
        for (String kind : new String[] {"cc", "shutdown", "flr", "reset"}) {
            try (Fixture f = Fixture.withoutSafetyNet("queues", "1")) {
                f.driver.bringUp(1, 16, true);
                long oldShadow = f.driver.shadowPage(), oldEvent = f.driver.eventIdxPage();
                assertTrue(f.driver.ioQueue(1).execute(Command.flush(1)).ok());
                switch (kind) {
                    case "cc" -> f.driver.disable();
                    case "shutdown" -> {
                        f.driver.shutdown();
                        f.driver.disable();
                    }
                    case "flr" -> {
                        int cap = f.controller.config().pciExpressCapabilityOffset();
                        f.host.configWrite(cap + 8, 2, 0x8000);
                        f.host.configWrite(io.javadevices.pci.ConfigSpace.COMMAND, 2, 0x6);
                    }
                    default -> {
                        f.controller.reset();
                        f.host.configWrite(io.javadevices.pci.ConfigSpace.COMMAND, 2, 0x6);
                    }
                }
                assertEquals(0, f.stat(NvmeStatistics.DBBUF_ACTIVE), kind);
                byte[] sentinel = new byte[4096];
                java.util.Arrays.fill(sentinel, (byte) 0x33);
                f.host.memory().write(oldEvent, sentinel, 0, 4096);
                f.host.memory().write(oldShadow, sentinel, 0, 4096); // writing the old shadow page has no effect
                f.driver.bringUp(1, 16, false);
                HostQueue q = f.driver.ioQueue(1);
                long buf = f.host.allocatePages(1);
                for (int i = 0; i < 20; i++) {
                    assertTrue(q.execute(Command.read(1, i, 1, buf, 0)).ok(), kind);
                }
                byte[] after = new byte[4096];
                f.host.memory().read(oldEvent, after, 0, 4096);
                assertArrayEquals(sentinel, after, kind + ": old EventIdx page never written");
                assertTrue(f.stat(NvmeStatistics.CONTROLLER_RESETS) >= 1);
            }
        }
    }

    @Test
    void linuxResetCycleRepeatsDbbuf() {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "2")) {
            long buf;
            for (int cycle = 0; cycle < 3; cycle++) {
                f.driver.bringUp(2, 32, true);
                buf = f.host.allocatePages(1);
                for (int i = 0; i < 30; i++) {
                    assertTrue(f.driver.ioQueue(1 + i % 2).execute(Command.write(1, i, 1, buf, 0)).ok());
                }
                f.driver.teardown();
            }
            assertEquals(3, f.stat(NvmeStatistics.DBBUF_ACCEPTED));
            assertEquals(3, f.stat(NvmeStatistics.CONTROLLER_RESETS));
        }
    }

    @Test
    void deleteAndRecreateQueueWhileDbbufIsActive() {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            for (int i = 0; i < 7; i++) {
                assertTrue(q.execute(Command.read(1, i, 1, buf, 0)).ok());
            }
            assertTrue(f.driver.admin(Command.deleteSq(1)).ok());
            assertTrue(f.driver.admin(Command.deleteCq(1)).ok());
            f.driver.ioQueues().clear();
            // The host zeroes the slots of a deleted queue (SPDK 38736d993d; Linux memsets on reset).
            writeInt(f, f.driver.shadowPage() + 8, 0);
            writeInt(f, f.driver.shadowPage() + 12, 0);
            HostQueue again = f.driver.createQueuePair(1, 8, 1);
            for (int i = 0; i < 20; i++) {
                assertTrue(again.execute(Command.read(1, i, 1, buf, 0)).ok());
            }
        }
    }

    @Test
    void unmappedDbbufPageFallsBackToMmio() {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1")) {
            long extra = 0x1_0000_0000L;
            f.host.memory().map(extra, MemorySegment.ofArray(new long[8192 / 8]));
            f.driver.useDbbufPages(extra, extra + 4096);
            f.driver.enable();
            f.driver.setNumberOfQueues(1);
            f.driver.enableMsix(2);
            HostQueue q = f.driver.createQueuePair(1, 16, 1);
            assertTrue(f.driver.sendDbbuf().ok());
            long buf = f.host.allocatePages(1);
            assertTrue(q.execute(Command.read(1, 0, 1, buf, 0)).ok());
            f.host.memory().unmap(extra, 8192);
            f.driver.ioQueues().forEach(h -> h.toString()); // host now only has MMIO doorbells
            HostQueue mmioOnly = f.driver.ioQueue(1);
            // Drop the host's shadow pointers: it can no longer write the page either.
            try {
                var m = HostQueue.class.getDeclaredMethod("clearShadowPointers");
                m.setAccessible(true);
                m.invoke(mmioOnly);
            } catch (ReflectiveOperationException e) {
                throw new AssertionError(e);
            }
            for (int i = 0; i < 10; i++) {
                assertTrue(mmioOnly.execute(Command.read(1, i, 1, buf, 0)).ok());
            }
        }
    }
}
