package io.javadevices.nvme.nbd;

import io.javadevices.nvme.backend.AsyncIo;
import io.javadevices.nvme.backend.IoEngine;
import io.javadevices.nvme.backend.IoVector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Several queue workers keep requests in flight on one NBD namespace while its server is killed and restarted:
 * every request completes exactly once (never twice, never lost), with its length or -ENOTCONN, and once the
 * server stays up every worker's requests succeed again on the same backend.
 */
class NbdReconnectStressTest {
    private static final int WORKERS = 4, DEPTH = 16, ENOTCONN = 107;
    @TempDir
    Path dir;
    private NbdTestServers servers;
    private NbdBackend backend;

    @AfterEach
    void stop() throws Exception {
        if (backend != null) {
            backend.close();
        }
        if (servers != null) {
            servers.close();
        }
    }

    @Test
    void everyRequestCompletesExactlyOnceAcrossServerRestarts() throws Exception {
        servers = new NbdTestServers(dir);
        Path socket = servers.nbdkit("s.sock", "--filter=delay", "memory", "16M", "rdelay=2ms", "wdelay=2ms");
        backend = NbdBackend.open(NbdTestServers.uri(socket, ""));
        AtomicBoolean run = new AtomicBoolean(true);
        ConcurrentLinkedQueue<String> anomalies = new ConcurrentLinkedQueue<>();
        List<Thread> workers = new ArrayList<>();
        int[][] outcomes = new int[WORKERS][2]; // successes, ENOTCONNs
        for (int w = 0; w < WORKERS; w++) {
            int id = w;
            workers.add(Thread.ofPlatform().name("stress-worker-" + w).start(
                    () -> work(id, run, anomalies, outcomes[id])));
        }
        Thread.sleep(300);
        for (int restart = 0; restart < 2; restart++) {
            servers.killAll();
            Thread.sleep(150);
            servers.nbdkit("s.sock", "--filter=delay", "memory", "16M", "rdelay=2ms", "wdelay=2ms");
            Thread.sleep(600); // the back-off is at most a few hundred ms here; the workers see it reconnect
        }
        run.set(false);
        for (Thread t : workers) {
            t.join(TimeUnit.SECONDS.toMillis(15));
            assertTrue(!t.isAlive(), t.getName() + " drained its requests");
        }
        assertTrue(anomalies.isEmpty(), anomalies.toString());
        for (int w = 0; w < WORKERS; w++) {
            assertTrue(outcomes[w][0] > 0, "worker " + w + " had successes");
            assertTrue(outcomes[w][1] > 0, "worker " + w + " saw the server go away");
        }
    }

    /** One worker: keeps DEPTH requests in flight; after the run, ends with a verified write and read. */
    private void work(int id, AtomicBoolean run, ConcurrentLinkedQueue<String> anomalies, int[] outcome) {
        InboxEngine engine = new InboxEngine(DEPTH);
        AsyncIo io = engine.open(backend);
        boolean[] inFlight = new boolean[DEPTH];
        int[] expected = new int[DEPTH];
        int[] count = {0};
        Random random = new Random(id);
        try (Arena arena = Arena.ofShared()) {
            IoVector[] vectors = new IoVector[DEPTH];
            for (int tag = 0; tag < DEPTH; tag++) {
                vectors[tag] = new IoVector(1);
                vectors[tag].add(arena.allocate(4096, 4096));
            }
            IoEngine.Completions sink = (tag, result) -> {
                if (!inFlight[tag]) {
                    anomalies.add("worker " + id + " tag " + tag + " completed while not in flight: " + result);
                }
                inFlight[tag] = false;
                count[0]--;
                if (result == expected[tag]) {
                    outcome[0]++;
                } else if (result == -ENOTCONN) {
                    outcome[1]++;
                } else {
                    anomalies.add("worker " + id + " tag " + tag + " result " + result);
                }
            };
            long region = id * (4L << 20);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (run.get() && System.nanoTime() < deadline) {
                for (int tag = 0; tag < DEPTH; tag++) {
                    if (!inFlight[tag]) {
                        inFlight[tag] = true;
                        count[0]++;
                        expected[tag] = 4096;
                        long offset = region + random.nextInt(1024) * 4096L;
                        if (random.nextBoolean()) {
                            io.read(tag, offset, vectors[tag]);
                        } else {
                            io.write(tag, offset, vectors[tag], random.nextInt(8) == 0);
                        }
                    }
                }
                engine.reap(sink);
                if (count[0] == DEPTH) {
                    engine.await(1_000_000);
                }
            }
            long drain = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (count[0] > 0 && System.nanoTime() < drain) {
                engine.reap(sink);
                engine.await(1_000_000);
            }
            if (count[0] > 0) {
                anomalies.add("worker " + id + ": " + count[0] + " requests never completed");
                return;
            }
            // The server is up to stay: a write and its read back succeed on this worker's path.
            MemorySegment buffer = vectors[0].segment(0);
            buffer.fill((byte) (id + 1));
            int result = once(io, engine, tag -> io.write(tag, region, vectors[0], true));
            buffer.fill((byte) 0);
            int back = once(io, engine, tag -> io.read(tag, region, vectors[0]));
            if (result != 4096 || back != 4096 || buffer.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 4095) != id + 1) {
                anomalies.add("worker " + id + " final round trip: " + result + ", " + back);
            }
        }
    }

    private interface Start {
        void start(int tag);
    }

    /** Runs one request on tag 0 until it is not -ENOTCONN (the reconnection may still be under way). */
    private static int once(AsyncIo io, InboxEngine engine, Start start) {
        int[] results = new int[DEPTH];
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        do {
            start.start(0);
            if (engine.awaitCompletions(1, TimeUnit.SECONDS.toNanos(5), results, null) != 1) {
                return Integer.MIN_VALUE;
            }
            if (results[0] == -ENOTCONN) {
                try {
                    Thread.sleep(20);
                } catch (InterruptedException e) {
                    return Integer.MIN_VALUE;
                }
            }
        } while (results[0] == -ENOTCONN && System.nanoTime() < end);
        return results[0];
    }
}
