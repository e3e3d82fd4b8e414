package io.javadevices.nvme;

import io.javadevices.nvme.backend.RamBackend;
import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.pci.GuestMemoryException;
import io.javadevices.pci.testkit.TestHost;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Asynchronous execution per queue, driven through the Linux-like driver against {@link HeldBackend}, whose
 * operations complete only when and in the order the test says: out-of-order CQEs with the right CIDs, a queue's
 * whole depth in flight at once, backpressure when the in-flight slots run out, the errno → status mapping, and
 * resets and SQ deletes with operations still in flight (namespace deletes: {@link DeleteGraceTest}), the guest
 * memory unmap barrier.
 */
class AsyncIoTest {
    private TestHost host;
    private HeldBackend backend;
    private NvmeController controller;
    private LinuxLikeDriver driver;

    @AfterEach
    void tearDown() {
        if (backend != null) {
            for (HeldBackend.Op op : backend.held()) {
                backend.complete(op, -5); // let a test that failed midway end its workers
            }
        }
        if (host != null) {
            host.close();
        }
    }

    private HostQueue start(int depth, String... extra) {
        return start(depth, false, extra);
    }

    private HostQueue start(int depth, boolean readOnly, String... extra) {
        host = TestHost.heap(64L << 20);
        Map<String, String> o = new HashMap<>(Map.of("queues", "1", "namespaces", "ram:16M", "io-engine", "threads"));
        for (int i = 0; i < extra.length; i += 2) {
            o.put(extra[i], extra[i + 1]);
        }
        controller = host.attach(ctx -> new NvmeController(NvmeOptions.parse(o), ctx,
                spec -> backend = new HeldBackend(new RamBackend(spec.size()), readOnly)));
        driver = new LinuxLikeDriver(host);
        driver.bringUp(1, depth, true);
        return driver.ioQueue(1);
    }

