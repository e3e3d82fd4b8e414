package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.pci.GuestMemoryException;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Doorbell Buffer Config arriving while queues already hold a tail/head: the controller seeds the new
 * (zeroed) shadow slots with its own view (QEMU nvme_dbbuf_config, SPDK copy_doorbells), so a zero in a
 * fresh page never reads as "the host submitted up to slot 0" and no ring slot runs twice.
 */
class DbbufSeedTest {
    private static final int DEPTH = 64;
    private static final int BEFORE = 27;

    private static int readInt(Fixture f, long a) {
        try {
            return f.host.memory().readInt(a);
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
    }

    /** Runs {@code n} reads one at a time, checking each completion is the command just submitted. */
    private static void reads(HostQueue q, long buf, int n) {
        for (int i = 0; i < n; i++) {
            int cid = q.submit(Command.read(1, i, 1, buf, 0));
            List<Completion> done = q.awaitCompletions(1, Duration.ofSeconds(5));
            assertEquals(1, done.size(), "exactly one completion: " + done);
            assertEquals(cid, done.get(0).cid(), "completion of the submitted command: " + done);
            assertTrue(done.get(0).ok(), done.toString());
        }
    }

    /** Submissions of several commands per doorbell, so EventIdx, the shadow and the MMIO path all take part. */
    private static void batches(HostQueue q, long buf, int batches) {
        for (int b = 0; b < batches; b++) {
            Set<Integer> cids = new HashSet<>();
            for (int i = 0; i < 5; i++) {
                cids.add(q.queue(Command.read(1, i, 1, buf, 0)));
            }
            q.ringSq();
            for (Completion c : q.awaitCompletions(5, Duration.ofSeconds(5))) {
                assertTrue(cids.remove(c.cid()), "unexpected completion " + c);
            }
            assertTrue(cids.isEmpty());
        }
    }

    @Test
    void dbbufAfterMmioIoWithZeroedPagesRunsNoPhantomCommand() {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1")) {
            f.driver.enable();
            f.driver.setNumberOfQueues(1);
            f.driver.enableMsix(2);
            HostQueue q = f.driver.createQueuePair(1, DEPTH, 1);
            assertFalse(q.shadowed());
            long buf = f.host.allocatePages(1);
            reads(q, buf, BEFORE); // MMIO doorbells only: SQ tail 27, CQ head 27
            assertTrue(f.driver.dbbufWithFreshPages().ok());
            // The controller wrote its view into the fresh slots (SQ 1 tail at 8, CQ 1 head at 12) and EventIdx.
            assertEquals(BEFORE, readInt(f, f.driver.shadowPage() + 8), "SQ tail seeded");
            assertEquals(BEFORE, readInt(f, f.driver.shadowPage() + 12), "CQ head seeded");
            // EventIdx is the seeded tail, unless the worker has meanwhile started a nap, which publishes
            // head - 1 (its "do not ring" value) and re-arms to head afterwards: both are the worker's own view.
            int eventIdx = readInt(f, f.driver.eventIdxPage() + 8);
            assertTrue(eventIdx == BEFORE || eventIdx == BEFORE - 1, "SQ EventIdx from the controller's view: " + eventIdx);
            reads(q, buf, 10);
            batches(q, buf, 20); // wraps the 64-entry ring
            assertEquals(BEFORE + 10 + 100, f.stat(NvmeStatistics.IO_COMMANDS), "executed exactly what was submitted");
        }
    }

    @Test
    void reissuedDbbufWithFreshZeroedPagesRunsNoPhantomCommand() {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "2")) {
            f.driver.bringUp(2, DEPTH, true);
            HostQueue q = f.driver.ioQueue(1);
            assertTrue(q.shadowed());
            long buf = f.host.allocatePages(1);
            reads(q, buf, BEFORE);
            reads(f.driver.ioQueue(2), buf, 3);
            assertTrue(f.driver.dbbufWithFreshPages().ok()); // second DBBUF, new zeroed pages, nothing copied
            assertEquals(BEFORE, readInt(f, f.driver.shadowPage() + 8));
            assertEquals(3, readInt(f, f.driver.shadowPage() + 16), "every existing queue is seeded");
            reads(q, buf, 10);
            batches(q, buf, 20);
            reads(f.driver.ioQueue(2), buf, 5);
            assertEquals(BEFORE + 3 + 10 + 100 + 5, f.stat(NvmeStatistics.IO_COMMANDS));
            assertEquals(2, f.stat(NvmeStatistics.DBBUF_ACCEPTED));
        }
    }

    @Test
    void adminSlotsSeededAndMirroredLikeQemu() {
        try (Fixture f = Fixture.withoutSafetyNet("queues", "1")) {
            f.driver.bringUp(1, 16, true);
            HostQueue admin = f.driver.adminQueue();
            // Seeded at DBBUF time and kept equal to every later admin MMIO doorbell (QEMU nvme_process_db).
            for (int i = 0; i < 40; i++) {
                f.driver.identify(1, 0);
            }
            assertEquals(admin.sqTail(), readInt(f, f.driver.shadowPage()), "admin SQ tail mirrored");
            assertEquals(admin.cqHead(), readInt(f, f.driver.shadowPage() + 4), "admin CQ head mirrored");
            assertEquals(admin.sqTail(), readInt(f, f.driver.eventIdxPage()), "admin EventIdx: every submission rings");
            // The admin queue itself still runs on its MMIO doorbells (Linux never writes slot 0).
            assertTrue(f.driver.ioQueue(1).execute(Command.flush(1)).ok());
        }
    }
}
