package io.javadevices.nvme.backend;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * FileBackend on what only root can set up: a loop block device (BLKGETSIZE64, BLKSSZGET alignment, BLKDISCARD,
 * BLKZEROOUT, the lock on a device) and a ramfs mount (a file system that refuses O_DIRECT and has no fallocate).
 * Skipped (not failed) where losetup or mount is not permitted.
 */
class FileBackendDeviceTest {
    private static final int MIB = 1 << 20;
    private Path dir;

    @BeforeEach
    void setUp() throws IOException {
        Files.createDirectories(Path.of("target"));
        dir = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "filedevice");
    }

    @AfterEach
    void tearDown() throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** Runs a command; its trimmed output, or null if it failed (not root, no loop devices, no mount permission). */
    private static String run(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes()).trim();
        return p.waitFor() == 0 ? out : null;
    }

    private static void runOrFail(String... command) throws IOException, InterruptedException {
        assertNotNull(run(command), String.join(" ", command));
    }

    @Test
    void aLoopDeviceIsSizedDiscardedAndZeroedThroughItsIoctls() throws Exception {
        Path backing = dir.resolve("loop.img");
        byte[] data = FileBackendIoTest.random(20, 16 * MIB);
        Files.write(backing, data);
        String device = run("losetup", "-f", "--show", backing.toString());
        Assumptions.assumeTrue(device != null && device.startsWith("/dev/loop"), "losetup not permitted here");
        try (Arena arena = Arena.ofConfined()) {
            try (FileBackend loop = new FileBackend(Path.of(device), 0, true)) {
                assertTrue(loop.blockDevice());
                assertEquals(16 * MIB, loop.size(), "BLKGETSIZE64");
                assertEquals(512, loop.directAlignment(), "a loop device's logical block size (statx DIOALIGN or BLKSSZGET)");
                assertFalse(loop.deallocatedReadsZero(), "a device does not promise zeroes after a discard: DLFEAT 000b");
                IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
                        () -> new FileBackend(Path.of(device), 0));
                assertTrue(refused.getMessage().contains("in use"), refused.getMessage());
                assertThrows(IllegalArgumentException.class, () -> new FileBackend(Path.of(device), 32 * MIB),
                        "larger than the device");

                MemorySegment buf = arena.allocate(2 * MIB, 4096);
                loop.read(MIB, buf);
                assertArrayEquals(Arrays.copyOfRange(data, MIB, 3 * MIB), buf.toArray(ValueLayout.JAVA_BYTE));
                loop.writeZeroes(MIB, MIB); // BLKZEROOUT
                loop.deallocate(4 * MIB, MIB); // BLKDISCARD: a hint to the device (a loop device punches its file)
                loop.flush();
                loop.read(MIB, buf);
                byte[] expected = Arrays.copyOfRange(data, MIB, 3 * MIB);
                Arrays.fill(expected, 0, MIB, (byte) 0);
                assertArrayEquals(expected, buf.toArray(ValueLayout.JAVA_BYTE), "zeroed, the next MiB untouched");
                MemorySegment unaligned = arena.allocate(8192 + 4, 4096).asSlice(4, 8192);
                unaligned.copyFrom(MemorySegment.ofArray(FileBackendIoTest.random(21, 8192)));
                loop.write(8 * MIB, unaligned);
                loop.flush();
            }
            byte[] onBacking = Files.readAllBytes(backing);
            assertArrayEquals(new byte[MIB], Arrays.copyOfRange(onBacking, MIB, 2 * MIB), "BLKZEROOUT reached the file");
            assertArrayEquals(FileBackendIoTest.random(21, 8192), Arrays.copyOfRange(onBacking, 8 * MIB, 8 * MIB + 8192));
            assertArrayEquals(Arrays.copyOfRange(data, 3 * MIB, 4 * MIB), Arrays.copyOfRange(onBacking, 3 * MIB, 4 * MIB));
        } finally {
            runOrFail("losetup", "-d", device);
        }
    }

    @Test
    void aFileSystemThatRefusesODirectIsAClearStartUpErrorAndOneWithoutFallocateWritesZeroes() throws Exception {
        Path mount = Files.createDirectory(dir.resolve("ramfs"));
        Assumptions.assumeTrue(run("mount", "-t", "ramfs", "ramfs", mount.toString()) != null, "mount not permitted here");
        try {
            Path image = mount.resolve("disk.img");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new FileBackend(image, MIB, true));
            assertTrue(e.getMessage().contains(image.toString()) && e.getMessage().contains("refuses O_DIRECT")
                    && e.getMessage().contains("without ?direct=on"), e.getMessage());
            assertFalse(Files.exists(image), "nothing left behind by the refused open");
            // Buffered it works; ramfs has no fallocate at all: DLFEAT off, zeroes written.
            try (FileBackend file = new FileBackend(image, MIB)) {
                assertFalse(file.deallocatedReadsZero());
                file.write(0, MemorySegment.ofArray(FileBackendIoTest.random(22, 8192)));
                file.writeZeroes(0, 4096);
                byte[] back = new byte[8192];
                file.read(0, MemorySegment.ofArray(back));
                byte[] expected = FileBackendIoTest.random(22, 8192);
                Arrays.fill(expected, 0, 4096, (byte) 0);
                assertArrayEquals(expected, back);
            }
        } finally {
            runOrFail("umount", mount.toString());
        }
    }

    /**
     * tmpfs: since Linux 6.6 it accepts O_DIRECT opens (served from its page cache), before that it refused them
     * with EINVAL. Either way the outcome is well defined: it works, or the start-up error names the path.
     */
    @Test
    void tmpfsWithDirectEitherWorksOrIsRefusedClearly() throws Exception {
        Path shm = Path.of("/dev/shm");
        Assumptions.assumeTrue(Files.isDirectory(shm) && List.of("tmpfs").contains(run("stat", "-f", "-c", "%T", shm.toString())),
                "no tmpfs at /dev/shm");
        Path image = Files.createTempFile(shm, "filebackend", ".img");
        try {
            FileBackend file;
            try {
                file = new FileBackend(image, MIB, true);
            } catch (IllegalArgumentException refused) {
                assertTrue(refused.getMessage().contains("refuses O_DIRECT") && refused.getMessage().contains(image.toString()),
                        refused.getMessage());
                return;
            }
            try (file) {
                assertEquals(FileBackend.DEFAULT_ALIGNMENT, file.directAlignment(), "tmpfs reports no DIOALIGN");
                assertTrue(file.deallocatedReadsZero(), "tmpfs punches holes");
                file.write(4096, MemorySegment.ofArray(FileBackendIoTest.random(23, 4096)));
                file.writeZeroes(4096, 4096); // no FALLOC_FL_ZERO_RANGE on tmpfs: written
                byte[] back = new byte[4096];
                file.read(4096, MemorySegment.ofArray(back));
                assertArrayEquals(new byte[4096], back);
            }
        } finally {
            Files.deleteIfExists(image);
        }
    }
}