    private void put(long address, byte[] data) {
        try {
            host.memory().write(address, data, 0, data.length);
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
    }

    private byte[] get(long address, int length) {
        byte[] out = new byte[length];
        try {
            host.memory().read(address, out, 0, length);
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
        return out;
    }

    @Test
    void completionsArriveInTheOrderTheBackendFinishes() {
        HostQueue q = start(64);
        int n = 8;
        long[] bufs = new long[n];
        byte[][] data = new byte[n][];
        int[] cids = new int[n];
        for (int i = 0; i < n; i++) {
            bufs[i] = host.allocatePages(1);
            data[i] = new byte[4096];
            new Random(i).nextBytes(data[i]);
            put(bufs[i], data[i]);
            cids[i] = q.queue(Command.write(1, 8L * i, 8, bufs[i], 0));
        }
        q.ringSq();
        List<HeldBackend.Op> ops = backend.awaitHeld(n);
        assertEquals(n, ops.size(), "every write is with the backend at once");
        List<Integer> order = new ArrayList<>();
        for (int i = n - 1; i >= 0; i--) {
            backend.complete(ops.get(i)); // reverse order
            Completion c = q.awaitCompletions(1, Duration.ofSeconds(5)).getFirst();
            assertTrue(c.ok(), c.toString());
            order.add(c.cid());
        }
        List<Integer> expected = new ArrayList<>();
        for (int i = n - 1; i >= 0; i--) {
            expected.add(cids[i]);
        }
        assertEquals(expected, order, "each CQE carries the CID of the operation that finished");
        // Read everything back (again out of order) and compare.
        long[] back = new long[n];
        for (int i = 0; i < n; i++) {
            back[i] = host.allocatePages(1);
            q.queue(Command.read(1, 8L * i, 8, back[i], 0));
        }
        q.ringSq();
        ops = backend.awaitHeld(n);
        for (int i : new int[] {3, 0, 7, 1, 6, 2, 5, 4}) {
            backend.complete(ops.get(i));
        }
        List<Completion> reads = q.awaitCompletions(n, Duration.ofSeconds(5));
        assertTrue(reads.stream().allMatch(Completion::ok), reads.toString());
        for (int i = 0; i < n; i++) {
            assertArrayEquals(data[i], get(back[i], 4096), "block " + i);
        }
        Map<String, Long> s = controller.statistics();
        assertEquals(2L * n, s.get("ns1.completed"));
        assertEquals(0L, s.get("ns1.inflight"));
        assertEquals(n, s.get("ns1.inflight.max"));
        assertEquals(n, s.get(NvmeStatistics.IO_READS));
        assertEquals(n, s.get(NvmeStatistics.IO_WRITES));
    }

    @Test
    void thirtyTwoCommandsAreInFlightTogetherOnOneQueue() {
        HostQueue q = start(64);
        long buf = host.allocatePages(1);
        for (int i = 0; i < 32; i++) {
            q.queue(Command.read(1, i, 1, buf, 0));
        }
        q.ringSq();
        List<HeldBackend.Op> ops = backend.awaitHeld(32);
        assertEquals(32, backend.maxInFlight(), "the backend sees the queue's whole depth");
        assertEquals(32, controller.statistics().get("ns1.inflight"));
        ops.forEach(backend::complete);
        assertEquals(32, q.awaitCompletions(32, Duration.ofSeconds(5)).stream().filter(Completion::ok).count());
    }

    @Test
    void noFreeSlotHoldsFurtherCommandsInTheQueueUntilOneCompletes() {
        // A 2048-entry SQ has 1024 in-flight slots: the 1025th command waits in the SQ, not failed.
        HostQueue q = start(2048, "mqes", "2047");
        for (int i = 0; i < 1030; i++) {
            q.queue(Command.flush(1));
        }
        q.ringSq();
        List<HeldBackend.Op> ops = backend.awaitHeld(1024);
        assertTrue(q.pollFor(Duration.ofMillis(50)).isEmpty(), "nothing completes while everything is held");
        assertEquals(1024, backend.held().size(), "the worker stopped fetching at 1024");
        backend.complete(ops.getFirst());
        assertEquals(1, q.awaitCompletions(1, Duration.ofSeconds(5)).size());
        List<HeldBackend.Op> now = backend.awaitHeld(1024);
        assertNotSame(ops.getFirst(), now.getLast(), "a freed slot let the next command in");
        assertEquals(ops.getFirst().tag(), now.getLast().tag(), "in the slot just freed (LIFO)");
        int done = 1;
        while (done < 1030) {
            List<HeldBackend.Op> batch = backend.awaitHeld(Math.min(1024, 1030 - done));
            batch.forEach(backend::complete);
            for (Completion c : q.awaitCompletions(batch.size(), Duration.ofSeconds(5))) {
                assertTrue(c.ok(), c.toString());
                done++;
            }
        }
        assertEquals(1024, backend.maxInFlight());
    }

    @Test
    void eachBackendErrnoBecomesItsNvmeStatus() {
        HostQueue q = start(64);
        long buf = host.allocatePages(1);
        // errno, command, expected SCT/SC
        record Case(int errno, Command command, int sct, int sc, boolean dnr) {
        }
        List<Case> cases = List.of(
                new Case(-5, Command.read(1, 0, 1, buf, 0), 2, 0x81, false),        // EIO read: Unrecovered Read Error
                new Case(-5, Command.write(1, 0, 1, buf, 0), 2, 0x80, false),       // EIO write: Write Fault
                new Case(-5, Command.write(1, 0, 1, buf, 0).cdw(12, 1 << 30), 2, 0x80, true), // FUA: sync failed
                new Case(-5, Command.flush(1), 2, 0x80, true),                      // flush: sync failed
                new Case(-5, Command.of(0x08).nsid(1).slba(0).cdw(12, 0), 2, 0x80, false), // Write Zeroes
                new Case(-14, Command.read(1, 0, 1, buf, 0), 0, 0x04, false),       // EFAULT: Data Transfer Error
                new Case(-107, Command.read(1, 0, 1, buf, 0), 0, 0x82, false),      // ENOTCONN: Namespace Not Ready
                new Case(-108, Command.write(1, 0, 1, buf, 0), 0, 0x82, false),     // ESHUTDOWN
                new Case(-110, Command.flush(1), 0, 0x82, false));                  // ETIMEDOUT
        long logged = controller.statistics().get(NvmeStatistics.ERRORS_LOGGED);
        for (Case c : cases) {
            q.submit(c.command());
            HeldBackend.Op op = backend.awaitHeld(1).getFirst();
            backend.complete(op, c.errno());
            Completion done = q.awaitCompletions(1, Duration.ofSeconds(5)).getFirst();
            assertEquals(c.sct(), done.sct(), c + ": " + done);
            assertEquals(c.sc(), done.sc(), c + ": " + done);
            assertEquals(c.dnr(), GuestBytes.dnr(done), c + " DNR: " + done);
        }
        assertEquals(logged + cases.size() - 1, controller.statistics().get(NvmeStatistics.ERRORS_LOGGED),
                "an error log entry for each media or readiness error (Data Transfer Error is the guest's)");
        assertEquals(1L, controller.statistics().get("guest.error.dma-outside-memory"));
    }

    @Test
    void aBackendCompletingAnOperationTwiceCannotCorruptTheSlots() {
        HostQueue q = start(64);
        long buf = host.allocatePages(1);
        q.submit(Command.read(1, 0, 1, buf, 0));
        HeldBackend.Op first = backend.awaitHeld(1).getFirst();
        backend.complete(first);
        assertTrue(q.awaitCompletions(1, Duration.ofSeconds(5)).getFirst().ok());
        long logged = controller.statistics().get(NvmeStatistics.ERRORS_LOGGED);
        first.engine().complete(first.tag(), 0); // again: the slot is free by now
        first.engine().complete(9999, 0);        // a tag that never existed
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (controller.statistics().get(NvmeStatistics.ERRORS_LOGGED) < logged + 2 && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        assertEquals(logged + 2, controller.statistics().get(NvmeStatistics.ERRORS_LOGGED), "both dropped and logged");
        assertTrue(q.reap().isEmpty(), "no CQE for a completion of nothing");
        for (int i = 0; i < 2; i++) {
            q.queue(Command.read(1, i, 1, buf, 0));
        }
        q.ringSq();
        List<HeldBackend.Op> ops = backend.awaitHeld(2);
        assertNotEquals(ops.get(0).tag(), ops.get(1).tag(), "two commands never share a slot");
        ops.forEach(backend::complete);
        assertEquals(2, q.awaitCompletions(2, Duration.ofSeconds(5)).stream().filter(Completion::ok).count());
    }

    @Test
    void fuaAndWriteThroughReachTheBackendAsDurableWrites() {
        HostQueue q = start(64);
        long buf = host.allocatePages(1);
        q.submit(Command.write(1, 0, 1, buf, 0).cdw(12, 1 << 30));
        HeldBackend.Op op = backend.awaitHeld(1).getFirst();
        assertTrue(op.durable(), "FUA is a durable write, no separate sync");
        backend.complete(op);
        assertTrue(q.awaitCompletions(1, Duration.ofSeconds(5)).getFirst().ok());
        q.submit(Command.write(1, 0, 1, buf, 0));
        op = backend.awaitHeld(1).getFirst();
        assertFalse(op.durable(), "a plain write with the write cache on");
        backend.complete(op);
        assertTrue(q.awaitCompletions(1, Duration.ofSeconds(5)).getFirst().ok());
        assertEquals(1L, controller.statistics().get("ns1.writes.fua"));
    }

    @Test
    void writeZeroesMapsToZeroingOrDeallocationAndFuaMakesItDurable() {
        HostQueue q = start(64);
        int deac = 1 << 25, fua = 1 << 30;
        q.submit(Command.of(0x08).nsid(1).slba(16).cdw(12, 7 | fua));
        HeldBackend.Op op = backend.awaitHeld(1).getFirst();
        assertEquals("zeroes", op.kind());
        assertTrue(op.durable(), "FUA: a durable zeroing");
        assertEquals(16 * 512, op.offset());
        assertEquals(8 * 512, op.length());
        backend.complete(op);
        assertTrue(q.awaitCompletions(1, Duration.ofSeconds(5)).getFirst().ok());
        // RAM reads deallocated blocks as zeroes, so DEAC deallocates; with FUA a flush follows before the CQE.
        q.submit(Command.of(0x08).nsid(1).slba(32).cdw(12, 7 | deac | fua));
        op = backend.awaitHeld(1).getFirst();
        assertEquals("deallocate", op.kind());
        backend.complete(op);
        op = backend.awaitHeld(1).getFirst();
        assertEquals("flush", op.kind(), "the deallocation made durable");
        assertTrue(q.reap().isEmpty(), "no CQE before the flush completed");
        backend.complete(op);
        assertTrue(q.awaitCompletions(1, Duration.ofSeconds(5)).getFirst().ok());
        assertEquals(2L, controller.statistics().get("ns1.writes.fua"));
    }

    @Test
    void datasetManagementDeallocatesEveryRangeInTurn() {
        HostQueue q = start(64);
        long list = host.allocatePages(1);
        byte[] ranges = new byte[48];
        var b = GuestBytes.le(ranges);
        for (int i = 0; i < 3; i++) {
            b.putInt(16 * i + 4, 8);          // NLB
            b.putLong(16 * i + 8, 100L * i);  // SLBA
        }
        put(list, ranges);
        q.submit(Command.of(0x09).nsid(1).cdw(10, 2).cdw(11, 0x4).prp1(list));
        for (int i = 0; i < 3; i++) {
            HeldBackend.Op op = backend.awaitHeld(1).getFirst();
            assertEquals("deallocate", op.kind());
            assertEquals(100L * i * 512, op.offset(), "range " + i);
            assertEquals(8 * 512, op.length());
            backend.complete(op);
        }
        assertTrue(q.awaitCompletions(1, Duration.ofSeconds(5)).getFirst().ok());
    }

    @Test
    void writeProtectedNamespaceRefusesEveryModificationAndReads() {
        HostQueue q = start(64, true);
        byte[] id = driver.identify(0x00, 1);
        assertEquals(1, id[99] & 1, "Identify Namespace NSATTR bit 0: write protected");
        long buf = host.allocatePages(1);
        long list = host.allocatePages(1);
        byte[] ranges = new byte[16];
        GuestBytes.le(ranges).putInt(4, 1);
        put(list, ranges);
        for (Command c : new Command[] {
                Command.write(1, 0, 1, buf, 0),
                Command.of(0x08).nsid(1).slba(0).cdw(12, 0),                 // Write Zeroes
                Command.of(0x09).nsid(1).cdw(10, 0).cdw(11, 0x4).prp1(list), // DSM deallocate
                Command.of(0x04).nsid(1).slba(0).cdw(12, 0),                 // Write Uncorrectable
                Command.of(0x19).nsid(1).slba(8).cdw(12, 0).prp1(list)}) {   // Copy into it
            Completion done = q.execute(c);
            assertEquals(0x20, done.sc(), "Namespace Is Write Protected: " + done);
            assertTrue(GuestBytes.dnr(done), done.toString());
        }
        Completion format = driver.admin(Command.of(0x80).nsid(1));
        assertEquals(0x20, format.sc(), "Format NVM of a write-protected namespace: " + format);
        q.submit(Command.read(1, 0, 1, buf, 0));
        backend.complete(backend.awaitHeld(1).getFirst());
        assertTrue(q.awaitCompletions(1, Duration.ofSeconds(5)).getFirst().ok(), "reads work");
        assertTrue(backend.held().isEmpty(), "no write ever reached the backend");
    }

    @Test
    void resetWithOperationsInFlightPostsNothingAndCompletesOnceTheyHave() throws Exception {
        HostQueue q = start(64);
        long buf = host.allocatePages(1);
        for (int i = 0; i < 4; i++) {
            q.queue(Command.read(1, i, 1, buf, 0));
        }
        q.ringSq();
        List<HeldBackend.Op> ops = backend.awaitHeld(4);
        Thread resetter = Thread.ofPlatform().start(() -> controller.reset());
        resetter.join(200);
        assertTrue(resetter.isAlive(), "the reset waits: the backend may still write into guest memory");
        ops.forEach(backend::complete);
        resetter.join(5000);
        assertFalse(resetter.isAlive(), "the reset completes once every operation did");
        assertTrue(q.reap().isEmpty(), "no CQE after the stop");
    }

    @Test
    void deleteSqWithOperationsInFlightEndsTheWorkerOnlyAfterThem() throws Exception {
        HostQueue q = start(64);
        long buf = host.allocatePages(1);
        q.queue(Command.read(1, 0, 1, buf, 0));
        q.queue(Command.read(1, 1, 1, buf, 0));
        q.ringSq();
        List<HeldBackend.Op> ops = backend.awaitHeld(2);
        Thread deleter = Thread.ofPlatform().start(() -> driver.admin(Command.deleteSq(1)));
        deleter.join(200);
        assertTrue(deleter.isAlive(), "Delete I/O SQ waits for the operations in flight");
        ops.forEach(backend::complete);
        deleter.join(5000);
        assertFalse(deleter.isAlive());
        assertTrue(q.reap().isEmpty(), "the deleted queue's commands post no CQE");
    }

    @Test
    void theGuestMemoryUnmapBarrierWaitsForOperationsInFlight() throws Exception {
        HostQueue q = start(64);
        assertTrue(host.memory().awaitQuiescent(1_000_000_000L), "nothing in flight: quiescent at once");
        long buf = host.allocatePages(2);
        q.submit(Command.read(1, 0, 8, buf, 0));
        HeldBackend.Op first = backend.awaitHeld(1).getFirst();
        assertFalse(host.memory().awaitQuiescent(50_000_000L), "a read in flight may still write into guest memory");
        boolean[] quiescent = new boolean[1];
        Thread waiter = Thread.ofPlatform().start(() -> quiescent[0] = host.memory().awaitQuiescent(5_000_000_000L));
        waiter.join(100);
        assertTrue(waiter.isAlive(), "the host waits for the read");
        // An operation started after the barrier began (it mapped the memory table of that moment) holds nothing up.
        q.submit(Command.read(1, 8, 8, buf + 4096, 0));
        HeldBackend.Op second = backend.awaitHeld(2).get(1);
        backend.complete(first);
        waiter.join(5000);
        assertFalse(waiter.isAlive(), "the barrier ended with the read it was waiting for");
        assertTrue(quiescent[0]);
        assertEquals(1, backend.inFlight(), "while the later read is still in flight");
        backend.complete(second);
        assertEquals(2, q.awaitCompletions(2, Duration.ofSeconds(5)).stream().filter(Completion::ok).count());
    }

    @Test
    void statusLineShowsInFlightAndP99() {
        HostQueue q = start(64);
        long buf = host.allocatePages(1);
        q.queue(Command.read(1, 0, 1, buf, 0));
        q.queue(Command.read(1, 1, 1, buf, 0));
        q.ringSq();
        List<HeldBackend.Op> ops = backend.awaitHeld(2);
        backend.complete(ops.get(0));
        q.awaitCompletions(1, Duration.ofSeconds(5));
        Map<String, Long> s = controller.statistics();
        String line = new NvmePlugin().statusLine(Map.of(), s, Duration.ofSeconds(1));
        assertTrue(line.endsWith(", 1 in flight, p99 " + s.get("ns1.latency.p99-us") + " us"), line);
        assertEquals(0L, s.get(NvmeStatistics.IO_ENGINE_URING));
        assertTrue(controller.ioEngine().startsWith("threads (4 per I/O queue"), controller.ioEngine());
        backend.complete(ops.get(1));
        q.awaitCompletions(1, Duration.ofSeconds(5));
        assertEquals(0L, controller.statistics().get("ns1.inflight"));
    }
}
