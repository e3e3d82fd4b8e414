package io.javadevices.nvme;

import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.backend.FallocateFaults;
import io.javadevices.nvme.backend.RamBackend;
import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.pci.GuestMemoryException;
import io.javadevices.pci.testkit.TestHost;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static io.javadevices.nvme.GuestBytes.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Write Zeroes with the Deallocate bit and Dataset Management deallocate: what Identify Namespace DLFEAT says a
 * deallocated block reads back as is what it does read back as, per backend.
 */
class DeallocateTest {
    private static final int DEAC = 1 << 25;

    private static Command writeZeroes(int nsid, long slba, int blocks) {
        return Command.of(0x08).nsid(nsid).slba(slba).cdw(12, blocks - 1);
    }

    @Test
    void dlfeatPerBackend() throws IOException {
        Path dir = Files.createTempDirectory("dlfeat");
        Path file = dir.resolve("ns.img");
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M,null:1G,file:" + file + ":8M")) {
            f.driver.enable();
            // 001b: deallocated blocks read as zeroes; bit 3: Write Zeroes supports the Deallocate bit.
            assertEquals(0x09, f.driver.identify(0x00, 1)[33], "ram: deallocated blocks read zero");
            assertEquals(0x09, f.driver.identify(0x00, 2)[33], "null: every block reads zero");
            assertEquals(0x09, f.driver.identify(0x00, 3)[33], "file: deallocate punches a hole, which reads zero");
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
    }

    @Test
    void writeZeroesWithDeallocateGivesTheRamChunkBackAndReadsZero() throws GuestMemoryException {
        RamBackend[] ram = new RamBackend[1];
        try (TestHost host = TestHost.heap(32L << 20)) {
            host.attach(ctx -> new NvmeController(NvmeOptions.parse(Map.of("queues", "1", "namespaces", "ram:8M")), ctx,
                    spec -> {
                        BlockBackend b = spec.open();
                        ram[0] = (RamBackend) b;
                        return b;
                    }));
            LinuxLikeDriver driver = new LinuxLikeDriver(host);
            driver.bringUp(1, 16, true);
            HostQueue q = driver.ioQueue(1);
            long buf = host.allocatePages(1);
            host.memory().write(buf, pattern(1, 4096), 0, 4096);
            assertTrue(q.execute(Command.write(1, 2048, 8, buf, 0)).ok()); // in the second 1 MiB chunk
            assertTrue(q.execute(Command.write(1, 0, 8, buf, 0)).ok());
            assertEquals(2, ram[0].allocatedChunks());
            assertTrue(q.execute(writeZeroes(1, 2048, 2048).cdw(12, 2047 | DEAC)).ok(), "the whole second MiB");
            assertEquals(1, ram[0].allocatedChunks(), "deallocated, not written");
            assertTrue(q.execute(Command.read(1, 2048, 8, buf, 0)).ok());
            byte[] back = new byte[4096];
            host.memory().read(buf, back, 0, 4096);
            assertArrayEquals(new byte[4096], back);
        }
    }

    /** Allocated 512-byte blocks of {@code file} ({@code st_blocks}). */
    static long allocatedBlocks(Path file) throws IOException, InterruptedException {
        Process stat = new ProcessBuilder("stat", "-c", "%b", file.toString()).redirectErrorStream(true).start();
        String out = new String(stat.getInputStream().readAllBytes()).trim();
        assertEquals(0, stat.waitFor(), out);
        return Long.parseLong(out);
    }

    /** A directory on the disk's file system (not a tmpfs /tmp): holes, extents and st_blocks as a real image has. */
    static Path diskDirectory(String prefix) throws IOException {
        Path target = Path.of("target");
        Files.createDirectories(target);
        return Files.createTempDirectory(target.toAbsolutePath(), prefix);
    }

