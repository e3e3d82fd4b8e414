package io.javadevices.nvme.nbd;

import io.javadevices.nvme.backend.AsyncIo;
import io.javadevices.nvme.backend.IoVector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Who sends ({@code NbdSender}): the submitting thread itself while the socket takes the bytes, the writer thread
 * only once it is full - and a session torn down while either is sending fails every request exactly once.
 * Against the in-process fake server, whose {@code STALL_READING} mode reads nothing until told (so the client's
 * socket buffer fills deterministically).
 */
class NbdSenderTest {
    private static final long SECONDS = TimeUnit.SECONDS.toNanos(1);
    @TempDir
    Path dir;
    private final Arena arena = Arena.ofShared();
    private FakeNbdServer server;
    private NbdBackend backend;

    @AfterEach
    void tearDown() throws Exception {
        if (backend != null) {
            backend.close();
        }
        if (server != null) {
            server.resume.countDown();
            server.close();
        }
        arena.close();
    }

    private NbdBackend open(FakeNbdServer.Mode mode) throws Exception {
        Path socket = dir.resolve("fake.sock");
        server = new FakeNbdServer(socket, mode);
        backend = new NbdBackend(NbdUri.parse(NbdTestServers.uri(socket, "")), NbdBackend.DEFAULT_TIMEOUT_NANOS);
        return backend;
    }

    private IoVector[] vectors(int n, long bytes) {
        IoVector[] vectors = new IoVector[n];
        for (int i = 0; i < n; i++) {
            vectors[i] = new IoVector(2);
            vectors[i].add(arena.allocate(bytes, 4096).fill((byte) 0x11));
        }
        return vectors;
    }

    @Test
    void aSubmitterAloneSendsItsRequestsItselfAndTheWriterIsNeverHandedAny() throws Exception {
        open(FakeNbdServer.Mode.GOOD);
        InboxEngine engine = new InboxEngine(8);
        AsyncIo io = engine.open(backend);
        IoVector[] vectors = vectors(8, 4096);
        int[] results = new int[8];
        for (int round = 0; round < 200; round++) {
            for (int tag = 0; tag < 8; tag++) {
                io.write(tag, tag * 4096L, vectors[tag], false);
            }
            assertEquals(8, engine.awaitCompletions(8, 5 * SECONDS, results, null), "round " + round);
            for (int tag = 0; tag < 8; tag++) {
                assertEquals(4096, results[tag], "write " + tag + " of round " + round);
            }
        }
        assertEquals(0, backend.connection().sendHandoffs(),
                "with room in the socket every request went out on the submitting thread");
    }

    @Test
    void aWorkersBatchLeavesOnlyWhenSubmittedAndInOneSend() throws Exception {
        open(FakeNbdServer.Mode.GOOD);
        InboxEngine engine = new InboxEngine(8);
        AsyncIo io = backend.openAsync(engine); // not through engine.open: this test plays the worker's submit itself
        IoVector[] vectors = vectors(8, 4096);
        int[] results = new int[8];
        for (int round = 0; round < 20; round++) {
            for (int tag = 0; tag < 8; tag++) {
                io.write(tag, tag * 4096L, vectors[tag], false);
            }
            Thread.sleep(round == 0 ? 100 : 2);
            assertEquals(0, engine.reap((tag, result) -> { }), "nothing was sent before the batch's submit");
            long before = backend.connection().sends();
            io.submit();
            assertEquals(1, backend.connection().sends() - before, "8 requests of 4 KiB in one sendmsg");
            assertEquals(8, engine.awaitCompletions(8, 5 * SECONDS, results, null), "round " + round);
            for (int tag = 0; tag < 8; tag++) {
                assertEquals(4096, results[tag], "write " + tag + " of round " + round);
            }
        }
    }

    @Test
    void aFullSocketPassesTheRestToTheWriterWhileTheSubmitterReturnsAtOnce() throws Exception {
        open(FakeNbdServer.Mode.STALL_READING);
        int n = 64;
        InboxEngine engine = new InboxEngine(n);
        AsyncIo io = engine.open(backend);
        IoVector[] vectors = vectors(n, 64 * 1024); // 4 MiB: far more than a socket buffer holds
        assertTimeoutPreemptively(Duration.ofSeconds(5), () -> {
            for (int tag = 0; tag < n; tag++) {
                io.write(tag, tag * 65536L % (FakeNbdServer.SIZE - 65536), vectors[tag], false);
            }
            io.submit();
        }, "a submitter never waits for the socket");
        assertTrue(backend.connection().sendHandoffs() >= 1, "the socket filled and the writer took over");
        int[] results = new int[n];
        assertEquals(0, engine.reap((tag, result) -> { }), "nothing can have completed: the server reads nothing");
        server.resume.countDown();
        assertEquals(n, engine.awaitCompletions(n, 5 * SECONDS, results, null), "the writer sent everything");
        for (int tag = 0; tag < n; tag++) {
            assertEquals(65536, results[tag], "write " + tag);
        }
    }

