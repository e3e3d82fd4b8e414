package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.model.GuestErrors;
import org.junit.jupiter.api.Test;

import java.text.MessageFormat;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ResourceBundle;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.*;

/** Guest errors are counted by kind and logged at most once per kind per window, never per command. */
class GuestErrorsTest {
    /** A System.Logger that keeps its lines (and whether each carried an exception). */
    static final class CapturingLogger implements System.Logger {
        final List<String> lines = new ArrayList<>();
        final List<Throwable> causes = new ArrayList<>();

        @Override
        public String getName() {
            return "capture";
        }

        @Override
        public boolean isLoggable(Level level) {
            return true;
        }

        @Override
        public synchronized void log(Level level, ResourceBundle bundle, String msg, Throwable thrown) {
            lines.add(msg);
            causes.add(thrown);
        }

        @Override
        public synchronized void log(Level level, ResourceBundle bundle, String format, Object... params) {
            lines.add(params == null || params.length == 0 ? format : MessageFormat.format(format, params));
            causes.add(null);
        }
    }

    private static void status(Completion c, int sct, int sc) {
        assertEquals(sct, c.sct(), c.toString());
        assertEquals(sc, c.sc(), c.toString());
    }

    @Test
    void oneLinePerKindPerWindowWithTheSuppressedCount() {
        CapturingLogger log = new CapturingLogger();
        AtomicLong now = new AtomicLong(1_000_000_000L);
        GuestErrors errors = new GuestErrors(log, now::get, Duration.ofSeconds(10));
        for (int i = 0; i < 1000; i++) {
            errors.record(GuestErrors.Kind.INVALID_PRP_OFFSET, i);
        }
        errors.record(GuestErrors.Kind.INVALID_LOG_OFFSET, 4);
        assertEquals(1000, errors.count(GuestErrors.Kind.INVALID_PRP_OFFSET));
        assertEquals(1, errors.count(GuestErrors.Kind.INVALID_LOG_OFFSET));
        assertEquals(2, log.lines.size(), "the first of each kind is logged, the rest of the window suppressed: " + log.lines);
        now.addAndGet(Duration.ofSeconds(9).toNanos());
        errors.record(GuestErrors.Kind.INVALID_PRP_OFFSET, 0);
        assertEquals(2, log.lines.size(), "still inside the window");
        now.addAndGet(Duration.ofSeconds(2).toNanos());
        errors.record(GuestErrors.Kind.INVALID_PRP_OFFSET, 0);
        assertEquals(3, log.lines.size());
        assertTrue(log.lines.get(2).contains("guest.error.invalid-prp-offset"), log.lines.get(2));
        assertTrue(log.lines.get(2).contains("1000 suppressed"), log.lines.get(2));
        assertEquals(3, errors.linesLogged());
        Map<String, Long> stats = new LinkedHashMap<>();
        errors.addTo(stats);
        assertEquals(1002L, stats.get("guest.error.invalid-prp-offset"));
        assertEquals(0L, stats.get("guest.error.dma-outside-memory"), "every kind has a key");
    }

    @Test
    void aWellBehavedGuestLogsNothing() {
        try (Fixture f = Fixture.of("queues", "2")) {
            f.driver.bringUp(2, 32, true);
            status(f.driver.identifyStatus(0x06, 0), 0, 0x02); // Linux's I/O Command Set probe: answered, not an error
            long buf = f.host.allocatePages(1);
            for (int i = 0; i < 200; i++) {
                assertTrue(f.driver.ioQueue(1 + i % 2).execute(Command.write(1, i, 8, buf, 0)).ok());
            }
            f.driver.teardown();
            Map<String, Long> stats = f.controller.statistics();
            stats.forEach((k, v) -> {
                if (k.startsWith("guest.error.")) {
                    assertEquals(0L, v, k);
                }
            });
        }
    }

    @Test
    void invalidDoorbellsAreCountedByKindAndLoggedOnce() {
        try (Fixture f = Fixture.of("queues", "1")) {
            f.driver.enable();
            f.driver.setNumberOfQueues(1);
            f.driver.enableMsix(2);
            f.driver.createQueuePair(1, 16, 1);
            long linesBefore = f.stat(NvmeStatistics.GUEST_ERROR_LOG_LINES);
            for (int i = 0; i < 100; i++) {
                f.host.mmioWrite32(0, 0x1000 + 8, 999);      // SQ 1 tail ≥ 16
                f.host.mmioWrite32(0, 0x1000 + 8 * 3, 1);    // SQ 3 does not exist
                f.host.mmioWrite32(0, 0x1000 + 12, 16);      // CQ 1 head ≥ 16
                f.host.mmioWrite32(0, 0x1000 + 8 * 3 + 4, 1); // CQ 3 does not exist
            }
            assertEquals(100, f.stat("guest.error.db-invalid-sq-tail"));
            assertEquals(100, f.stat("guest.error.db-invalid-sq"));
            assertEquals(100, f.stat("guest.error.db-invalid-cq-head"));
            assertEquals(100, f.stat("guest.error.db-invalid-cq"));
            assertEquals(4, f.stat(NvmeStatistics.GUEST_ERROR_LOG_LINES) - linesBefore, "one line per kind in the window");
        }
    }

