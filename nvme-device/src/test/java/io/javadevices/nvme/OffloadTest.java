package io.javadevices.nvme;

import io.javadevices.nvme.backend.RamBackend;
import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.queue.OffloadLane;
import io.javadevices.pci.GuestMemoryException;
import io.javadevices.pci.PollingThreads;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

import static io.javadevices.nvme.GuestBytes.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Commands that call a backend's blocking methods (Flush of every namespace, Compare, Verify, Copy, Read with FUA)
 * run on their controller's offload thread, never on the polling thread its queues share with other controllers:
 * two controllers on ONE shared polling thread, controller A's namespace blocking on a latch ({@link LatchedBackend}),
 * controller B's reads and writes going on meanwhile; resets, floods and {@code io-engine=sync} queues.
 */
@Timeout(60)
class OffloadTest {
    private static final Duration DEADLINE = Duration.ofSeconds(5);
    private static final int CC = 0x14, CSTS = 0x1C, RDY = 1;

    private final List<AutoCloseable> closing = new ArrayList<>();
    private LatchedBackend latched;

    @AfterEach
    void close() throws Exception {
        if (latched != null) {
            latched.release();
        }
        for (int i = closing.size() - 1; i >= 0; i--) {
            closing.get(i).close();
        }
    }

    private PollingThreads pool() {
        PollingThreads p = PollingThreads.create("shared", 1, null);
        closing.add(p);
        return p;
    }

    /** Controller A: one namespace on a {@link LatchedBackend}, the thread-pool engine, I/O queues on {@code pool}. */
    private Fixture latchedController(PollingThreads pool) {
        Map<String, String> o = new HashMap<>(Map.of("queues", "1", "namespaces", "ram:16M", "io-engine", "threads",
                "park-dbbuf-us", "5000000", "park-trapped-us", "5000000"));
        Fixture f = new Fixture(o, 64L << 20, spec -> latched = new LatchedBackend(new RamBackend(spec.size())), pool);
        closing.add(f);
        return f;
    }

    private Fixture ramController(PollingThreads pool, String... keyValues) {
        Fixture f = Fixture.onPool(pool, keyValues);
        closing.add(f);
        return f;
    }

    static Command verify(int nsid, long slba, int blocks) {
        return Command.of(0x0C).nsid(nsid).slba(slba).cdw(12, blocks - 1);
    }

    static Command readFua(int nsid, long slba, int blocks, long prp1, long prp2) {
        return Command.read(nsid, slba, blocks, prp1, prp2).cdw(12, (blocks - 1) | 1 << 30);
    }

    /** Copy of one source range (format 0 entry at {@code list}) to {@code sdlba}. */
    private static Command copy(Fixture f, long list, long slba, int blocks, long sdlba) throws GuestMemoryException {
        f.host.memory().fill(list, 32, (byte) 0);
        f.host.memory().writeLong(list + 8, slba);
        f.host.memory().write(list + 16, new byte[] {(byte) (blocks - 1), (byte) ((blocks - 1) >>> 8)}, 0, 2);
        return Command.of(0x19).nsid(1).slba(sdlba).cdw(12, 0).prp1(list);
    }

    /** {@code count} 4 KiB writes then reads back at QD1 on {@code q}, each checked; returns the commands done. */
    private static int writeThenRead(Fixture f, HostQueue q, int base, int count) throws GuestMemoryException {
        long buf = f.host.allocatePages(1), back = f.host.allocatePages(1);
        for (int i = 0; i < count; i++) {
            byte[] data = pattern(base + i, 4096);
            put(f, buf, data);
            assertTrue(q.execute(Command.write(1, 8L * i, 8, buf, 0), DEADLINE).ok());
            f.host.memory().fill(back, 4096, (byte) 0);
            assertTrue(q.execute(Command.read(1, 8L * i, 8, back, 0), DEADLINE).ok());
            assertArrayEquals(data, get(f, back, 4096), "block " + i);
        }
        return 2 * count;
    }

