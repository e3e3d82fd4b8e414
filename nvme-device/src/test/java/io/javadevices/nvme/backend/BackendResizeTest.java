package io.javadevices.nvme.backend;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.*;

/** {@link BlockBackend#resize} of the backends that can: RAM (extents), null, regular files; and the ones that cannot. */
class BackendResizeTest {
    private static final long MIB = 1 << 20;

    @TempDir
    Path dir;

    private static MemorySegment filled(Arena arena, int length, int value) {
        MemorySegment s = arena.allocate(length);
        s.fill((byte) value);
        return s;
    }

    private static boolean all(MemorySegment s, int value) {
        for (long i = 0; i < s.byteSize(); i++) {
            if (s.get(ValueLayout.JAVA_BYTE, i) != (byte) value) {
                return false;
            }
        }
        return true;
    }

    @Test
    void ramGrowsPastItsMappingKeepsItsDataAndShrinkingDropsTheTail() {
        try (Arena arena = Arena.ofConfined(); RamBackend ram = new RamBackend(MIB + 4096)) {
            MemorySegment back = arena.allocate(8192);
            ram.write(MIB, filled(arena, 4096, 7)); // the partial last chunk
            ram.write(0, filled(arena, 4096, 3));
            assertNull(ram.notResizable());

            ram.resize(5 * MIB + 512); // past the 2 MiB mapped: a second extent
            assertEquals(5 * MIB + 512, ram.size());
            ram.read(MIB, back.asSlice(0, 4096));
            assertTrue(all(back.asSlice(0, 4096), 7), "kept across the grow");
            ram.read(MIB + 4096, back);
            assertTrue(all(back, 0), "the grown range reads zero");
            ram.write(2 * MIB - 4096, filled(arena, 8192, 9)); // straddles the two extents
            ram.read(2 * MIB - 4096, back);
            assertTrue(all(back, 9), "a transfer across the extents' boundary");
            int chunks = ram.allocatedChunks();
            assertEquals(3, chunks, "chunks 0 and 1 of the first extent, chunk 0 of the second");

            ram.resize(4096);
            assertEquals(4096, ram.size());
            assertEquals(1, ram.allocatedChunks(), "the whole chunks past the end are given back");
            ram.resize(3 * MIB);
            ram.read(MIB, back.asSlice(0, 4096));
            assertTrue(all(back.asSlice(0, 4096), 0), "what the shrink dropped reads zero when grown again");
            ram.read(2 * MIB - 4096, back);
            assertTrue(all(back, 0));
            ram.read(0, back.asSlice(0, 4096));
            assertTrue(all(back.asSlice(0, 4096), 3), "the kept range is intact");
        }
    }

    /** First writes race grows: every chunk table entry a writer sets is in the list every later reader sees. */
    @Test
    void firstWritesRacingGrowsAreNeverLost() throws Exception {
        try (RamBackend ram = new RamBackend(8 * MIB)) {
            AtomicBoolean failed = new AtomicBoolean();
            List<Thread> writers = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                int id = t;
                writers.add(Thread.ofPlatform().start(() -> {
                    try (Arena arena = Arena.ofConfined()) {
                        MemorySegment src = filled(arena, 512, id + 1);
                        for (int chunk = id; chunk < 8; chunk += 4) {
                            ram.write(chunk * MIB + 512L * id, src);
                        }
                    } catch (RuntimeException e) {
                        failed.set(true);
                    }
                }));
            }
            for (int grow = 9; grow <= 24; grow++) {
                ram.resize(grow * MIB);
            }
            for (Thread w : writers) {
                w.join();
            }
            assertFalse(failed.get());
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment back = arena.allocate(512);
                for (int chunk = 0; chunk < 8; chunk++) {
                    int id = chunk % 4;
                    ram.read(chunk * MIB + 512L * id, back);
                    assertTrue(all(back, id + 1), "chunk " + chunk);
                }
            }
            assertEquals(24 * MIB, ram.size());
        }
    }

    @Test
    void nullAndRegularFilesResizeOthersSayWhyNot() throws IOException {
        NullBackend nul = new NullBackend(MIB);
        assertNull(nul.notResizable());
        nul.resize(8 * MIB);
        assertEquals(8 * MIB, nul.size());

        Path image = dir.resolve("f.raw");
        try (FileBackend file = new FileBackend(image, MIB);
             Arena arena = Arena.ofConfined()) {
            assertNull(file.notResizable());
            file.write(MIB - 512, filled(arena, 512, 5));
            file.resize(4 * MIB);
            assertEquals(4 * MIB, Files.size(image));
            assertEquals(4 * MIB, file.size());
            MemorySegment back = arena.allocate(512);
            file.read(MIB - 512, back);
            assertTrue(all(back, 5));
            file.read(3 * MIB, back);
            assertTrue(all(back, 0), "a hole");
            file.resize(MIB / 2);
            assertEquals(MIB / 2, Files.size(image), "ftruncate shrinks the file");
        }

        try (FileBackend device = new FileBackend(Path.of("/dev/full"), MIB)) {
            assertTrue(device.notResizable().contains("not a regular file"), device.notResizable());
            assertThrows(IOException.class, () -> device.resize(2 * MIB));
            assertEquals(MIB, device.size(), "unchanged");
        }
        BlockBackend fixed = new BlockBackend() { // what a backend without resize support says
            @Override public long size() { return MIB; }
            @Override public void read(long offset, MemorySegment dst) { }
            @Override public void write(long offset, MemorySegment src) { }
            @Override public void flush() { }
            @Override public void writeZeroes(long offset, long length) { }
            @Override public void deallocate(long offset, long length) { }
            @Override public boolean deallocatedReadsZero() { return false; }
            @Override public String describe() { return "fixed:1M"; }
            @Override public void close() { }
        };
        assertTrue(fixed.notResizable().contains("fixed:1M"));
        IOException e = assertThrows(IOException.class, () -> fixed.resize(2 * MIB));
        assertEquals(fixed.notResizable(), e.getMessage());
    }
}