    @Test
    void droppingTheSessionWhileTheWriterWaitsForRoomFailsEveryRequestOnce() throws Exception {
        open(FakeNbdServer.Mode.STALL_READING);
        int n = 64;
        InboxEngine engine = new InboxEngine(n);
        AsyncIo io = engine.open(backend);
        IoVector[] vectors = vectors(n, 64 * 1024);
        for (int tag = 0; tag < n; tag++) {
            io.write(tag, 0, vectors[tag], false);
        }
        io.submit();
        assertTrue(backend.connection().sendHandoffs() >= 1, "the writer holds the rest");
        backend.connection().drop("test: dropped while the socket is full");
        int[] counts = new int[n];
        int[] results = new int[n];
        long end = System.nanoTime() + 5 * SECONDS;
        int done = 0;
        while (done < n && System.nanoTime() < end) {
            done += engine.reap((tag, result) -> {
                counts[tag]++;
                results[tag] = result;
            });
            engine.await(10_000_000);
        }
        assertEquals(n, done, "every request completed");
        for (int tag = 0; tag < n; tag++) {
            assertEquals(1, counts[tag], "write " + tag + " completed once");
            assertEquals(-NbdProtocol.ENOTCONN, results[tag], "write " + tag + " failed as not connected");
        }
    }

    @Test
    void sessionsDroppedWhileWorkersSendCompleteEveryRequestExactlyOnce() throws Exception {
        open(FakeNbdServer.Mode.GOOD);
        int workers = 3, depth = 16;
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        long[] succeeded = new long[workers];
        long[] failed = new long[workers];
        long stopAt = System.nanoTime() + 2 * SECONDS;
        for (int w = 0; w < workers; w++) {
            int worker = w;
            InboxEngine engine = new InboxEngine(depth);
            AsyncIo io = engine.open(backend);
            IoVector[] vectors = vectors(depth, 4096);
            threads.add(Thread.ofPlatform().name("test-worker-" + w).start(() -> {
                try {
                    int[] counts = new int[depth];
                    while (System.nanoTime() < stopAt) {
                        java.util.Arrays.fill(counts, 0);
                        for (int tag = 0; tag < depth; tag++) {
                            io.write(tag, tag * 4096L, vectors[tag], false);
                        }
                        long end = System.nanoTime() + 5 * SECONDS;
                        int done = 0;
                        while (done < depth && System.nanoTime() < end) {
                            done += engine.reap((tag, result) -> {
                                counts[tag]++;
                                if (result == 4096) {
                                    succeeded[worker]++;
                                } else if (result == -NbdProtocol.ENOTCONN) {
                                    failed[worker]++;
                                } else {
                                    throw new AssertionError("write " + tag + ": result " + result);
                                }
                            });
                            if (done < depth) {
                                engine.await(1_000_000);
                            }
                        }
                        assertEquals(depth, done, "a round of writes completed");
                        for (int tag = 0; tag < depth; tag++) {
                            assertEquals(1, counts[tag], "write " + tag + " completed exactly once");
                        }
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            }));
        }
        int drops = 0;
        while (System.nanoTime() < stopAt - SECONDS / 2 && drops < 3) {
            NbdConnection live = backend.connection();
            if (live != null) {
                Thread.sleep(50); // let the workers get going on this session
                live.drop("test: dropped under load");
                drops++;
            } else {
                Thread.sleep(5);
            }
        }
        for (Thread t : threads) {
            t.join(10_000);
            assertTrue(!t.isAlive(), t.getName() + " finished");
        }
        if (failure.get() != null) {
            throw new AssertionError(failure.get());
        }
        assertTrue(drops >= 1, "at least one session was dropped under load");
        long ok = 0, lost = 0;
        for (int w = 0; w < workers; w++) {
            ok += succeeded[w];
            lost += failed[w];
        }
        assertTrue(ok > 0, "writes succeeded between the drops");
        assertTrue(lost > 0 || drops == 0, "writes in flight at a drop failed as not connected");
    }
}
