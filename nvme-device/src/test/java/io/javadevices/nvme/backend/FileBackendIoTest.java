package io.javadevices.nvme.backend;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * FileBackend's I/O on real files on the disk's file system (a directory under {@code target/}, not a possibly
 * tmpfs {@code /tmp}): O_DIRECT with aligned, unaligned and heap buffers, hole punching, zero ranges, the
 * EOPNOTSUPP fallbacks, the durable (RWF_DSYNC) write and the lock with O_DIRECT.
 */
class FileBackendIoTest {
    private static final int MIB = 1 << 20;
    private Path dir;
    private Arena arena;

    @BeforeEach
    void setUp() throws IOException {
        Files.createDirectories(Path.of("target"));
        dir = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "filebackend");
        arena = Arena.ofConfined();
    }

    @AfterEach
    void tearDown() throws IOException {
        arena.close();
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    static byte[] random(long seed, int length) {
        byte[] data = new byte[length];
        new Random(seed).nextBytes(data);
        return data;
    }

    /** {@code length} bytes of native memory at an address {@code misalignment} bytes past a 64 KiB boundary. */
    private MemorySegment nativeAt(int misalignment, int length) {
        return arena.allocate(length + misalignment, 64 << 10).asSlice(misalignment, length);
    }

    private static byte[] bytes(MemorySegment segment) {
        return segment.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
    }

    /** The open flags of our descriptor {@code fd} ({@code /proc/self/fdinfo}, octal). */
    static int openFlags(int fd) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo/" + fd))) {
            if (line.startsWith("flags:")) {
                return Integer.parseInt(line.substring(6).trim(), 8);
            }
        }
        throw new AssertionError("no flags in fdinfo of " + fd);
    }

    static long allocatedBlocks(Path file) throws IOException, InterruptedException {
        Process stat = new ProcessBuilder("stat", "-c", "%b", file.toString()).redirectErrorStream(true).start();
        String out = new String(stat.getInputStream().readAllBytes()).trim();
        assertEquals(0, stat.waitFor(), out);
        return Long.parseLong(out);
    }

    @Test
    void directIoWithAlignedUnalignedAndHeapBuffersMatchesWhatABufferedReadSees() throws Exception {
        Path image = dir.resolve("direct.img");
        byte[] expected = new byte[8 * MIB];
        try (FileBackend direct = new FileBackend(image, 8 * MIB, true)) {
            int alignment = direct.directAlignment();
            assertTrue(alignment >= 512 && Integer.bitCount(alignment) == 1, "alignment " + alignment);
            assertNotEquals(0, openFlags(direct.fd()) & Posix.O_DIRECT, "the I/O descriptor really is O_DIRECT");
            assertFalse(direct.blockDevice());
            assertTrue(direct.describe().endsWith("?direct=on"), direct.describe());
            // Aligned native memory: straight through. 300 KiB at 1 MiB.
            MemorySegment aligned = nativeAt(0, 300 << 10);
            aligned.copyFrom(MemorySegment.ofArray(random(1, 300 << 10)));
            direct.write(MIB, aligned);
            System.arraycopy(bytes(aligned), 0, expected, MIB, 300 << 10);
            // An address 4 bytes past alignment (a PRP entry may be dword aligned): bounced; larger than the bounce.
            MemorySegment unaligned = nativeAt(4, 3 * MIB / 2);
            unaligned.copyFrom(MemorySegment.ofArray(random(2, 3 * MIB / 2)));
            direct.write(2 * MIB, unaligned);
            System.arraycopy(bytes(unaligned), 0, expected, 2 * MIB, 3 * MIB / 2);
            // Heap memory (a test host's guest RAM): bounced.
            byte[] heap = random(3, 8192);
            direct.write(6 * MIB, MemorySegment.ofArray(heap));
            System.arraycopy(heap, 0, expected, 6 * MIB, 8192);
            // A file range that O_DIRECT cannot take (not a multiple of the alignment): the buffered descriptor.
            byte[] odd = random(4, 1000);
            direct.write(7 * MIB + 100, MemorySegment.ofArray(odd));
            System.arraycopy(odd, 0, expected, 7 * MIB + 100, 1000);
            // One more, overlapping what O_DIRECT wrote, so the two descriptors must agree on that block.
            MemorySegment after = nativeAt(0, alignment);
            after.copyFrom(MemorySegment.ofArray(random(5, alignment)));
            direct.write(7 * MIB, after);
            System.arraycopy(bytes(after), 0, expected, 7 * MIB, alignment);
            direct.flush();

            assertArrayEquals(expected, Files.readAllBytes(image), "a buffered reader sees what was written");
            for (int misalignment : new int[] {0, 4, 512, 2048}) {
                MemorySegment back = nativeAt(misalignment, 4 * MIB);
                direct.read(2 * MIB, back);
                assertArrayEquals(Arrays.copyOfRange(expected, 2 * MIB, 6 * MIB), bytes(back), "read at +" + misalignment);
            }
            byte[] heapBack = new byte[2 * MIB];
            direct.read(6 * MIB, MemorySegment.ofArray(heapBack));
            assertArrayEquals(Arrays.copyOfRange(expected, 6 * MIB, 8 * MIB), heapBack);
            byte[] oddBack = new byte[1000];
            direct.read(7 * MIB + 100, MemorySegment.ofArray(oddBack));
            assertArrayEquals(Arrays.copyOfRange(expected, 7 * MIB + 100, 7 * MIB + 1100), oddBack);
        }
    }

    @Test
    void aBufferedBackendHasNoDirectAlignment() throws Exception {
        try (FileBackend buffered = new FileBackend(dir.resolve("b.img"), MIB)) {
            assertEquals(0, buffered.directAlignment());
            assertEquals(0, openFlags(buffered.fd()) & Posix.O_DIRECT);
            assertNotEquals(0, openFlags(buffered.fd()) & Posix.O_CLOEXEC);
        }
    }

    @Test
    void punchHoleFreesTheBlocksAndReadsZeroKeepingTheSize() throws Exception {
        Path image = dir.resolve("punch.img");
        Files.write(image, random(6, 4 * MIB));
        try (FileBackend file = new FileBackend(image, 0)) {
            assertTrue(file.deallocatedReadsZero(), "ext4 here (and XFS, btrfs, tmpfs) punches holes");
            file.flush();
            long before = allocatedBlocks(image);
            file.deallocate(MIB, 2 * MIB);
            long after = allocatedBlocks(image);
            assertTrue(after <= before - 2 * MIB / 512, "2 MiB of blocks given back: " + before + " -> " + after);
            byte[] back = new byte[4 * MIB];
            file.read(0, MemorySegment.ofArray(back));
            byte[] expected = random(6, 4 * MIB);
            Arrays.fill(expected, MIB, 3 * MIB, (byte) 0);
            assertArrayEquals(expected, back);
            assertEquals(4 * MIB, Files.size(image), "FALLOC_FL_KEEP_SIZE");
        }
    }

    @Test
    void zeroRangeReadsBackZeroes() throws Exception {
        Path image = dir.resolve("zero.img");
        Files.write(image, random(7, 2 * MIB));
        try (FileBackend file = new FileBackend(image, 0, true)) {
            file.writeZeroes(4096, MIB);
            byte[] expected = random(7, 2 * MIB);
            Arrays.fill(expected, 4096, 4096 + MIB, (byte) 0);
            MemorySegment back = nativeAt(0, 2 * MIB);
            file.read(0, back);
            assertArrayEquals(expected, bytes(back));
            assertArrayEquals(expected, Files.readAllBytes(image));
        }
    }

    /** A file system without fallocate (every call EOPNOTSUPP, the open probe too): DLFEAT off, zeroes written. */
    @Test
    void withoutFallocateDeallocateIsAHintAndWriteZeroesWrites() throws Exception {
        Path image = dir.resolve("nofalloc.img");
        Files.write(image, random(8, MIB));
        int[] calls = new int[1];
        try (FileBackend file = new FileBackend(image, 0, false, (fd, mode, offset, length) -> {
            calls[0]++;
            return -Posix.EOPNOTSUPP;
        })) {
            assertFalse(file.deallocatedReadsZero(), "the probe found no hole punching: DLFEAT must not promise zeroes");
            assertEquals(1, calls[0], "probed once at open");
            file.deallocate(0, 8192);
            assertEquals(1, calls[0], "no punch attempted");
            byte[] back = new byte[8192];
            file.read(0, MemorySegment.ofArray(back));
            assertArrayEquals(Arrays.copyOf(random(8, MIB), 8192), back, "a hint: the data stays");
            file.writeZeroes(0, 8192);
            file.writeZeroes(65536, 4096);
            assertEquals(2, calls[0], "ZERO_RANGE tried once, then zeroes are written without asking again");
            file.read(0, MemorySegment.ofArray(back));
            assertArrayEquals(new byte[8192], back);
            assertArrayEquals(new byte[4096], Arrays.copyOfRange(Files.readAllBytes(image), 65536, 65536 + 4096));
        }
    }

    /** The probe succeeded but a later punch is refused: DLFEAT already said zeroes, so zeroes are written. */
    @Test
    void aPunchRefusedAfterTheProbeStillReadsZero() throws Exception {
        Path image = dir.resolve("late.img");
        Files.write(image, random(9, MIB));
        try (FileBackend file = new FileBackend(image, 0, false,
                (fd, mode, offset, length) -> offset >= MIB ? 0 : -Posix.EOPNOTSUPP)) {
            assertTrue(file.deallocatedReadsZero());
            file.deallocate(4096, 8192);
            byte[] back = new byte[16384];
            file.read(0, MemorySegment.ofArray(back));
            byte[] expected = Arrays.copyOf(random(9, MIB), 16384);
            Arrays.fill(expected, 4096, 12288, (byte) 0);
            assertArrayEquals(expected, back);
        }
    }

    @Test
    void aFallocateErrorOtherThanEopnotsuppIsAnIoError() throws Exception {
        Path image = dir.resolve("eio.img");
        try (FileBackend file = new FileBackend(image, MIB, false,
                (fd, mode, offset, length) -> offset >= MIB ? 0 : -Posix.EIO)) {
            IOException e = assertThrows(IOException.class, () -> file.deallocate(0, 4096));
            assertTrue(e.getMessage().contains("EIO"), e.getMessage());
            assertThrows(IOException.class, () -> file.writeZeroes(0, 4096));
        }
    }

    private static IoVector vector(MemorySegment... segments) {
        IoVector v = new IoVector(segments.length);
        for (MemorySegment s : segments) {
            assertTrue(v.add(s));
        }
        return v;
    }

    /** O_DIRECT, aligned native pieces: one pwritev2(RWF_DSYNC) of the whole vector, counted as one sync. */
    @Test
    void anAlignedDurableWriteIsOneRwfDsyncWrite() throws Exception {
        Path image = dir.resolve("dsync.img");
        try (FileBackend file = new FileBackend(image, MIB, true)) {
            assertTrue((openFlags(file.fd()) & UringTestFiles.O_DIRECT) != 0, "the data descriptor is O_DIRECT");
            MemorySegment a = nativeAt(0, 65536), b = nativeAt(0, 4096);
            a.copyFrom(MemorySegment.ofArray(random(10, 65536)));
            b.copyFrom(MemorySegment.ofArray(random(12, 4096)));
            file.writeDurable(4096, vector(a, b));
            assertTrue(file.rwfDsync());
            assertEquals(1, file.syncs(), "one durability point");
            assertEquals(1, SyncFaults.dsyncWrites(file), "RWF_DSYNC, no fdatasync");
            byte[] onDisk = Files.readAllBytes(image);
            assertArrayEquals(random(10, 65536), Arrays.copyOfRange(onDisk, 4096, 4096 + 65536));
            assertArrayEquals(random(12, 4096), Arrays.copyOfRange(onDisk, 4096 + 65536, 4096 + 65536 + 4096));
            assertFalse(file.syncFailed());
        }
    }

    /**
     * What RWF_DSYNC cannot take from here (heap memory; an O_DIRECT piece whose address is not aligned) is
     * written plainly (bounced) and then fdatasynced: as durable, counted as one sync, and not as an RWF_DSYNC write.
     */
    @Test
    void aDurableWriteRwfDsyncCannotTakeIsWriteThenFdatasync() throws Exception {
        Path image = dir.resolve("fallback.img");
        try (FileBackend file = new FileBackend(image, MIB, true)) {
            file.writeDurable(8192, vector(MemorySegment.ofArray(random(11, 512)))); // heap: bounced
            MemorySegment odd = nativeAt(8, 4096); // below any O_DIRECT alignment
            odd.copyFrom(MemorySegment.ofArray(random(13, 4096)));
            file.writeDurable(65536, vector(odd)); // unaligned address on O_DIRECT: bounced
            assertEquals(2, file.syncs());
            assertEquals(0, SyncFaults.dsyncWrites(file));
            byte[] onDisk = Files.readAllBytes(image);
            assertArrayEquals(random(11, 512), Arrays.copyOfRange(onDisk, 8192, 8192 + 512));
            assertArrayEquals(random(13, 4096), Arrays.copyOfRange(onDisk, 65536, 65536 + 4096));
        }
    }

    /** The fault-injection seam fails the next durable write too, not only an fdatasync; then it sticks. */
    @Test
    void anInjectedFailureFailsTheNextDurableWriteAndSticks() throws Exception {
        try (FileBackend file = new FileBackend(dir.resolve("inject.img"), MIB)) {
            IOException eio = new IOException("injected EIO");
            SyncFaults.failNextSync(file, eio);
            MemorySegment a = nativeAt(0, 4096);
            assertSame(eio, assertThrows(IOException.class, () -> file.writeDurable(0, vector(a))));
            assertEquals(0, SyncFaults.dsyncWrites(file), "nothing was written durably");
            assertSame(eio, assertThrows(IOException.class, () -> file.writeDurable(0, vector(a))), "sticky");
            assertSame(eio, assertThrows(IOException.class, file::flush));
            file.write(0, a); // a cached write still works
            assertEquals(3, file.syncErrors());
            assertEquals(0, file.syncs());
        }
    }

    /**
     * /dev/full fails every write with ENOSPC and has no RWF_DSYNC (EOPNOTSUPP: decided once, then pwrite +
     * fdatasync): a failed durable write makes later syncs fail (the fsyncgate rule).
     */
    @Test
    void aFailedDurableWriteIsASyncFailureThatSticks() {
        try (FileBackend full = new FileBackend(Path.of("/dev/full"), MIB)) {
            assertTrue(full.rwfDsync(), "not refused before the first try");
            MemorySegment a = nativeAt(0, 4096);
            IOException e = assertThrows(IOException.class, () -> full.writeDurable(0, vector(a)));
            assertTrue(e.getMessage().contains("ENOSPC"), e.getMessage());
            assertTrue(e.getMessage().startsWith("pwrite "), "RWF_DSYNC refused, so a plain pwrite failed: " + e.getMessage());
            assertFalse(full.rwfDsync(), "the refusal is decided once for the backend");
            assertTrue(full.syncFailed());
            IOException flush = assertThrows(IOException.class, full::flush);
            assertSame(e, flush, "the first failure, again");
            assertEquals(2, full.syncErrors());
        }
    }

    /** The asynchronous path reports a failed RWF_DSYNC write to the shared state: it sticks like a failed fdatasync. */
    @Test
    void aDurableWriteFailureOfTheAsyncPathSticks() {
        try (FileBackend file = new FileBackend(dir.resolve("async.img"), MIB)) {
            IOException eio = new IOException("pwritev2: EIO");
            file.durability().failed(eio);
            assertTrue(file.syncFailed());
            assertSame(eio, assertThrows(IOException.class, () -> file.sync(0, 4096)));
        }
    }

    @Test
    void aSecondOpenerIsRefusedWithDirectToo() {
        Path image = dir.resolve("locked.img");
        try (FileBackend first = new FileBackend(image, MIB, true)) {
            for (boolean direct : new boolean[] {true, false}) {
                IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
                        () -> new FileBackend(image, MIB, direct));
                assertTrue(refused.getMessage().contains("in use by another process or server"), refused.getMessage());
            }
        }
        new FileBackend(image, 0, true).close(); // released with the first
    }

    @Test
    void aClosedBackendFailsInsteadOfUsingAStaleDescriptor() {
        FileBackend file = new FileBackend(dir.resolve("closed.img"), MIB);
        file.close();
        assertThrows(IOException.class, () -> file.read(0, MemorySegment.ofArray(new byte[512])));
        assertThrows(IOException.class, () -> file.write(0, MemorySegment.ofArray(new byte[512])));
        assertThrows(IOException.class, file::flush);
        assertThrows(IOException.class, () -> file.deallocate(0, 512));
        assertThrows(IOException.class, () -> file.writeZeroes(0, 512));
    }

    @Test
    void aFileCreatedForAFailedOpenIsRemoved() {
        Path image = dir.resolve("never.img");
        assertThrows(IllegalArgumentException.class, () -> new FileBackend(image, MIB, false,
                (fd, mode, offset, length) -> -Posix.EIO)); // the probe fails
        assertFalse(Files.exists(image));
    }
}
