package io.javadevices.pci;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.*;

class GuestMemoryTest {

    private static MemorySegment heap(int bytes) {
        return MemorySegment.ofArray(new long[bytes / 8]);
    }

    @Test
    void zeroFillSpansAdjacentRegionsAndLargerThanItsSourcePage() throws Exception {
        GuestMemory m = new GuestMemory();
        m.map(0x10000, heap(96 * 1024));
        m.map(0x10000 + 96 * 1024, heap(96 * 1024));
        byte[] ones = new byte[192 * 1024];
        java.util.Arrays.fill(ones, (byte) 0x7F);
        m.write(0x10000, ones, 0, ones.length);
        // 150 KiB of zeroes from 1 KiB in: crosses the region boundary and the 64 KiB zero page twice.
        m.fill(0x10000 + 1024, 150 * 1024, (byte) 0);
        byte[] back = new byte[ones.length];
        m.read(0x10000, back, 0, back.length);
        for (int i = 0; i < back.length; i++) {
            boolean zeroed = i >= 1024 && i < 1024 + 150 * 1024;
            assertEquals(zeroed ? 0 : 0x7F, back[i], "byte " + i);
        }
    }

    @Test
    void roundTripsBytesAndScalarsLittleEndian() throws Exception {
        GuestMemory m = GuestMemory.of(0x1000, heap(8192));
        byte[] data = {1, 2, 3, 4, 5, 6, 7, 8};
        m.write(0x1100, data, 0, 8);
        byte[] back = new byte[8];
        m.read(0x1100, back, 0, 8);
        assertArrayEquals(data, back);
        assertEquals(0x04030201, m.readInt(0x1100));
        assertEquals(0x0807060504030201L, m.readLong(0x1100));
        m.writeInt(0x1200, 0xCAFEBABE);
        assertEquals((byte) 0xBE, m.slice(0x1200, 4).get(ValueLayout.JAVA_BYTE, 0));
        m.writeLong(0x1208, -2);
        assertEquals(-2, m.readLong(0x1208));
        m.fill(0x1100, 8, (byte) 0x5A);
        assertEquals(0x5A5A5A5A, m.readInt(0x1104));
    }

    @Test
    void unmappedOutOfRangeAndOverflowingAccessesAreCheckedErrors() {
        GuestMemory m = GuestMemory.of(0x1000, heap(4096));
        byte[] buf = new byte[16];
        assertThrows(GuestMemoryException.class, () -> m.read(0, buf, 0, 16), "below the region");
        assertThrows(GuestMemoryException.class, () -> m.read(0x1FF8, buf, 0, 16), "crosses the end");
        assertThrows(GuestMemoryException.class, () -> m.write(0x2000, buf, 0, 1), "just past the end");
        assertThrows(GuestMemoryException.class, () -> m.readInt(-4), "top bit set = never mapped");
        assertThrows(GuestMemoryException.class, () -> m.read(Long.MAX_VALUE - 2, buf, 0, 16), "overflow");
        assertThrows(GuestMemoryException.class, () -> m.fill(0x1000, -1, (byte) 0));
        assertThrows(GuestMemoryException.class, () -> m.slice(0x1F00, 0x200));
        assertThrows(GuestMemoryException.class, () -> m.readLong(0xFFFF_FFFF_FFFF_FFF8L));
        assertThrows(IllegalArgumentException.class, () -> m.read(0x1000, buf, 8, 16), "local buffer too small");
        GuestMemoryException e = assertThrows(GuestMemoryException.class, () -> m.readInt(0x5000));
        assertEquals(0x5000, e.address());
        assertEquals(4, e.length());
    }

    @Test
    void failedWriteLeavesMemoryUntouched() throws Exception {
        // Two regions with a hole: a write that would run into the hole must not write its first part.
        GuestMemory m = new GuestMemory();
        m.map(0x0, heap(4096));
        m.map(0x2000, heap(4096));
        byte[] ones = new byte[64];
        java.util.Arrays.fill(ones, (byte) 1);
        assertThrows(GuestMemoryException.class, () -> m.write(0xFE0, ones, 0, 64));
        assertEquals(0, m.readLong(0xFE0));
        assertFalse(m.isMapped(0xFE0, 64));
    }

