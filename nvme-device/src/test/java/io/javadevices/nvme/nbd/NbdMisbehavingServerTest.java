package io.javadevices.nvme.nbd;

import io.javadevices.nvme.backend.AsyncIo;
import io.javadevices.nvme.backend.IoVector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The NBD client against a scripted server that breaks the protocol: every breakage fails the request in flight
 * with -ENOTCONN (nothing thrown at the worker), nothing is written outside the request's buffer, and the backend
 * reconnects by itself and serves again.
 */
class NbdMisbehavingServerTest {
    private static final int ENOTCONN = 107;
    private static final long SECONDS = TimeUnit.SECONDS.toNanos(1);
    @TempDir
    Path dir;
    private FakeNbdServer server;
    private NbdBackend backend;
    private final Arena arena = Arena.ofShared();

    @AfterEach
    void stop() throws Exception {
        if (backend != null) {
            backend.close();
        }
        if (server != null) {
            server.close();
        }
        arena.close();
    }

    private AsyncIo connect(long timeoutNanos, FakeNbdServer.Mode... modes) throws Exception {
        Path socket = dir.resolve("fake.sock");
        server = new FakeNbdServer(socket, modes);
        backend = new NbdBackend(NbdUri.parse(NbdTestServers.uri(socket, "")), timeoutNanos);
        return engine.open(backend);
    }

    private final InboxEngine engine = new InboxEngine(4);

    /** A 4 KiB read buffer between two guard pages filled with 0x5A. */
    private MemorySegment guarded() {
        MemorySegment all = arena.allocate(3 * 4096, 4096);
        all.fill((byte) 0x5A);
        return all;
    }

    private static IoVector vector(MemorySegment segment) {
        IoVector v = new IoVector(4);
        v.add(segment);
        return v;
    }

    private int readOnce(AsyncIo io, MemorySegment buffer) {
        int[] results = new int[4];
        io.read(0, 0, vector(buffer));
        assertEquals(1, engine.awaitCompletions(1, 5 * SECONDS, results, null), "a completion, not a hang");
        return results[0];
    }

    private static void assertGuardsIntact(MemorySegment all) {
        for (long i = 0; i < 4096; i++) {
            assertEquals((byte) 0x5A, all.get(JAVA_BYTE, i), "guard before the buffer at " + i);
            assertEquals((byte) 0x5A, all.get(JAVA_BYTE, 8192 + i), "guard after the buffer at " + i);
        }
    }

    /** After the failure: the monitor reconnects (100 ms back-off) and the next read gets the server's data. */
    private void assertRecovers(AsyncIo io) throws InterruptedException {
        MemorySegment all = guarded();
        long end = System.nanoTime() + 10 * SECONDS;
        int result = -ENOTCONN;
        while (result == -ENOTCONN && System.nanoTime() < end) {
            result = readOnce(io, all.asSlice(4096, 4096));
            if (result == -ENOTCONN) {
                Thread.sleep(20);
            }
        }
        assertEquals(4096, result, "reads work again after the reconnection");
        assertEquals((byte) 0xAB, all.get(JAVA_BYTE, 4096));
        assertEquals((byte) 0xAB, all.get(JAVA_BYTE, 8191));
        assertGuardsIntact(all);
        assertTrue(server.connections() >= 2, "a new connection was made");
    }

    private void assertBreakageFailsAndRecovers(FakeNbdServer.Mode mode) throws Exception {
        AsyncIo io = connect(NbdBackend.DEFAULT_TIMEOUT_NANOS, mode, FakeNbdServer.Mode.GOOD);
        MemorySegment all = guarded();
        assertEquals(-ENOTCONN, readOnce(io, all.asSlice(4096, 4096)), mode + " fails the request");
        assertGuardsIntact(all);
        assertRecovers(io);
    }

    @Test
    void replyWithAnUnknownHandleDropsTheConnection() throws Exception {
        assertBreakageFailsAndRecovers(FakeNbdServer.Mode.WRONG_HANDLE);
    }

    @Test
    void replyWithAWrongMagicDropsTheConnection() throws Exception {
        assertBreakageFailsAndRecovers(FakeNbdServer.Mode.WRONG_MAGIC);
    }

    @Test
    void shortPayloadDropsTheConnection() throws Exception {
        assertBreakageFailsAndRecovers(FakeNbdServer.Mode.SHORT_PAYLOAD);
    }

    @Test
    void payloadLongerThanTheRequestNeverOverrunsTheBuffer() throws Exception {
        AsyncIo io = connect(NbdBackend.DEFAULT_TIMEOUT_NANOS, FakeNbdServer.Mode.OVERRUN, FakeNbdServer.Mode.GOOD);
        MemorySegment all = guarded();
        assertEquals(4096, readOnce(io, all.asSlice(4096, 4096)), "the reply itself was complete");
        assertGuardsIntact(all); // the 100 extra bytes were taken for the next reply header: a bad magic
        assertRecovers(io);
    }