    @Test
    void blockedCommandsOfOneControllerNeverStallAnotherOnTheSameThread() throws Exception {
        PollingThreads pool = pool();
        Fixture a = latchedController(pool);
        Fixture b = ramController(pool, "queues", "1", "namespaces", "ram:16M");
        a.driver.bringUp(1, 32, true);
        b.driver.bringUp(1, 32, true);
        String shared = a.controller.queueWorker(1).threadName();
        assertEquals(shared, b.controller.queueWorker(1).threadName(), "both controllers' queues on one thread");

        HostQueue qa = a.driver.ioQueue(1);
        long data = a.host.allocatePages(1), same = a.host.allocatePages(1), back = a.host.allocatePages(1);
        long list = a.host.allocatePages(1);
        byte[] bytes = pattern(7, 4096);
        put(a, data, bytes);
        put(a, same, bytes);
        assertTrue(qa.execute(Command.write(1, 0, 8, data, 0), DEADLINE).ok());

        latched.arm();
        qa.queueWithCid(Command.flush(0xFFFF_FFFF), 1);
        qa.queueWithCid(verify(1, 0, 8), 2);
        qa.queueWithCid(CompareTest.compare(1, 0, 8, same, 0), 3);
        qa.queueWithCid(readFua(1, 0, 8, back, 0), 4);
        qa.queueWithCid(copy(a, list, 0, 8, 100), 5);
        qa.ringSq();
        String blockedOn = latched.awaitEntered();
        assertNotEquals(shared, blockedOn, "the blocking call does not run on the shared polling thread");
        assertTrue(blockedOn.startsWith("nvme-offload"), blockedOn);

        HostQueue qb = b.driver.ioQueue(1);
        assertEquals(200, writeThenRead(b, qb, 1000, 100), "B's reads and writes complete while A's commands block");
        assertTrue(qa.reap().isEmpty(), "A's commands are still blocked");
        assertEquals(1, latched.blockedThreads.size(), "one controller's offloaded commands run one at a time");

        latched.release();
        List<Completion> done = qa.awaitCompletions(5, DEADLINE);
        int[] status = new int[6];
        Arrays.fill(status, -1);
        for (Completion c : done) {
            status[c.cid()] = c.sct() << 8 | c.sc();
        }
        assertArrayEquals(new int[] {-1, 0, 0, 0, 0, 0}, status, done.toString());
        assertArrayEquals(bytes, get(a, back, 4096), "Read with FUA returned the data");
        assertTrue(qa.execute(Command.read(1, 100, 8, back, 0), DEADLINE).ok());
        assertArrayEquals(bytes, get(a, back, 4096), "Copy wrote the destination");
        assertEquals(2, a.stat(NvmeStatistics.IO_READS), "the offloaded Read FUA is counted, with the plain read");
        assertEquals(1, a.stat(NvmeStatistics.IO_FLUSHES));

        put(a, same, pattern(8, 4096));
        Completion mismatch = qa.execute(CompareTest.compare(1, 0, 8, same, 0), DEADLINE);
        assertEquals(0x285, mismatch.sct() << 8 | mismatch.sc(), "an offloaded Compare reports Compare Failure");
        assertEquals(0x0B, qa.execute(verify(2, 0, 1), DEADLINE).sc(), "an invalid NSID is not offloaded");
        assertEquals(0x80, qa.execute(verify(1, (16L << 20) / 512, 1), DEADLINE).sc(),
                "LBA out of range, checked on the offload thread");
    }

    /** The offload thread runs every check of the command again: bad commands get their status there. */
    @Test
    void badOffloadedCommandsGetTheirStatus() throws Exception {
        PollingThreads pool = pool();
        Fixture a = latchedController(pool);
        a.driver.bringUp(1, 16, true);
        HostQueue q = a.driver.ioQueue(1);
        long list = a.host.allocatePages(1), outside = 1L << 40;
        long blocks = (16L << 20) / 512;
        assertEquals(0x04, q.execute(CompareTest.compare(1, 0, 8, outside, 0), DEADLINE).sc(),
                "Compare with a buffer outside guest memory: Data Transfer Error");
        assertEquals(0x04, q.execute(copy(a, list, 0, 8, 100).prp1(outside), DEADLINE).sc(),
                "Copy with its range list outside guest memory: Data Transfer Error");
        assertEquals(0x80, q.execute(copy(a, list, blocks - 4, 8, 100), DEADLINE).sc(), "Copy source out of range");
        assertEquals(0x80, q.execute(copy(a, list, 0, 8, blocks - 4), DEADLINE).sc(), "Copy destination out of range");
        assertEquals(0x02, q.execute(copy(a, list, 0, 8, 100).cdw(12, 1 << 8), DEADLINE).sc(),
                "Copy descriptor format 1: Invalid Field");
        assertEquals(0x80, q.execute(CompareTest.compare(1, blocks, 1, list, 0), DEADLINE).sc(),
                "Compare out of range");
        assertEquals(0x04, q.execute(readFua(1, 0, 8, outside, 0), DEADLINE).sc(),
                "Read FUA into memory outside the guest: Data Transfer Error (checked before the hand-over)");
        assertTrue(q.execute(verify(1, 0, 8), DEADLINE).ok(), "the queue goes on");
        assertEquals(7, a.stat(NvmeStatistics.IO_ERRORS), "each failed command counted once");
    }