    /** Waits (bounded) until the statistic reaches {@code at least}; returns its value. */
    private static long awaitStat(Fixture f, String key, long atLeast) {
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (f.stat(key) < atLeast && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        return f.stat(key);
    }

    @Test
    void anInvalidShadowCqHeadIsCountedOnceAndFreesNothing() throws Exception {
        try (Fixture f = Fixture.of("queues", "1")) {
            f.driver.enable();
            f.driver.setNumberOfQueues(1);
            long shadow = f.host.allocatePages(1), eventIdx = f.host.allocatePages(1);
            f.driver.useDbbufPages(shadow, eventIdx);
            f.driver.enableMsix(2);
            var q = f.driver.createQueuePair(1, 16, 4, 1); // 4 CQ entries: the 4th completion needs the host's head
            assertTrue(f.driver.sendDbbuf().ok());
            f.driver.submitAer(io.javadevices.nvme.driver.LinuxLikeDriver.AER_CID);
            f.host.memory().writeInt(shadow + 8 + 4, 0xFFF0); // shadow CQ 1 head ≥ 4 entries
            long buf = f.host.allocatePages(1);
            for (int i = 0; i < 4; i++) {
                q.submit(Command.read(1, i, 1, buf, 0));
            }
            assertEquals(1, awaitStat(f, "guest.error.db-invalid-cq-head", 1), "seen by the blocked poster");
            assertEquals(0x010100, f.driver.awaitAsyncEvent(Duration.ofSeconds(5)), "AER: invalid doorbell write value");
            List<Completion> done = q.awaitCompletions(4, Duration.ofSeconds(5)); // reaping writes a valid head
            assertEquals(4, done.size(), "the poster went on once the head was valid again");
            assertTrue(done.stream().allMatch(Completion::ok));
            assertEquals(1, f.stat("guest.error.db-invalid-cq-head"), "one report per value, not per look");
        }
    }

    @Test
    void anSqeOutsideGuestMemoryCompletesWithDataTransferErrorAndIsCounted() throws Exception {
        try (Fixture f = Fixture.of("queues", "1")) {
            f.driver.enable();
            f.driver.setNumberOfQueues(1);
            f.driver.enableMsix(2);
            long extra = 0x2_0000_0000L;
            f.host.memory().map(extra, java.lang.foreign.MemorySegment.ofArray(new long[4096 / 8]));
            long cq = f.host.allocatePages(1);
            assertTrue(f.driver.admin(Command.createCq(1, 16, cq, 1, true)).ok());
            assertTrue(f.driver.admin(Command.createSq(1, 16, extra, 1)).ok());
            f.host.memory().unmap(extra, 4096); // e.g. a vfio-user DMA_UNMAP of the SQ's region
            f.host.mmioWrite32(0, 0x1008, 1);
            assertEquals(1, awaitStat(f, "guest.error.dma-outside-memory", 1));
            long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            int dw3;
            do {
                dw3 = f.host.memory().loadIntAcquire(cq + 12);
            } while ((dw3 >>> 16 & 1) == 0 && System.nanoTime() < deadline);
            assertEquals(1, dw3 >>> 16 & 1, "a completion was posted");
            assertEquals(0x04, dw3 >>> 17 & 0x7FFF, "Data Transfer Error (generic status)");
            assertEquals(0, dw3 & 0xFFFF, "the CID could not be read");
            assertEquals(0, f.driver.readReg32(0x1C) & 2, "no controller fatal status");
        }
    }

    @Test
    void anInvalidShadowTailIsCountedAsAnInvalidTail() throws Exception {
        try (Fixture f = Fixture.of("queues", "1")) {
            f.driver.bringUp(1, 16, true);
            long buf = f.host.allocatePages(1);
            assertTrue(f.driver.ioQueue(1).execute(Command.read(1, 0, 1, buf, 0)).ok());
            f.host.memory().writeInt(f.driver.shadowPage() + 8, 0xFFF0); // shadow SQ tail ≥ 16
            f.host.mmioWrite32(0, 0x1008, 1); // valid MMIO value: only a wake-up with DBBUF active
            assertEquals(0x010100, f.driver.awaitAsyncEvent(Duration.ofSeconds(5)), "AER: invalid doorbell write value");
            assertTrue(f.stat("guest.error.db-invalid-sq-tail") >= 1);
            assertEquals(1, f.stat(NvmeStatistics.GUEST_ERROR_LOG_LINES), "however often the worker sees it: one line");
        }
    }

    @Test
    void getLogPageOffsetWithTheTopBitSetIsInvalidField() {
        try (Fixture f = Fixture.of()) {
            f.driver.enable();
            long page = f.driver.dataPage();
            for (int lid : new int[] {0x01, 0x02, 0x03, 0x05}) {
                // LPO = 2^63 (CDW13 bit 31): Invalid Field, not an exception and Internal Error.
                status(f.driver.admin(Command.getLogPage(lid, 0, 512, page).cdw(13, 0x8000_0000)), 0, 0x02);
                status(f.driver.admin(Command.getLogPage(lid, 0, 512, page).cdw(12, 0xFFFF_FFFC).cdw(13, -1)), 0, 0x02);
            }
            // Beyond the log's size (NVMe 1.4 §5.14.1): Invalid Field too.
            status(f.driver.admin(Command.getLogPage(0x02, 0, 4, page).cdw(12, 512)), 0, 0x02);
            status(f.driver.admin(Command.getLogPage(0x02, 0, 4, page).cdw(13, 1)), 0, 0x02);
            // NUMDU:NUMDL all ones (2^32 dwords): beyond MDTS, Invalid Field.
            status(f.driver.admin(Command.getLogPage(0x02, 0, 4, page).cdw(10, 0xFFFF_0002).cdw(11, 0xFFFF)), 0, 0x02);
            assertEquals(0, f.stat("guest.error.command-exception"), "no command threw");
            assertEquals(10, f.stat("guest.error.invalid-log-offset"));
            assertTrue(f.stat("guest.error.admin-invalid-field") >= 11);
            // The last byte of the log is still readable.
            assertTrue(f.driver.admin(Command.getLogPage(0x02, 0, 4, page).cdw(12, 508)).ok());
        }
    }

    @Test
    void extremeFieldValuesInEveryAdminCommandNeverThrow() {
        // The audit of item 9 as a test: every admin opcode with all-ones, top-bit and boundary values in
        // every dword and PRP completes with an NVMe status, never through an exception (Internal Error).
        int[] opcodes = {0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0A, 0x18, 0x7C};
        int[] dwords = {0, -1, 0x8000_0000, 0x7FFF_FFFF, 0xFFFF, 0x1_0000, 1, 0xFFFF_FFFC};
        long[] prps = {0, -1L, 1L << 63, -4096L, 4096, 1L << 40};
        try (Fixture f = Fixture.of("queues", "2")) {
            f.driver.enable();
            java.util.Random rnd = new java.util.Random(11);
            for (int i = 0; i < 800; i++) {
                Command c = Command.of(opcodes[rnd.nextInt(opcodes.length)])
                        .nsid(dwords[rnd.nextInt(dwords.length)])
                        .prp1(prps[rnd.nextInt(prps.length)])
                        .prp2(prps[rnd.nextInt(prps.length)]);
                for (int dw = 10; dw <= 15; dw++) {
                    c.cdw(dw, dwords[rnd.nextInt(dwords.length)]);
                }
                assertNotEquals(0x06, f.driver.admin(c).sc(), "Internal Error for " + c.opcode());
            }
            assertEquals(0, f.stat("guest.error.command-exception"));
            assertTrue(f.stat("guest.error.admin-invalid-field") > 0);
        }
    }

    @Test
    void anUnexpectedExceptionIsCountedAndLoggedRateLimitedWithItsCause() {
        try (Fixture f = Fixture.of()) {
            long before = f.stat(NvmeStatistics.GUEST_ERROR_LOG_LINES);
            for (int i = 0; i < 50; i++) {
                f.controller.commandFailed(1, i, new IllegalStateException("boom " + i));
            }
            assertEquals(50, f.stat("guest.error.command-exception"));
            assertEquals(1, f.stat(NvmeStatistics.GUEST_ERROR_LOG_LINES) - before, "one line for 50 failures");
            assertEquals(50, f.controller.errorLog().count(), "each still gets an Error Information entry");
        }
    }
}