    @Test
    void fileWriteZeroesWithDeallocateAndDsmPunchHolesThatReadZero() throws Exception {
        Path dir = diskDirectory("deac");
        Path file = dir.resolve("ns.img");
        Files.write(file, pattern(2, 8 << 20)); // an image full of data
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "file:" + file)) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            assertEquals(0x09, f.driver.identify(0x00, 1)[33], "DLFEAT as the driver reads it: 001b + Write Zeroes DEAC");
            long buf = f.host.allocatePages(1);
            assertTrue(q.execute(Command.read(1, 0, 8, buf, 0)).ok());
            assertArrayEquals(Arrays.copyOfRange(pattern(2, 8 << 20), 0, 4096), get(f, buf, 4096));
            long written = allocatedBlocks(file);
            assertTrue(written >= 8 * 2048, "8 MiB allocated: " + written);
            // Write Zeroes with DEAC on the first MiB: deallocated (DLFEAT says it reads zero), a hole.
            assertTrue(q.execute(writeZeroes(1, 0, 2048).cdw(12, 2047 | DEAC)).ok());
            assertTrue(q.execute(Command.read(1, 0, 8, buf, 0)).ok());
            assertArrayEquals(new byte[4096], get(f, buf, 4096));
            assertArrayEquals(new byte[4096], Arrays.copyOfRange(Files.readAllBytes(file), 0, 4096), "what the file holds");
            long afterDeac = allocatedBlocks(file);
            assertTrue(afterDeac <= written - 2048, "1 MiB given back: " + written + " -> " + afterDeac);
            // DSM deallocate of the second MiB: a hole too, and it reads zero (DLFEAT 001b).
            long ranges = f.host.allocatePages(1);
            f.host.memory().writeInt(ranges + 4, 2048);
            f.host.memory().writeLong(ranges + 8, 2048);
            assertTrue(q.execute(Command.of(0x09).nsid(1).prp1(ranges).cdw(11, 4)).ok());
            assertTrue(q.execute(Command.read(1, 2048, 8, buf, 0)).ok());
            assertArrayEquals(new byte[4096], get(f, buf, 4096));
            assertTrue(allocatedBlocks(file) <= afterDeac - 2048, "the second MiB given back too");
            assertEquals(8L << 20, Files.size(file), "FALLOC_FL_KEEP_SIZE: the namespace keeps its size");
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
    }

    /**
     * A file system without hole punching (forced: every fallocate fails with EOPNOTSUPP): DLFEAT 000b as the
     * driver reads it, DSM deallocate leaves the data (a hint), Write Zeroes with DEAC writes the zeroes.
     */
    @Test
    void fileOnAFileSystemWithoutFallocateReportsNoZeroesAndWritesThem() throws Exception {
        Path dir = diskDirectory("nofalloc");
        Path file = dir.resolve("ns.img");
        try (TestHost host = TestHost.heap(32L << 20)) {
            host.attach(ctx -> new NvmeController(NvmeOptions.parse(Map.of("queues", "1", "namespaces", "file:" + file + ":8M")),
                    ctx, spec -> FallocateFaults.withoutFallocate(Path.of(spec.path()), spec.size())));
            LinuxLikeDriver driver = new LinuxLikeDriver(host);
            driver.bringUp(1, 16, true);
            assertEquals(0x00, driver.identify(0x00, 1)[33], "DLFEAT 000b: deallocated blocks are not known to read zero");
            HostQueue q = driver.ioQueue(1);
            long buf = host.allocatePages(1);
            host.memory().write(buf, pattern(3, 4096), 0, 4096);
            assertTrue(q.execute(Command.write(1, 0, 8, buf, 0)).ok());
            assertTrue(q.execute(Command.write(1, 8, 8, buf, 0)).ok());
            assertTrue(q.execute(writeZeroes(1, 0, 8).cdw(12, 7 | DEAC)).ok());
            assertArrayEquals(new byte[4096], Arrays.copyOfRange(Files.readAllBytes(file), 0, 4096), "zeroes written");
            long ranges = host.allocatePages(1);
            host.memory().writeInt(ranges + 4, 8);
            host.memory().writeLong(ranges + 8, 8);
            assertTrue(q.execute(Command.of(0x09).nsid(1).prp1(ranges).cdw(11, 4)).ok());
            assertTrue(q.execute(Command.read(1, 8, 8, buf, 0)).ok());
            byte[] back = new byte[4096];
            host.memory().read(buf, back, 0, 4096);
            assertArrayEquals(pattern(3, 4096), back, "DSM deallocate is a hint here: the data stays");
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
    }

    /**
     * A block device (a loop device; root only, skipped where losetup is not permitted): DLFEAT 000b as the driver
     * reads it (a discard's result is the device's business), so Write Zeroes with DEAC zeroes through BLKZEROOUT
     * and DSM deallocate is a BLKDISCARD hint.
     */
    @Test
    void aBlockDeviceNamespaceReportsNoDeallocatedZeroesAndZeroesThroughTheKernel() throws Exception {
        Path dir = diskDirectory("blk");
        Path backing = dir.resolve("loop.img");
        Files.write(backing, pattern(5, 8 << 20));
        Process attach = new ProcessBuilder("losetup", "-f", "--show", backing.toString()).redirectErrorStream(true).start();
        String device = new String(attach.getInputStream().readAllBytes()).trim();
        boolean attached = attach.waitFor() == 0 && device.startsWith("/dev/loop");
        try {
            org.junit.jupiter.api.Assumptions.assumeTrue(attached, "losetup not permitted here: " + device);
            try (Fixture f = Fixture.of("queues", "1", "namespaces", "file:" + device + "?direct=on")) {
                f.driver.bringUp(1, 16, true);
                assertEquals(0x00, f.driver.identify(0x00, 1)[33], "DLFEAT 000b on a block device");
                HostQueue q = f.driver.ioQueue(1);
                long buf = f.host.allocatePages(1);
                assertTrue(q.execute(writeZeroes(1, 8, 8).cdw(12, 7 | DEAC)).ok());
                assertTrue(q.execute(Command.read(1, 8, 8, buf, 0)).ok());
                assertArrayEquals(new byte[4096], get(f, buf, 4096), "zeroed");
                assertTrue(q.execute(Command.read(1, 16, 8, buf, 0)).ok());
                assertArrayEquals(Arrays.copyOfRange(pattern(5, 8 << 20), 16 * 512, 16 * 512 + 4096), get(f, buf, 4096),
                        "the next blocks untouched");
                long ranges = f.host.allocatePages(1);
                f.host.memory().writeInt(ranges + 4, 64);
                f.host.memory().writeLong(ranges + 8, 1024);
                assertTrue(q.execute(Command.of(0x09).nsid(1).prp1(ranges).cdw(11, 4)).ok(), "BLKDISCARD");
                assertTrue(q.execute(Command.flush(1)).ok());
            }
        } finally {
            if (attached) {
                assertEquals(0, new ProcessBuilder("losetup", "-d", device).start().waitFor(), "losetup -d " + device);
            }
            Files.deleteIfExists(backing);
            Files.deleteIfExists(dir);
        }
    }

    @Test
    void writeZeroesInvalidFields() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:1M,null:1G")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long blocks = (1 << 20) / 512;
            assertEquals(0x0B, q.execute(writeZeroes(3, 0, 1).cdw(12, DEAC)).sc(), "wrong NSID");
            assertEquals(0x80, q.execute(writeZeroes(1, blocks - 1, 2).cdw(12, 1 | DEAC)).sc(), "beyond the end");
            assertEquals(0x80, q.execute(writeZeroes(1, -1L, 1).cdw(12, DEAC)).sc(), "SLBA 2^64-1");
            assertTrue(q.execute(writeZeroes(2, 0, 65536).cdw(12, 65535 | DEAC)).ok(), "null: 65536 blocks, no MDTS limit");
        }
    }
}
