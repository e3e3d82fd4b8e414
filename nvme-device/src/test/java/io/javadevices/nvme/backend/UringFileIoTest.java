package io.javadevices.nvme.backend;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** {@link UringFileIo} on real files through a real io_uring: data, durability, zeroing, errors, O_DIRECT. */
@Timeout(30)
class UringFileIoTest {
    private static final long SIZE = 8 << 20;
    private static final int TAGS = 64;

    private Path dir;
    private Path file;
    private byte[] content;
    private final Arena arena = Arena.ofShared();
    private UringEngine engine;
    private FileBackend backend;
    private int fd = -1;
    private final UringEngineTest.Sink sink = new UringEngineTest.Sink(TAGS);

    @BeforeEach
    void setUp() throws IOException {
        dir = UringTestFiles.directory();
        file = dir.resolve("disk.img");
        content = new byte[(int) SIZE];
        new Random(42).nextBytes(content);
        Files.write(file, content);
        backend = new FileBackend(file, SIZE);
        engine = UringEngine.open(TAGS, Thread.currentThread());
    }

    @AfterEach
    void tearDown() throws IOException {
        engine.close();
        if (fd >= 0) {
            UringTestFiles.close(fd);
        }
        backend.close();
        arena.close();
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    private UringFileIo io(boolean direct, int alignment, boolean blockDevice) {
        fd = UringTestFiles.open(file, direct);
        assertTrue(fd >= 0, "open: " + fd);
        return new UringFileIo(engine, fd, alignment, backend, blockDevice);
    }

    private UringFileIo io() {
        return io(false, 0, false);
    }

    /** Submits what is prepared and reaps until {@code n} completions arrived. */
    private void awaitCompletions(int n) {
        engine.submit();
        while (sink.count < n) {
            if (engine.reap(sink) == 0) {
                engine.await(TimeUnit.SECONDS.toNanos(5));
            }
        }
    }

    private int runOne(Runnable prepare) {
        sink.reset();
        prepare.run();
        awaitCompletions(1);
        for (int t = 0; t < TAGS; t++) {
            if (sink.seen[t]) {
                return sink.results[t];
            }
        }
        throw new AssertionError();
    }

    private static IoVector vector(MemorySegment... segments) {
        IoVector v = new IoVector(Math.max(4, segments.length));
        for (MemorySegment s : segments) {
            assertTrue(v.add(s));
        }
        return v;
    }

    private byte[] fileBytes(long offset, int length) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(length);
            while (b.hasRemaining() && ch.read(b, offset + b.position()) > 0) {
                // pread until full
            }
            return b.array();
        }
    }

    private static byte[] bytes(MemorySegment s) {
        return s.toArray(JAVA_BYTE);
    }

    private byte[] expected(long offset, int length) {
        return java.util.Arrays.copyOfRange(content, (int) offset, (int) offset + length);
    }

    @Test
    void manyOperationsInFlightCompleteWithTheRightData() throws IOException {
        UringFileIo io = io();
        Random random = new Random(7);
        MemorySegment[] buffers = new MemorySegment[TAGS];
        IoVector[] vectors = new IoVector[TAGS];
        long[] offsets = new long[TAGS];
        boolean[] writes = new boolean[TAGS];
        for (int t = 0; t < TAGS; t++) {
            buffers[t] = arena.allocate(64 * 1024, 4096);
            vectors[t] = new IoVector(4);
        }
        for (int round = 0; round < 20; round++) {
            sink.reset();
            for (int t = 0; t < TAGS; t++) {
                int length = 512 * (1 + random.nextInt(128));
                // Reads anywhere in the first half, writes each to its own slot of the second half.
                writes[t] = random.nextBoolean();
                offsets[t] = writes[t] ? SIZE / 2 + (long) t * 64 * 1024 : 512L * random.nextInt((int) (SIZE / 2 / 512) - 128);
                MemorySegment b = buffers[t].asSlice(0, length);
                vectors[t].clear();
                // Two pieces per operation: the iovec array has more than one entry.
                assertTrue(vectors[t].add(b.asSlice(0, length / 2)));
                assertTrue(vectors[t].add(b.asSlice(length / 2)));
                if (writes[t]) {
                    for (int i = 0; i < length; i++) {
                        content[(int) offsets[t] + i] = (byte) random.nextInt();
                    }
                    MemorySegment.copy(MemorySegment.ofArray(content), offsets[t], b, 0, length);
                    io.write(t, offsets[t], vectors[t], false);
                } else {
                    b.fill((byte) 0x5A);
                    io.read(t, offsets[t], vectors[t]);
                }
            }
            awaitCompletions(TAGS);
            for (int t = 0; t < TAGS; t++) {
                int length = (int) vectors[t].bytes();
                assertEquals(length, sink.results[t], "tag " + t);
                byte[] want = expected(offsets[t], length);
                byte[] got = writes[t] ? fileBytes(offsets[t], length) : bytes(buffers[t].asSlice(0, length));
                assertArrayEquals(want, got, (writes[t] ? "write" : "read") + " of tag " + t);
            }
        }
        assertEquals(0, io.synchronousOperations());
    }

    /**
     * Completion order is the storage's, not the submission's: tag 0 is a read of an eventfd nobody has written
     * yet (it stays in flight), and the file reads behind it complete first; tag 0 completes once written.
     */
    @Test
    void operationsCompleteOutOfOrderAndASlowOneHoldsUpNobody() throws IOException {
        UringFileIo io = io();
        int slow;
        try (Arena a = Arena.ofConfined()) {
            slow = UringSyscalls.eventfd(UringSyscalls.callState(a));
        }
        assertTrue(slow >= 0);
        try {
            MemorySegment counter = arena.allocate(8, 8);
            assertTrue(engine.prepare(null, 0, 0, UringRing.IORING_OP_READ, 0, slow, 0L, counter.address(), 8, 0));
            MemorySegment buffers = arena.allocate(8 * 4096L, 4096);
            for (int t = 1; t <= 8; t++) {
                io.read(t, t * 8192L, vector(buffers.asSlice((t - 1) * 4096L, 4096)));
            }
            awaitCompletions(8);
            assertFalse(sink.seen[0], "the eventfd read cannot have completed");
            for (int t = 1; t <= 8; t++) {
                assertEquals(4096, sink.results[t]);
                assertArrayEquals(expected(t * 8192L, 4096), bytes(buffers.asSlice((t - 1) * 4096L, 4096)));
            }
            MemorySegment seven = arena.allocate(8, 8);
            seven.set(java.lang.foreign.ValueLayout.JAVA_LONG, 0, 7L);
            assertEquals(8, UringSyscalls.write(slow, seven.address(), 8));
            awaitCompletions(9);
            assertEquals(8, sink.results[0]);
            assertEquals(7L, counter.get(java.lang.foreign.ValueLayout.JAVA_LONG, 0));
        } finally {
            UringTestFiles.close(slow);
        }
    }

    /**
     * 8 SQ slots (and so 16 CQ slots) for 64 operations: preparing submits each full SQ and goes on, and the
     * completions that do not fit the CQ before the first reap are kept by the kernel (NODROP) and flushed in.
     */
    @Test
    void aFullSubmissionQueueIsSubmittedAndAnOverflowingCompletionQueueLosesNothing() {
        engine.close();
        engine = UringEngine.open(TAGS, Thread.currentThread(), 8, 0);
        UringFileIo io = io();
        MemorySegment buffers = arena.allocate(TAGS * 4096L, 4096);
        for (int t = 0; t < TAGS; t++) {
            io.read(t, t * 4096L, vector(buffers.asSlice(t * 4096L, 4096)));
        }
        awaitCompletions(TAGS);
        for (int t = 0; t < TAGS; t++) {
            assertEquals(4096, sink.results[t]);
        }
        assertArrayEquals(expected(0, TAGS * 4096), bytes(buffers));
        assertEquals(0, engine.droppedCompletions());
        assertTrue(engine.overflowFlushes() > 0, "the CQ overflowed and was flushed");
    }

    @Test
    void durableWriteAndFlush() throws IOException {
        UringFileIo io = io();
        MemorySegment b = arena.allocate(8192, 4096).fill((byte) 0x33);
        assertEquals(8192, runOne(() -> io.write(3, 4096, vector(b), true)));
        assertEquals(1, backend.syncs(), "an RWF_DSYNC write is a sync point of its own, counted by the backend");
        assertEquals(1, SyncFaults.dsyncWrites(backend));
        assertEquals(0, runOne(() -> io.flush(4)));
        assertEquals(2, backend.syncs());
        assertEquals(1, SyncFaults.dsyncWrites(backend), "the flush is an fsync, not an RWF_DSYNC write");
        assertArrayEquals(bytes(b), fileBytes(4096, 8192));
    }

    @Test
    void aFailedSyncOfTheBackendFailsEveryLaterFlushAndDurableWrite() {
        UringFileIo io = io();
        SyncFaults.failNextSync(backend, new IOException("injected EIO"));
        assertThrows(IOException.class, backend::flush);
        MemorySegment b = arena.allocate(4096, 4096);
        assertEquals(-UringSyscalls.EIO, runOne(() -> io.flush(1)));
        assertEquals(-UringSyscalls.EIO, runOne(() -> io.write(2, 0, vector(b), true)));
        assertEquals(-UringSyscalls.EIO, runOne(() -> io.writeZeroes(2, 0, 4096, true)));
        assertEquals(4096, runOne(() -> io.write(2, 0, vector(b), false)), "a cached write does not sync");
        assertEquals(4, backend.syncErrors(), "the injected failure and the three refused after it");
    }

    /**
     * The fault-injection seam is consulted as the ring's operations complete: an injected failure fails the
     * ring's own fsync (a Flush) or RWF_DSYNC write, and sticks for the backend's synchronous path too.
     */
    @Test
    void anInjectedFailureFailsTheRingsOwnFsyncAndSticksForTheBackend() {
        UringFileIo io = io();
        SyncFaults.failNextSync(backend, new IOException("injected EIO"));
        assertEquals(-UringSyscalls.EIO, runOne(() -> io.flush(1)));
        assertEquals(0, io.synchronousOperations(), "the flush went through the ring, not the backend's fdatasync");
        assertTrue(backend.syncFailed());
        assertThrows(IOException.class, backend::flush, "sticky on the synchronous path");
        assertEquals(0, backend.syncs());
        assertEquals(2, backend.syncErrors());
    }

    @Test
    void anInjectedFailureFailsTheRingsRwfDsyncWrite() {
        UringFileIo io = io();
        MemorySegment b = arena.allocate(4096, 4096);
        SyncFaults.failNextSync(backend, new IOException("injected EIO"));
        assertEquals(-UringSyscalls.EIO, runOne(() -> io.write(1, 0, vector(b), true)));
        assertEquals(0, SyncFaults.dsyncWrites(backend));
        assertTrue(backend.syncFailed());
        assertEquals(-UringSyscalls.EIO, runOne(() -> io.write(2, 4096, vector(b), true)), "refused: sticky");
        assertEquals(4096, runOne(() -> io.write(3, 4096, vector(b), false)), "a cached write does not sync");
    }

    @Test
    void zeroRangeAndPunchHoleReadBackZeroes() throws Exception {
        UringFileIo io = io();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.force(false); // allocated and written back: st_blocks counts every block
        }
        long before = UringTestFiles.allocatedBlocks(file);
        assertEquals(0, runOne(() -> io.writeZeroes(1, 128 * 1024, 256 * 1024, false)));
        assertArrayEquals(new byte[256 * 1024], fileBytes(128 * 1024, 256 * 1024));
        assertArrayEquals(expected(0, 128 * 1024), fileBytes(0, 128 * 1024), "before the range untouched");
        assertArrayEquals(expected(384 * 1024, 4096), fileBytes(384 * 1024, 4096), "after the range untouched");

        assertEquals(0, runOne(() -> io.writeZeroes(1, 1 << 20, 4096, true)), "durable: fallocate then fsync");
        assertEquals(1, backend.syncs());
        assertArrayEquals(new byte[4096], fileBytes(1 << 20, 4096));

        assertEquals(0, runOne(() -> io.deallocate(2, 2 << 20, 1 << 20)));
        assertArrayEquals(new byte[1 << 20], fileBytes(2 << 20, 1 << 20));
        assertEquals(SIZE, Files.size(file), "KEEP_SIZE: a hole does not change the size");
        long after = UringTestFiles.allocatedBlocks(file);
        // The hole gives its 2048 sectors back, less what the file system may spend splitting the extent.
        assertTrue(before - after >= (1 << 20) / 512 * 3 / 4, "st_blocks " + before + " -> " + after);
        assertEquals(0, io.synchronousOperations());
    }

    @Test
    void blockDeviceZeroingAndDeallocateGoThroughTheBackend() throws IOException {
        UringFileIo io = io(false, 0, true);
        assertEquals(0, runOne(() -> io.writeZeroes(1, 0, 8192, true)));
        assertArrayEquals(new byte[8192], fileBytes(0, 8192));
        assertEquals(0, runOne(() -> io.deallocate(1, 8192, 8192)));
        assertEquals(2, io.synchronousOperations());
    }

    /**
     * The synchronous path never runs on the worker's thread (a shared polling thread): the operation is handed to
     * the engine's blocking thread with the batch's submit and completes through the engine.
     */
    @Test
    void theSynchronousPathRunsOnTheEnginesBlockingThread() throws IOException {
        UringFileIo io = io();
        MemorySegment heap = MemorySegment.ofArray(new byte[4096]);
        sink.reset();
        io.read(3, 0, vector(heap));
        // Only prepared: nothing ran on the caller's thread (the engine's submit, also done at the end of a reap,
        // hands it to the blocking thread).
        assertArrayEquals(new byte[4096], bytes(heap), "no data moved by the call itself");
        awaitCompletions(1);
        assertEquals(4096, sink.results[3]);
        assertArrayEquals(expected(0, 4096), bytes(heap));
        String blocking = Thread.currentThread().getName() + "-blocking-io0";
        assertTrue(Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().equals(blocking)),
                "the engine's thread for blocking calls: " + blocking);
        assertEquals(1, io.synchronousOperations());
    }

    @Test
    void heapMemoryTakesTheSynchronousPath() throws IOException {
        UringFileIo io = io();
        MemorySegment heap = MemorySegment.ofArray(new byte[8192]);
        assertEquals(8192, runOne(() -> io.read(5, 65536, vector(heap))));
        assertArrayEquals(expected(65536, 8192), bytes(heap));
        heap.fill((byte) 7);
        assertEquals(8192, runOne(() -> io.write(5, 0, vector(heap), true)));
        assertArrayEquals(bytes(heap), fileBytes(0, 8192));
        assertEquals(2, io.synchronousOperations());
        assertEquals(1, backend.syncs(), "the durable write of the synchronous fallback is the backend's writeDurable");
        assertEquals(0, SyncFaults.dsyncWrites(backend), "heap memory: plain writes through the bounce buffer, then fdatasync");
    }

    @Test
    void aShortReadIsResubmittedAndEndOfFileReadsZeroes() throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(SIZE - 6000); // the namespace now ends 6000 bytes past the file's end
        }
        UringFileIo io = io();
        MemorySegment a = arena.allocate(4096, 4096).fill((byte) 1), b = arena.allocate(8192, 4096).fill((byte) 1);
        long at = SIZE - 8192;
        assertEquals(12288, runOne(() -> io.read(6, at, vector(a, b))));
        byte[] want = new byte[12288];
        System.arraycopy(content, (int) at, want, 0, 8192 - 6000);
        byte[] got = new byte[12288];
        System.arraycopy(bytes(a), 0, got, 0, 4096);
        System.arraycopy(bytes(b), 0, got, 4096, 8192);
        assertArrayEquals(want, got);
    }

    @Test
    void memoryTheKernelCannotWriteGivesEfault() {
        UringFileIo io = io();
        MemorySegment readOnly = UringTestFiles.readOnlyPage();
        assertEquals(-UringSyscalls.EFAULT, runOne(() -> io.read(7, 0, vector(readOnly))));
        // The engine goes on as before.
        MemorySegment b = arena.allocate(4096, 4096);
        assertEquals(4096, runOne(() -> io.read(7, 0, vector(b))));
        assertArrayEquals(expected(0, 4096), bytes(b));
    }

    @Test
    void oDirectAlignedGoesToTheRingAndUnalignedIsBounced() throws IOException {
        int probe = UringTestFiles.open(file, true);
        assumeTrue(probe >= 0, "this file system refuses O_DIRECT: " + probe);
        UringTestFiles.close(probe);
        UringFileIo io = io(true, 4096, false);
        MemorySegment page = arena.allocate(16384, 4096);
        assertEquals(8192, runOne(() -> io.read(1, 8192, vector(page.asSlice(0, 8192)))));
        assertArrayEquals(expected(8192, 8192), bytes(page.asSlice(0, 8192)));
        assertEquals(0, io.synchronousOperations());

        MemorySegment unaligned = page.asSlice(512, 4096); // buffer address not 4096-aligned
        assertEquals(4096, runOne(() -> io.read(2, 4096, vector(unaligned))));
        assertArrayEquals(expected(4096, 4096), bytes(unaligned));
        assertEquals(1, io.synchronousOperations());
        unaligned.fill((byte) 9);
        assertEquals(4096, runOne(() -> io.write(2, 4096 + 512, vector(unaligned), false))); // offset unaligned too
        assertArrayEquals(bytes(unaligned), fileBytes(4096 + 512, 4096));
        assertEquals(2, io.synchronousOperations());

        MemorySegment aligned = page.asSlice(8192, 4096).fill((byte) 4);
        assertEquals(4096, runOne(() -> io.write(3, 12288, vector(aligned), true)));
        assertArrayEquals(bytes(aligned), fileBytes(12288, 4096));
        assertEquals(2, io.synchronousOperations());
    }

    /** Like AllocationProbeTest for the worker: a warmed-up submit + reap loop of reads allocates nothing. */
    @Test
    void submitAndReapAllocateNothingPerOperation() {
        UringFileIo io = io();
        int depth = 32;
        IoVector[] vectors = new IoVector[depth];
        MemorySegment buffers = arena.allocate(depth * 4096L, 4096);
        for (int t = 0; t < depth; t++) {
            vectors[t] = new IoVector(2);
            vectors[t].add(buffers.asSlice(t * 4096L, 4096));
        }
        Loop loop = new Loop(engine, io, vectors, (SIZE / 4096));
        loop.run(50_000); // warm up (JIT)
        var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long before = mx.getCurrentThreadAllocatedBytes();
        int n = loop.run(50_000);
        long perOperation = (mx.getCurrentThreadAllocatedBytes() - before) / n;
        System.out.println("[alloc] io_uring 4k reads at depth " + depth + ": " + perOperation + " bytes/operation");
        assertTrue(perOperation < 16, perOperation + " bytes per operation");
        assertEquals(0, loop.errors);
    }

    /** A depth-N random 4k read loop; its sink re-issues each completed tag (what a queue worker does). */
    static final class Loop implements IoEngine.Completions {
        private final UringEngine engine;
        private final AsyncIo io;
        private final IoVector[] vectors;
        private final long blocks;
        private long seed = 12345;
        private int remaining;
        private int inFlight;
        int completed;
        int errors;

        Loop(UringEngine engine, AsyncIo io, IoVector[] vectors, long blocks) {
            this.engine = engine;
            this.io = io;
            this.vectors = vectors;
            this.blocks = blocks;
        }

        private long nextOffset() {
            seed = seed * 6364136223846793005L + 1442695040888963407L;
            return ((seed >>> 17) % blocks) * 4096;
        }

        int run(int operations) {
            completed = 0;
            remaining = operations;
            for (int t = 0; t < vectors.length && remaining > 0; t++, remaining--) {
                io.read(t, nextOffset(), vectors[t]);
                inFlight++;
            }
            while (inFlight > 0) {
                engine.submit();
                if (engine.reap(this) == 0) {
                    engine.await(1_000_000_000L);
                }
            }
            return completed;
        }

        @Override
        public void completed(int tag, int result) {
            inFlight--;
            completed++;
            if (result != 4096) {
                errors++;
            }
            if (remaining > 0) {
                remaining--;
                io.read(tag, nextOffset(), vectors[tag]);
                inFlight++;
            }
        }
    }
}