    @Test
    void requestWithoutReplyTimesOutAndTheConnectionIsReplaced() throws Exception {
        AsyncIo io = connect(TimeUnit.MILLISECONDS.toNanos(300), FakeNbdServer.Mode.NEVER_REPLY,
                FakeNbdServer.Mode.GOOD);
        MemorySegment all = guarded();
        assertEquals(-ENOTCONN, readOnce(io, all.asSlice(4096, 4096)));
        assertGuardsIntact(all);
        assertRecovers(io);
    }

    @Test
    void serverWithoutOptGoIsReachedWithExportName() throws Exception {
        connect(NbdBackend.DEFAULT_TIMEOUT_NANOS, FakeNbdServer.Mode.GO_UNSUPPORTED);
        assertEquals(FakeNbdServer.SIZE, backend.size());
        MemorySegment buffer = arena.allocate(512);
        backend.read(512, buffer);
        assertEquals((byte) 0xAB, buffer.get(JAVA_BYTE, 511));
    }

    @Test
    void unknownExportIsRefusedWithItsName() throws Exception {
        Path socket = dir.resolve("fake.sock");
        server = new FakeNbdServer(socket, FakeNbdServer.Mode.UNKNOWN_EXPORT);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> NbdBackend.open(NbdTestServers.uri(socket, "x")));
        assertTrue(e.getMessage().contains("export 'x' not found on " + socket), e.getMessage());
    }

    /**
     * Found by NbdServerBytesFuzzTest: a session that ends on its own clears the backend's connection at the
     * start of its teardown, and close() used to wait only for the connection it still saw - none - so it
     * returned while the old reader was still completing requests into the worker's engine.
     */
    @Test
    void closeWaitsForASessionStillBeingTornDown() throws Exception {
        Path socket = dir.resolve("fake.sock");
        server = new FakeNbdServer(socket, FakeNbdServer.Mode.SHORT_PAYLOAD, FakeNbdServer.Mode.GOOD);
        backend = new NbdBackend(NbdUri.parse(NbdTestServers.uri(socket, "")), NbdBackend.DEFAULT_TIMEOUT_NANOS);
        java.util.concurrent.CountDownLatch completing = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.atomic.AtomicInteger completed = new java.util.concurrent.atomic.AtomicInteger();
        AsyncIo io = backend.openAsync(new SlowCompletions(completing, completed));
        MemorySegment all = guarded();
        io.read(0, 0, vector(all.asSlice(4096, 4096))); // half its payload, then EOF: the session ends
        io.submit();
        assertTrue(completing.await(5, TimeUnit.SECONDS), "the teardown began completing the read");
        assertTrue(!backend.connected(), "the session had left the backend before close()");
        backend.close();
        assertEquals(1, completed.get(), "close() returned only after the teardown completed the read");
        assertTrue(Thread.getAllStackTraces().keySet().stream().noneMatch(t -> t.getName().startsWith("nbd-")
                && t.getName().contains(dir.toString())), "no NBD thread of this backend left");
        backend = null;
    }

    /** An engine whose completions take a while (a worker busy elsewhere), counted once done. */
    private record SlowCompletions(java.util.concurrent.CountDownLatch completing,
                                   java.util.concurrent.atomic.AtomicInteger completed)
            implements io.javadevices.nvme.backend.IoEngine {
        @Override
        public void complete(int tag, int result) {
            completing.countDown();
            try {
                Thread.sleep(300);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            completed.incrementAndGet();
        }

        public String name() {
            return "slow";
        }

        public int capacity() {
            return 4;
        }

        public void submit() {
        }

        public int reap(Completions sink) {
            return 0;
        }

        public void await(long nanos) {
        }

        public void wake() {
        }

        public void close() {
        }
    }

    @Test
    void closeFailsRequestsInFlightAndStopsTheThreads() throws Exception {
        AsyncIo io = connect(NbdBackend.DEFAULT_TIMEOUT_NANOS, FakeNbdServer.Mode.NEVER_REPLY);
        MemorySegment all = guarded();
        io.read(0, 0, vector(all.asSlice(4096, 4096)));
        backend.close();
        int[] results = new int[4];
        assertEquals(1, engine.awaitCompletions(1, 5 * SECONDS, results, null));
        assertEquals(-ENOTCONN, results[0]);
        io.read(1, 0, vector(all.asSlice(4096, 4096)));
        assertEquals(1, engine.awaitCompletions(1, 5 * SECONDS, results, null), "a request after close fails at once");
        assertEquals(-ENOTCONN, results[1]);
        assertGuardsIntact(all);
        assertTrue(Thread.getAllStackTraces().keySet().stream().noneMatch(t -> t.getName().startsWith("nbd-")
                && t.getName().contains(dir.toString())), "no NBD thread of this backend left");
        backend = null;
    }
}