    @Test
    void copiesSpanAdjacentRegionsButSlicesDoNot() throws Exception {
        GuestMemory m = new GuestMemory();
        m.map(0x2000, heap(4096));
        m.map(0x1000, heap(4096));
        assertEquals(2, m.regions().size());
        assertEquals(0x1000, m.regions().get(0).address(), "regions are sorted");
        byte[] data = new byte[256];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) i;
        }
        m.write(0x1F80, data, 0, 256);
        byte[] back = new byte[256];
        m.read(0x1F80, back, 0, 256);
        assertArrayEquals(data, back);
        assertTrue(m.isMapped(0x1F80, 256));
        assertFalse(m.isContiguous(0x1F80, 256));
        assertTrue(m.isContiguous(0x1000, 4096));
        assertThrows(GuestMemoryException.class, () -> m.slice(0x1F80, 256));
    }

    @Test
    void regionTableRejectsOverlapsAndUnmapsExactly() {
        GuestMemory m = GuestMemory.of(0x10000, heap(0x10000));
        long g0 = m.generation();
        assertThrows(IllegalArgumentException.class, () -> m.map(0x1F000, heap(0x2000)));
        assertThrows(IllegalArgumentException.class, () -> m.map(0x8000, heap(0x10000)));
        assertThrows(IllegalArgumentException.class, () -> m.map(-4096, heap(4096)));
        assertNull(m.unmap(0x10000, 0x1000), "size must match exactly");
        assertEquals(g0, m.generation());
        assertNotNull(m.unmap(0x10000, 0x10000));
        assertTrue(m.generation() > g0);
        assertEquals(0, m.mappedBytes());
        assertThrows(GuestMemoryException.class, () -> m.readInt(0x10000));
    }

    @Test
    void atomicAccessesWorkOnHeapAndDirectMemoryAndRejectMisalignment() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            for (MemorySegment ram : new MemorySegment[] {heap(4096), arena.allocate(4096, 4096)}) {
                GuestMemory m = GuestMemory.of(0, ram);
                m.storeIntRelease(0x10, 0x12345678);
                assertEquals(0x12345678, m.loadIntAcquire(0x10));
                assertEquals(0x78, ram.get(ValueLayout.JAVA_BYTE, 0x10), "stored little-endian");
                GuestMemory.fullFence();
                assertThrows(GuestMemoryException.class, () -> m.loadIntAcquire(0x11));
                assertThrows(GuestMemoryException.class, () -> m.storeIntRelease(0x1000, 1));
                MemorySegment page = m.slice(0, 4096);
                GuestMemory.storeIntRelease(page, 0x20, 7);
                assertEquals(7, GuestMemory.loadIntAcquire(page, 0x20));
                assertEquals(7, m.readInt(0x20));
            }
        }
    }

    @Test
    void rangesBeyondTwoGigabytes(@TempDir Path dir) throws IOException, GuestMemoryException {
        long size = 6L << 30; // sparse file: costs no memory
        try (FileChannel ch = FileChannel.open(dir.resolve("ram"), StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE, StandardOpenOption.SPARSE); Arena arena = Arena.ofShared()) {
            ch.truncate(size);
            MemorySegment ram = ch.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
            GuestMemory m = GuestMemory.of(1L << 32, ram);
            long high = (1L << 32) + (5L << 30) + 12;
            m.writeLong(high, 0x1122334455667788L);
            assertEquals(0x1122334455667788L, m.readLong(high));
            long across = (1L << 32) + (2L << 30) - 100; // a copy that crosses the 2 GiB offset
            byte[] data = new byte[200];
            java.util.Arrays.fill(data, (byte) 9);
            m.write(across, data, 0, 200);
            assertEquals(0x0909090909090909L, m.readLong((1L << 32) + (2L << 30)));
            assertTrue(m.isContiguous(1L << 32, size));
            assertEquals(size, m.slice(1L << 32, size).byteSize());
            assertThrows(GuestMemoryException.class, () -> m.readInt((1L << 32) + size));
        }
    }

    @Test
    void unmapWhileADeviceThreadCopiesGivesCheckedErrors() throws Exception {
        Arena arena = Arena.ofShared();
        GuestMemory m = GuestMemory.of(0, arena.allocate(1 << 20, 4096));
        AtomicBoolean sawError = new AtomicBoolean();
        AtomicReference<Throwable> unexpected = new AtomicReference<>();
        Thread device = Thread.ofPlatform().start(() -> {
            byte[] buf = new byte[1 << 16];
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (!sawError.get() && System.nanoTime() < deadline) {
                try {
                    m.read(0x1000, buf, 0, buf.length);
                    m.write(0x20000, buf, 0, buf.length);
                } catch (GuestMemoryException e) {
                    sawError.set(true);
                } catch (Throwable t) {
                    unexpected.set(t);
                    return;
                }
            }
        });
        Thread.sleep(20);
        GuestMemory.Region removed = m.unmap(0, 1 << 20);
        assertNotNull(removed);
        arena.close(); // munmap equivalent; concurrent accesses must fail cleanly
        device.join(10_000);
        assertNull(unexpected.get());
        assertTrue(sawError.get(), "the device thread saw a GuestMemoryException");
    }
    /**
     * A client that shrinks its guest-RAM file after mapping it: touching the pages past the new end
     * raises SIGBUS, which HotSpot turns into an InternalError; every access path reports it as a
     * GuestMemoryException (the device's DMA error), never as an Error.
     */
    @Test
    void accessesToATruncatedFileAreGuestMemoryErrors(@TempDir Path dir) throws Exception {
        try (FileChannel ch = FileChannel.open(dir.resolve("ram"), StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE); Arena arena = Arena.ofShared()) {
            ch.truncate(0);
            ch.write(java.nio.ByteBuffer.allocate(64 * 1024), 0);
            GuestMemory m = GuestMemory.of(0x10_0000, ch.map(FileChannel.MapMode.READ_WRITE, 0, 64 * 1024, arena));
            m.writeLong(0x10_8000, 42);
            ch.truncate(4096); // the client's ftruncate: pages 1.. are gone
            long gone = 0x10_8000;
            byte[] buf = new byte[512];
            assertEquals(0, m.readInt(0x10_0000), "the page still inside the file works");
            assertAll(
                    () -> assertThrows(GuestMemoryException.class, () -> m.read(gone, buf, 0, buf.length)),
                    () -> assertThrows(GuestMemoryException.class, () -> m.write(gone, buf, 0, buf.length)),
                    () -> assertThrows(GuestMemoryException.class, () -> m.fill(gone, 512, (byte) 0)),
                    () -> assertThrows(GuestMemoryException.class, () -> m.fill(gone, 512, (byte) 1)),
                    () -> assertThrows(GuestMemoryException.class, () -> m.readInt(gone)),
                    () -> assertThrows(GuestMemoryException.class, () -> m.readLong(gone)),
                    () -> assertThrows(GuestMemoryException.class, () -> m.writeInt(gone, 1)),
                    () -> assertThrows(GuestMemoryException.class, () -> m.writeLong(gone, 1)),
                    () -> assertThrows(GuestMemoryException.class, () -> m.loadIntAcquire(gone)),
                    () -> assertThrows(GuestMemoryException.class, () -> m.storeIntRelease(gone, 1)));
        }
    }

    @Test
    void awaitQuiescentAsksEveryRegisteredPartWithTheTimeLeft() {
        GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[4096]));
        assertTrue(memory.awaitQuiescent(0), "nothing asynchronous registered: quiescent at once");
        java.util.List<Long> asked = new java.util.ArrayList<>();
        GuestMemory.DmaQuiescer quiet = timeout -> asked.add(timeout);
        boolean[] busy = {true};
        GuestMemory.DmaQuiescer inFlight = timeout -> !busy[0];
        memory.addQuiescer(quiet);
        memory.addQuiescer(inFlight);
        assertFalse(memory.awaitQuiescent(1_000_000_000L), "one part still has DMA in flight");
        assertEquals(1, asked.size());
        assertTrue(asked.get(0) > 0 && asked.get(0) <= 1_000_000_000L);
        busy[0] = false;
        assertTrue(memory.awaitQuiescent(1_000_000_000L));
        memory.removeQuiescer(inFlight);
        busy[0] = true;
        assertTrue(memory.awaitQuiescent(0), "a removed part is not asked");
    }
}
