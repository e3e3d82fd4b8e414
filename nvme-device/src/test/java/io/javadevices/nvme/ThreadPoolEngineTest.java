package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The thread-pool engine with a real file backend: commands of one queue run on the pool together, complete out
 * of order, and what was written reads back intact (a verify pass as fio's {@code verify=} does it).
 */
class ThreadPoolEngineTest {

    private static Fixture fixture(Path file, PooledBackend[] made, String threads) {
        return new Fixture(Map.of("queues", "1", "namespaces", "file:" + file + ":16M", "io-engine", "threads",
                "io-threads", threads), 64L << 20, spec -> made[0] = new PooledBackend(spec.open()));
    }

    @Test
    void aSlowReadCompletesAfterTheFastOnesBehindIt() throws IOException {
        Path dir = Files.createTempDirectory("pool");
        Path file = dir.resolve("ns.img");
        PooledBackend[] backend = new PooledBackend[1];
        try (Fixture f = fixture(file, backend, "4")) {
            f.driver.bringUp(1, 64, true);
            HostQueue q = f.driver.ioQueue(1);
            backend[0].delayReadsAt(0);
            long buf = f.host.allocatePages(4);
            int slow = q.submit(Command.read(1, 0, 8, buf, 0));
            int fast1 = q.submit(Command.read(1, 8, 8, buf + 4096, 0));
            int fast2 = q.submit(Command.read(1, 16, 8, buf + 8192, 0));
            List<Completion> first = q.awaitCompletions(2, Duration.ofSeconds(5));
            assertEquals(List.of(fast1, fast2), first.stream().map(Completion::cid).sorted().toList(),
                    "the reads behind the slow one complete first");
            backend[0].releaseSlowReads();
            Completion last = q.awaitCompletions(1, Duration.ofSeconds(5)).getFirst();
            assertEquals(slow, last.cid());
            assertTrue(last.ok(), last.toString());
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
    }

    /**
     * No lost wake-up between the worker, its pool and the doorbells: with the safety-net parks at 5 s, every
     * completion must arrive within 2 s, with shadow doorbells and without, at depth 1 (the worker waits in the
     * engine for each completion) and at depth 16 (doorbells ring while operations are in flight).
     */
    @Test
    void completionsAndDoorbellsWakeTheWorkerWithoutTheSafetyNet() {
        for (boolean dbbuf : new boolean[] {true, false}) {
            for (int qd : new int[] {1, 16}) {
                try (Fixture f = new Fixture(Map.of("queues", "1", "namespaces", "ram:16M", "io-engine", "threads",
                        "park-dbbuf-us", "5000000", "park-trapped-us", "5000000"), 64L << 20,
                        spec -> new PooledBackend(spec.open()))) {
                    f.driver.bringUp(1, 64, dbbuf);
                    HostQueue q = f.driver.ioQueue(1);
                    long buf = f.host.allocatePages(1);
                    int submitted = 0, completed = 0, total = 3000;
                    while (completed < total) {
                        while (submitted < total && q.inflight() < qd) {
                            q.submit(Command.read(1, submitted % 1000, 1, buf, 0));
                            submitted++;
                        }
                        List<Completion> done = q.awaitCompletions(1, Duration.ofSeconds(2));
                        assertFalse(done.isEmpty(), "dbbuf=" + dbbuf + " qd=" + qd + ": no completion within 2 s after "
                                + completed + " (a lost wake-up)");
                        done.forEach(c -> assertTrue(c.ok(), c.toString()));
                        completed += done.size();
                    }
                    assertEquals(total, f.stat("ns1.completed"), "every read went through the pool");
                }
            }
        }
    }

    /** Two SQs on one CQ, both completing through their pools: every CQE arrives once, none is lost. */
    @Test
    void twoQueuesSharingACompletionQueueLoseNoAsynchronousCompletion() {
        try (Fixture f = new Fixture(Map.of("queues", "2", "namespaces", "ram:16M", "io-engine", "threads"),
                64L << 20, spec -> new PooledBackend(spec.open()))) {
            f.driver.enable();
            f.driver.setNumberOfQueues(2);
            f.driver.enableMsix(3);
            long buf = f.host.allocatePages(1);
            for (int round = 0; round < 20; round++) {
                HostQueue owner = f.driver.createQueuePair(1, 64, 256, 1);
                HostQueue second = f.driver.createSharedSq(2, 64, owner);
                java.util.Set<Long> expected = new java.util.HashSet<>();
                for (int cid = 0; cid < 60; cid++) {
                    owner.queueWithCid(Command.read(1, cid, 1, buf, 0), cid);
                    second.queueWithCid(Command.write(1, 100 + cid, 1, buf, 0), 1000 + cid);
                    expected.add(1L << 32 | cid);
                    expected.add(2L << 32 | (1000 + cid));
                }
                owner.ringSq();
                second.ringSq();
                long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
                while (!expected.isEmpty() && System.nanoTime() < deadline) {
                    for (Completion c : owner.reap()) {
                        assertTrue(c.ok(), c.toString());
                        assertTrue(expected.remove((long) c.sqid() << 32 | c.cid()), "duplicate or stray " + c);
                    }
                }
                assertTrue(expected.isEmpty(), "round " + round + ": lost " + expected.size() + " completions");
                assertTrue(f.driver.admin(Command.deleteSq(2)).ok());
                assertTrue(f.driver.admin(Command.deleteSq(1)).ok());
                assertTrue(f.driver.admin(Command.deleteCq(1)).ok());
            }
            assertEquals(20 * 120, f.stat("ns1.completed"));
        }
    }

    /** RAM and null namespaces have no asynchronous path: their commands never reach an engine. */
    @Test
    void ramAndNullNamespacesStaySynchronous() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:16M,null:16M", "io-engine", "threads")) {
            f.driver.bringUp(1, 64, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            for (int nsid = 1; nsid <= 2; nsid++) {
                assertTrue(q.execute(Command.write(nsid, 0, 8, buf, 0)).ok());
                assertTrue(q.execute(Command.read(nsid, 0, 8, buf, 0)).ok());
                assertTrue(q.execute(Command.flush(nsid)).ok());
            }
            assertEquals(0, f.stat("ns1.completed"), "ram: executed on the worker");
            assertEquals(0, f.stat("ns2.completed"), "null: executed on the worker");
            assertEquals(6, f.stat(NvmeStatistics.IO_COMMANDS));
            assertEquals("", new NvmePlugin().statusLine(Map.of(), f.controller.statistics(), Duration.ofSeconds(1))
                    .replaceFirst("^stats: \\d+ IOPS, [0-9.]+ MMIO doorbells/IO, [0-9.]+ interrupts/IO", ""),
                    "no backend part in the status line without asynchronous namespaces");
        }
    }

    @Test
    void randomWritesAtDepth32ReadBackIntact() throws IOException {
        Path dir = Files.createTempDirectory("pool");
        Path file = dir.resolve("ns.img");
        PooledBackend[] backend = new PooledBackend[1];
        try (Fixture f = fixture(file, backend, "8")) {
            f.driver.bringUp(1, 64, true);
            HostQueue q = f.driver.ioQueue(1);
            int blocks = 256; // 4 KiB blocks of 8 LBAs: 1 MiB written, each block once, in random order
            long bufs = DeepWrites.writeAll(f, q, blocks);
            for (int b = 0; b < blocks; b++) {
                long buf = bufs + 4096L * (b % 32);
                assertTrue(q.execute(Command.read(1, 8L * b, 8, buf, 0)).ok());
                assertArrayEquals(GuestBytes.pattern(b, 4096), GuestBytes.get(f, buf, 4096), "block " + b);
            }
            assertTrue(q.execute(Command.flush(1)).ok());
            assertTrue(f.stat("ns1.inflight.max") > 1, "commands were in flight together: " + f.stat("ns1.inflight.max"));
            assertEquals(2L * blocks + 1, f.stat("ns1.completed"));
            assertEquals(blocks / 16, f.stat("ns1.writes.fua"));
            assertTrue(f.stat("ns1.syncs") >= blocks / 16 + 1, "FUA writes and the flush reached the file as syncs");
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
    }
}