    @Test
    void resetWaitsForTheOffloadedCommandWhichThenPostsAndWritesNothing() throws Exception {
        PollingThreads pool = pool();
        Fixture a = latchedController(pool);
        Fixture b = ramController(pool, "queues", "1", "namespaces", "ram:16M");
        a.driver.bringUp(1, 16, false);
        b.driver.bringUp(1, 16, true);
        HostQueue qa = a.driver.ioQueue(1);
        long pages = a.host.allocatePages(2);
        put(a, pages, pattern(3, 8192));
        assertTrue(qa.execute(Command.write(1, 0, 16, pages, pages + 4096), DEADLINE).ok());
        a.host.memory().fill(pages, 8192, (byte) 0xEE);
        byte[] cqBefore = get(a, qa.cqBase, 16 * 16);

        latched.arm();
        qa.submit(readFua(1, 0, 16, pages, pages + 4096));
        latched.awaitEntered(); // in the FUA sync, before any data moved
        int cc = a.driver.readReg32(CC);
        a.driver.writeReg32(CC, cc & ~1);
        assertEquals(RDY, a.driver.readReg32(CSTS) & RDY, "RDY stays 1 while the offloaded command can still DMA");
        assertEquals(200, writeThenRead(b, b.driver.ioQueue(1), 0, 100), "B goes on meanwhile");
        assertEquals(RDY, a.driver.readReg32(CSTS) & RDY);

        latched.release();
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        while ((a.driver.readReg32(CSTS) & RDY) != 0) {
            assertTrue(System.nanoTime() < deadline, "CSTS.RDY = 0 once the offloaded command returned");
            Thread.onSpinWait();
        }
        byte[] untouched = new byte[8192];
        Arrays.fill(untouched, (byte) 0xEE);
        assertArrayEquals(untouched, get(a, pages, 8192), "no data into guest memory after the stop");
        assertArrayEquals(cqBefore, get(a, qa.cqBase, 16 * 16), "no CQE for the command after the reset");

        a.driver.bringUp(1, 16, true);
        HostQueue again = a.driver.ioQueue(1);
        assertTrue(again.execute(readFua(1, 0, 16, pages, pages + 4096), DEADLINE).ok(), "offload works after reset");
        assertArrayEquals(pattern(3, 8192), get(a, pages, 8192));
    }

    @Test
    void aFloodOfFlushAllFillsOnlyItsOwnQueuesLaneAndTheOtherControllerKeepsItsThroughput() throws Exception {
        PollingThreads pool = pool();
        Fixture a = latchedController(pool);
        Fixture b = ramController(pool, "queues", "1", "namespaces", "ram:16M");
        a.driver.bringUp(1, 64, true);
        b.driver.bringUp(1, 64, true);
        HostQueue qa = a.driver.ioQueue(1);
        latched.arm();
        int flood = 40;
        for (int i = 0; i < flood; i++) {
            qa.queueWithCid(Command.flush(0xFFFF_FFFF), i);
        }
        qa.ringSq();
        latched.awaitEntered();
        awaitStat(a, NvmeStatistics.IO_COMMANDS, OffloadLane.CELLS);

        assertEquals(600, writeThenRead(b, b.driver.ioQueue(1), 0, 300), "B completes every command meanwhile");
        assertEquals(OffloadLane.CELLS, a.stat(NvmeStatistics.IO_COMMANDS),
                "A's queue fetched no more than its lane holds: backpressure on that SQ only");

        latched.release();
        List<Completion> done = qa.awaitCompletions(flood, DEADLINE);
        assertEquals(flood, done.size());
        done.forEach(c -> assertTrue(c.ok(), c.toString()));
        assertEquals(flood, a.stat(NvmeStatistics.IO_FLUSHES));
    }

    @Test
    void deleteSqWaitsForItsOffloadedCommand() throws Exception {
        PollingThreads pool = pool();
        Fixture a = latchedController(pool);
        a.driver.bringUp(1, 16, true);
        HostQueue qa = a.driver.ioQueue(1);
        latched.arm();
        qa.submit(verify(1, 0, 8));
        latched.awaitEntered();
        HostQueue admin = a.driver.adminQueue();
        int cid = admin.submit(Command.deleteSq(1));
        assertTrue(admin.pollFor(Duration.ofMillis(50)).isEmpty(), "Delete I/O SQ waits for the offloaded Verify");
        latched.release();
        List<Completion> got = admin.awaitCompletions(1, DEADLINE);
        assertEquals(cid, got.getFirst().cid());
        assertTrue(got.getFirst().ok(), got.toString());
        assertTrue(qa.reap().isEmpty(), "the deleted SQ's Verify posts nothing");
    }

