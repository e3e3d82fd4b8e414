package io.javadevices.nvme.backend;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * FileBackend's per-I/O calls as a queue worker makes them (native guest memory): they allocate nothing once warm,
 * buffered or O_DIRECT, aligned or bounced; and a 4 KiB random write + read loop on a page-cached file, printed
 * for comparison across versions (no timing assert).
 */
class FileBackendHotPathTest {
    private static final int MIB = 1 << 20;
    private Path dir;

    @BeforeEach
    void setUp() throws IOException {
        Files.createDirectories(Path.of("target"));
        dir = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "filehot");
    }

    @AfterEach
    void tearDown() throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** Random 4 KiB-aligned writes then reads of {@code buffer}, {@code rounds} times; the last block read back. */
    private static void loop(BlockBackend file, MemorySegment out, MemorySegment in, int rounds, long seed) throws IOException {
        SplittableRandom random = new SplittableRandom(seed);
        long blocks = file.size() / 4096;
        for (int i = 0; i < rounds; i++) {
            out.set(ValueLayout.JAVA_INT, 0, i);
            long offset = random.nextLong(blocks) * 4096;
            file.write(offset, out);
            file.read(offset, in);
        }
    }

    @Test
    void theSynchronousCallsAllocateNothingOnceWarm() throws Exception {
        var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment base = arena.allocate(3 * 4096, 4096);
            for (boolean direct : new boolean[] {false, true}) {
                for (int misalignment : new int[] {0, 4}) {
                    MemorySegment out = base.asSlice(misalignment, 4096), in = base.asSlice(4096 + 2 * misalignment, 4096);
                    try (FileBackend file = new FileBackend(dir.resolve("alloc-" + direct + misalignment + ".img"), 16 * MIB, direct)) {
                        // O_DIRECT reaches the disk on every call: fewer of them (the buffered runs warmed the JIT).
                        int rounds = direct ? 1_000 : 5_000;
                        loop(file, out, in, 2 * rounds, 1); // warm up (JIT)
                        long perIo = Long.MAX_VALUE;
                        // The best of up to five rounds: a compilation still running on a loaded machine is not
                        // taken for an allocating path; an allocation per I/O shows in every round (>= 16 bytes).
                        for (int round = 0; round < 5 && perIo > 0; round++) {
                            long before = mx.getCurrentThreadAllocatedBytes();
                            loop(file, out, in, rounds, 2);
                            file.writeZeroes(0, 8192);
                            file.deallocate(8192, 8192);
                            file.flush();
                            perIo = Math.min(perIo, (mx.getCurrentThreadAllocatedBytes() - before) / (2 * rounds));
                        }
                        System.out.println("[alloc] file direct=" + direct + " +" + misalignment + ": " + perIo + " bytes/I/O");
                        assertTrue(perIo < 16, "direct=" + direct + " +" + misalignment + ": " + perIo + " bytes per I/O");
                        assertEquals(in.get(ValueLayout.JAVA_INT, 0), rounds - 1, "the last block read back is the last written");
                    }
                }
            }
        }
    }

    /**
     * Printed, not asserted on: timing depends on the machine. The same loop through a {@code FileChannel} with
     * the segment's ByteBuffer, which is what this backend did before it had a descriptor of its own, runs
     * alternately in the same JVM as the baseline; the medians of five rounds each are printed.
     */
    @Test
    void measureA4kRandomWriteReadLoopOnAPageCachedFile() throws Exception {
        Path image = dir.resolve("loop.img");
        int rounds = 20_000;
        double[] ours = new double[5], channel = new double[5];
        try (Arena arena = Arena.ofConfined();
             FileBackend file = new FileBackend(image, 64 * MIB);
             FileChannel fc = FileChannel.open(image, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            MemorySegment out = arena.allocate(4096, 4096), in = arena.allocate(4096, 4096);
            BlockBackend viaChannel = new ChannelLoop(fc, file.size());
            loop(file, out, in, 20_000, 3); // warm up both and populate the page cache
            loop(viaChannel, out, in, 20_000, 3);
            for (int r = 0; r < 5; r++) {
                ours[r] = pairsPerSecond(file, out, in, rounds, 10 + r);
                assertEquals(rounds - 1, in.get(ValueLayout.JAVA_INT, 0), "read after write sees it");
                channel[r] = pairsPerSecond(viaChannel, out, in, rounds, 20 + r);
            }
        }
        Arrays.sort(ours);
        Arrays.sort(channel);
        System.out.printf("[measure] 4k random write+read pairs, buffered, page-cached: FileBackend (FFM pread/pwrite)"
                + " %.0f k/s, FileChannel baseline %.0f k/s (medians of 5)%n", ours[2] / 1e3, channel[2] / 1e3);
    }

    private static double pairsPerSecond(BlockBackend backend, MemorySegment out, MemorySegment in, int rounds, long seed)
            throws IOException {
        long start = System.nanoTime();
        loop(backend, out, in, rounds, seed);
        return rounds / ((System.nanoTime() - start) / 1e9);
    }

    /** The former FileBackend's I/O: FileChannel positional transfer of a native segment's ByteBuffer. */
    private record ChannelLoop(FileChannel channel, long size) implements BlockBackend {
        @Override
        public void read(long offset, MemorySegment dst) throws IOException {
            ByteBuffer buffer = dst.asByteBuffer();
            while (buffer.hasRemaining()) {
                offset += channel.read(buffer, offset);
            }
        }

        @Override
        public void write(long offset, MemorySegment src) throws IOException {
            ByteBuffer buffer = src.asByteBuffer();
            while (buffer.hasRemaining()) {
                offset += channel.write(buffer, offset);
            }
        }

        @Override public void flush() { }
        @Override public void writeZeroes(long offset, long length) { }
        @Override public void deallocate(long offset, long length) { }
        @Override public boolean deallocatedReadsZero() { return false; }
        @Override public String describe() { return "channel"; }
        @Override public void close() { }
    }
}
