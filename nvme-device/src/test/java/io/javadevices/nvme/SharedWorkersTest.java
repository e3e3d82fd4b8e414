package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.pci.GuestMemoryException;
import io.javadevices.pci.PollingThreads;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * I/O queues of one or several controllers multiplexed on fewer pool threads than queues ({@link PollingThreads}
 * handed in as the host's {@code DeviceContext.workers()}), driven by the Linux-like driver. Every fixture here has
 * 5 s safety-net parks, so a lost wake-up shows as a command that misses its (short) deadline.
 */
@Timeout(60)
class SharedWorkersTest {
    /** Far below the 5 s safety net: a command late by that much lost its wake-up. */
    private static final Duration DEADLINE = Duration.ofSeconds(2);
    private static final int BLOCKS = 8; // 4 KiB per command

    private final List<AutoCloseable> closing = new ArrayList<>();

    @AfterEach
    void close() throws Exception {
        for (int i = closing.size() - 1; i >= 0; i--) {
            closing.get(i).close();
        }
    }

    private PollingThreads pool(int threads) {
        PollingThreads p = PollingThreads.create("shared", threads, null);
        closing.add(p);
        return p;
    }

    private Fixture fixture(PollingThreads pool, String... keyValues) {
        Fixture f = Fixture.onPool(pool, keyValues);
        closing.add(f);
        return f;
    }

    @Test
    void eightQueuesOnTwoThreadsKeepEachQueuesOrderAndData() throws Exception {
        PollingThreads pool = pool(2);
        Fixture f = fixture(pool, "queues", "8", "namespaces", "ram:64M");
        f.driver.bringUp(8, 32, true);
        assertArrayEquals(new int[] {4, 4}, pool.load(), "least loaded placement: four queues per thread");
        long mmioBefore = f.driver.mmioDoorbellWrites();
        try (ExecutorService hosts = Executors.newFixedThreadPool(8)) {
            List<Future<Integer>> done = new ArrayList<>();
            for (int qid = 1; qid <= 8; qid++) {
                HostQueue q = f.driver.ioQueue(qid);
                long buf = f.host.allocatePages(1), back = f.host.allocatePages(1);
                int base = qid * 1000;
                done.add(hosts.submit(() -> writeThenVerify(f, q, buf, back, base, 300)));
            }
            for (Future<Integer> d : done) {
                assertEquals(600, d.get(30, TimeUnit.SECONDS));
            }
        }
        assertEquals(8 * 300, f.stat(NvmeStatistics.IO_WRITES));
        assertEquals(8 * 300, f.stat(NvmeStatistics.IO_READS));
        assertTrue(f.stat(NvmeStatistics.DOORBELL_SHADOW_SQ) > 0, "tails came through the shadow slots");
        // Streaming at depth: the nap keeps EventIdx behind, so most submissions write only the shadow slot.
        long streamBefore = f.driver.mmioDoorbellWrites();
        int streamed = 0;
        for (int qid = 1; qid <= 8; qid++) {
            streamed += DbbufTest.runStreaming(f, f.driver.ioQueue(qid), f.host.allocatePages(1), 2_000, 16);
        }
        double perCommand = (double) (f.driver.mmioDoorbellWrites() - streamBefore) / streamed;
        assertTrue(perCommand < 0.5, "MMIO doorbells per command with DBBUF on a shared pool: " + perCommand);
        assertTrue(f.driver.mmioDoorbellWrites() > mmioBefore, "QD1 submissions after a re-arm ring MMIO");
    }

    /**
     * QD1 on one queue: write block {@code base + i} with a pattern naming it, then read every block back and
     * compare (fio's verify). Each CQE must carry this SQ's id and, the queue being driven one command at a time,
     * exactly the tail just rung as its SQ head. Returns the commands completed.
     */
    private static int writeThenVerify(Fixture f, HostQueue q, long buf, long back, int base, int count)
            throws GuestMemoryException {
        for (int i = 0; i < count; i++) {
            fillPattern(f, buf, base + i);
            Completion c = q.execute(Command.write(1, (long) (base + i) * BLOCKS, BLOCKS, buf, 0), DEADLINE);
            assertTrue(c.ok(), c.toString());
            assertEquals(q.qid, c.sqid());
            assertEquals(q.sqTail(), c.sqHead(), "SQ head of queue " + q.qid + " after command " + i);
        }
        for (int i = 0; i < count; i++) {
            f.host.memory().fill(back, 4096, (byte) 0);
            Completion c = q.execute(Command.read(1, (long) (base + i) * BLOCKS, BLOCKS, back, 0), DEADLINE);
            assertTrue(c.ok(), c.toString());
            assertEquals(q.sqTail(), c.sqHead());
            for (int w = 0; w < 4096; w += 8) {
                assertEquals(pattern(base + i, w), f.host.memory().readLong(back + w),
                        "queue " + q.qid + " block " + (base + i) + " word " + w);
            }
        }
        return 2 * count;
    }

    private static void fillPattern(Fixture f, long buf, int block) throws GuestMemoryException {
        for (int w = 0; w < 4096; w += 8) {
            f.host.memory().writeLong(buf + w, pattern(block, w));
        }
    }

    private static long pattern(int block, int word) {
        return (long) block << 32 | word | 0x5A00_0000L;
    }

    @Test
    void twoControllersOnOneThreadLoseNoWakeUp() throws Exception {
        PollingThreads pool = pool(1);
        Fixture a = fixture(pool, "queues", "2", "namespaces", "ram:16M");
        Fixture b = fixture(pool, "queues", "2", "namespaces", "ram:16M", "dbbuf", "off");
        a.driver.bringUp(2, 16, true);
        b.driver.bringUp(2, 16, false);
        assertEquals(a.controller.queueWorker(1).threadName(), b.controller.queueWorker(2).threadName());
        try (ExecutorService hosts = Executors.newFixedThreadPool(4)) {
            List<Future<Integer>> done = new ArrayList<>();
            for (Fixture f : List.of(a, b)) {
                for (int qid = 1; qid <= 2; qid++) {
                    HostQueue q = f.driver.ioQueue(qid);
                    long buf = f.host.allocatePages(1), back = f.host.allocatePages(1);
                    done.add(hosts.submit(() -> writeThenVerify(f, q, buf, back, q.qid * 1000, 1000)));
                }
            }
            for (Future<Integer> d : done) {
                assertEquals(2000, d.get(50, TimeUnit.SECONDS)); // each command within DEADLINE: no wake-up lost
            }
        }
        assertTrue(a.stat(NvmeStatistics.DOORBELL_SHADOW_SQ) > 0);
        assertEquals(0, b.stat(NvmeStatistics.DOORBELL_SHADOW_SQ));
    }

    @Test
    void aCqNeverConsumedDoesNotStallAnotherControllerOnTheSameThread() throws Exception {
        PollingThreads pool = pool(1);
        Fixture hostile = fixture(pool, "queues", "2", "namespaces", "ram:16M");
        Fixture healthy = fixture(pool, "queues", "1", "namespaces", "ram:16M");
        hostile.driver.enable();
        hostile.driver.setNumberOfQueues(2);
        hostile.driver.enableMsix(3);
        HostQueue full = hostile.driver.createQueuePair(1, 64, 4, 1); // 3 CQEs fit
        HostQueue garbage = hostile.driver.createQueuePair(2, 16, 16, 2);
        healthy.driver.bringUp(1, 32, true);
        long buf = hostile.host.allocatePages(1);
        for (int i = 0; i < 10; i++) {
            full.queueWithCid(Command.read(1, i, 1, buf, 0), i);
        }
        full.ringSq(); // ten commands, room for three completions, and the host never looks
        for (int i = 0; i < 15; i++) {
            Command junk = Command.of(0xC0 + i); // vendor opcodes this controller does not implement
            junk.cdw(10, 0xFFFF_FFFF).nsid(1);
            garbage.queueWithCid(junk, 100 + i);
        }
        garbage.ringSq();
        awaitStat(hostile, NvmeStatistics.IO_COMMANDS, 4 + 15); // 3 posted + 1 held, then nothing fetched

        HostQueue q = healthy.driver.ioQueue(1);
        long hb = healthy.host.allocatePages(1), back = healthy.host.allocatePages(1);
        assertEquals(400, writeThenVerify(healthy, q, hb, back, 0, 200),
                "the healthy controller keeps completing on the thread the hostile one shares");
        assertEquals(4 + 15, hostile.stat(NvmeStatistics.IO_COMMANDS), "the full queue fetched nothing more");
        List<Completion> junk = garbage.awaitCompletions(15, DEADLINE);
        assertEquals(15, junk.size());
        junk.forEach(c -> assertEquals(0x01, c.sc(), "Invalid Command Opcode: " + c));

        // The host finally consumes: every held and unfetched command completes, in fetch order, with its SQ head.
        List<Completion> all = new ArrayList<>();
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        while (all.size() < 10 && System.nanoTime() < deadline) {
            all.addAll(full.reap());
        }
        assertEquals(10, all.size(), all.toString());
        for (int i = 0; i < 10; i++) {
            assertEquals(i, all.get(i).cid());
            assertTrue(all.get(i).ok());
        }
        assertEquals(10, all.getLast().sqHead());
    }

    @Test
    void deleteSqAndResetOfOneControllerWhileAnotherStreamsOnTheSameThread() throws Exception {
        PollingThreads pool = pool(1);
        Fixture a = fixture(pool, "queues", "2", "namespaces", "ram:16M");
        Fixture b = fixture(pool, "queues", "1", "namespaces", "ram:16M");
        a.driver.bringUp(2, 16, true);
        b.driver.bringUp(1, 32, true);
        try (ExecutorService host = Executors.newSingleThreadExecutor()) {
            HostQueue q = b.driver.ioQueue(1);
            long buf = b.host.allocatePages(1), back = b.host.allocatePages(1);
            Future<Integer> streaming = host.submit(() -> writeThenVerify(b, q, buf, back, 0, 1500));
            long abuf = a.host.allocatePages(1);
            assertTrue(a.driver.ioQueue(2).execute(Command.read(1, 0, 1, abuf, 0), DEADLINE).ok());
            assertTrue(a.driver.admin(Command.deleteSq(2)).ok(), "Delete I/O SQ of a queue sharing the thread");
            assertTrue(a.driver.admin(Command.deleteCq(2)).ok());
            assertEquals(1, pool.load()[0] - 1, "queue 2 of a left the thread: a's queue 1 and b's queue 1 remain");
            // The slot still holds the old tail (1): a host reusing the qid clears it first, or the new queue
            // would take it for a submission (Linux never deletes one queue alone; its reset re-sends DBBUF).
            a.host.memory().writeLong(a.driver.shadowPage() + 8L * 2, 0L);
            HostQueue again = a.driver.createQueuePair(2, 16, 2);
            Completion c = again.execute(Command.read(1, 1, 1, abuf, 0), DEADLINE);
            assertTrue(c.ok(), c.toString());
            a.driver.disable(); // controller reset: every worker of a stops, b's goes on
            assertEquals(1, pool.load()[0]);
            assertEquals(3000, streaming.get(30, TimeUnit.SECONDS));
        }
    }

    @Test
    void busMasterClearedOnOneControllerLeavesItsQueueIdleAndTheOtherServed() throws Exception {
        PollingThreads pool = pool(1);
        Fixture off = fixture(pool, "queues", "1", "namespaces", "ram:16M");
        Fixture on = fixture(pool, "queues", "1", "namespaces", "ram:16M");
        off.driver.bringUp(1, 16, true);
        on.driver.bringUp(1, 16, true);
        HostQueue q = off.driver.ioQueue(1);
        long buf = off.host.allocatePages(1);
        off.host.configWrite(0x04, 2, 0x2); // Command register: memory decoding only, Bus Master Enable clear
        int cid = q.submit(Command.read(1, 0, 8, buf, 0));
        HostQueue other = on.driver.ioQueue(1);
        assertEquals(400, writeThenVerify(on, other, on.host.allocatePages(1), on.host.allocatePages(1), 0, 200),
                "the thread serves the other controller meanwhile");
        assertTrue(q.reap().isEmpty(), "no completion without Bus Master Enable");
        assertEquals(0, off.stat(NvmeStatistics.IO_READS), "the command was not even fetched");
        off.host.configWrite(0x04, 2, 0x6); // Bus Master Enable set: the controller kicks its workers
        List<Completion> done = q.awaitCompletions(1, DEADLINE); // the safety net is 5 s: only the kick is in time
        assertEquals(cid, done.getFirst().cid());
        assertTrue(done.getFirst().ok());
    }

    @Test
    void ringsOfTwoControllersOnOneThreadWakeItThroughItsEventfd() throws Exception {
        PollingThreads pool = pool(1);
        Path dir = Files.createTempDirectory(Files.createDirectories(Path.of("target").toAbsolutePath()), "shared");
        Fixture a = fixture(pool, "queues", "1", "namespaces", "file:" + dir.resolve("a.img") + ":8M?direct=on");
        Fixture b = fixture(pool, "queues", "1", "namespaces", "file:" + dir.resolve("b.img") + ":8M");
        Assumptions.assumeTrue(a.controller.ioEngine().startsWith("io_uring"), "needs io_uring");
        a.driver.bringUp(1, 32, true);
        b.driver.bringUp(1, 32, true);
        try (ExecutorService hosts = Executors.newFixedThreadPool(2)) {
            List<Future<Integer>> done = new ArrayList<>();
            for (Fixture f : List.of(a, b)) {
                HostQueue q = f.driver.ioQueue(1);
                long buf = f.host.allocatePages(1), back = f.host.allocatePages(1);
                done.add(hosts.submit(() -> writeThenVerify(f, q, buf, back, 0, 300)));
            }
            for (Future<Integer> d : done) {
                assertEquals(600, d.get(30, TimeUnit.SECONDS));
            }
        }
        for (Fixture f : List.of(a, b)) {
            assertEquals(600, f.stat("ns1.completed"), "every command went through the ring");
            assertTrue(f.controller.queueWorker(1).engine().signalsCompletions(),
                    "the ring signals the eventfd the shared thread sleeps on");
        }
    }

    private static void awaitStat(Fixture f, String key, long value) throws InterruptedException {
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        while (f.stat(key) < value && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        assertEquals(value, f.stat(key), key);
    }
}