    @Test
    void theGuestMemoryUnmapBarrierWaitsForAnOffloadedCommand() throws Exception {
        PollingThreads pool = pool();
        Fixture a = latchedController(pool);
        a.driver.bringUp(1, 16, true);
        HostQueue qa = a.driver.ioQueue(1);
        long buf = a.host.allocatePages(1);
        latched.arm();
        qa.submit(readFua(1, 0, 8, buf, 0));
        latched.awaitEntered();
        assertFalse(a.host.memory().awaitQuiescent(50_000_000L), "the offloaded read may still write guest memory");
        boolean[] quiescent = new boolean[1];
        Thread waiter = Thread.ofPlatform().start(() -> quiescent[0] = a.host.memory().awaitQuiescent(5_000_000_000L));
        latched.release();
        waiter.join(5000);
        assertTrue(quiescent[0], "quiescent once the offloaded command completed");
        assertTrue(qa.awaitCompletions(1, DEADLINE).getFirst().ok());
    }

    /** The offloaded Flush-all looked every namespace up: a removal meanwhile closes its backend only after it. */
    @Test
    void aNamespaceRemovalWaitsForTheOffloadedFlushOfEveryNamespace() throws Exception {
        PollingThreads pool = pool();
        ProbeBackend[] second = new ProbeBackend[1];
        Map<String, String> o = Map.of("queues", "1", "namespaces", "ram:8M,ram:4M", "io-engine", "threads");
        Fixture f = new Fixture(o, 64L << 20, spec -> spec.size() == 8L << 20
                ? latched = new LatchedBackend(new RamBackend(spec.size())) : (second[0] = new ProbeBackend(spec.open())),
                pool);
        closing.add(f);
        f.driver.bringUp(1, 16, false);
        HostQueue q = f.driver.ioQueue(1);
        latched.arm();
        q.submit(Command.flush(0xFFFF_FFFF));
        latched.awaitEntered(); // flushing namespace 1; namespace 2 is next
        AtomicReference<Object> result = new AtomicReference<>();
        Thread remover = Thread.ofPlatform().start(() -> {
            try {
                result.set(NamespaceControlTest.call(f, "namespace_remove", "nsid", 2L));
            } catch (Throwable t) {
                result.set(t);
            }
        });
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        while (f.controller.namespace(2) != null) {
            assertTrue(System.nanoTime() < deadline, "the namespace never left the table");
            Thread.onSpinWait();
        }
        assertFalse(second[0].closed, "not closed while the offloaded Flush-all may still use it");
        assertTrue(remover.isAlive());
        latched.release();
        Completion flush = q.awaitCompletions(1, DEADLINE).getFirst();
        assertTrue(flush.ok(), flush.toString());
        remover.join(10_000);
        assertEquals(Map.of("nsid", 2L, "flushed", true), result.get());
        assertTrue(second[0].closed);
        assertEquals(2, second[0].flushes.get(), "flushed by the Flush-all, then by the removal");
    }

    @Test
    void syncEngineQueuesRunOnThreadsOfTheirOwnNotOnTheSharedPool() throws Exception {
        PollingThreads pool = pool();
        Fixture sync = ramController(pool, "queues", "2", "namespaces", "ram:16M", "io-engine", "sync");
        Fixture threads = ramController(pool, "queues", "1", "namespaces", "ram:16M", "io-engine", "threads");
        sync.driver.bringUp(2, 16, true);
        threads.driver.bringUp(1, 16, true);
        assertArrayEquals(new int[] {1}, pool.load(), "only the engine's queue is on the shared pool");
        for (int qid = 1; qid <= 2; qid++) {
            String name = sync.controller.queueWorker(qid).threadName();
            assertFalse(name.startsWith("shared"), name);
            assertEquals(400, writeThenRead(sync, sync.driver.ioQueue(qid), qid * 1000, 200));
        }
        assertNotEquals(sync.controller.queueWorker(1).threadName(), sync.controller.queueWorker(2).threadName());
        assertTrue(threads.controller.queueWorker(1).threadName().startsWith("shared"));
        assertEquals(40, writeThenRead(threads, threads.driver.ioQueue(1), 0, 20));
    }

    private static void awaitStat(Fixture f, String key, long value) throws InterruptedException {
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        while (f.stat(key) < value && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        assertEquals(value, f.stat(key), key);
    }
}
