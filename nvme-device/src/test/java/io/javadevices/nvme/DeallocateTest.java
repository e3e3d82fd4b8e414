package io.javadevices.nvme;

import io.javadevices.nvme.backend.BlockBackend;
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
            assertEquals(0x00, f.driver.identify(0x00, 3)[33], "file: deallocate is only a hint, nothing reported");
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

    @Test
    void fileWriteZeroesWithDeallocateWritesZeroesAndDsmKeepsTheData() throws IOException, GuestMemoryException {
        Path dir = Files.createTempDirectory("deac");
        Path file = dir.resolve("ns.img");
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "file:" + file + ":8M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            put(f, buf, pattern(2, 4096));
            assertTrue(q.execute(Command.write(1, 0, 8, buf, 0)).ok());
            assertTrue(q.execute(Command.write(1, 8, 8, buf, 0)).ok());
            assertTrue(q.execute(writeZeroes(1, 0, 8).cdw(12, 7 | DEAC)).ok());
            assertTrue(q.execute(Command.read(1, 0, 8, buf, 0)).ok());
            assertArrayEquals(new byte[4096], get(f, buf, 4096), "DLFEAT bit 3 clear: the zeroes are written");
            assertArrayEquals(new byte[4096], Arrays.copyOfRange(Files.readAllBytes(file), 0, 4096));
            // DSM deallocate on a file is a hint (DLFEAT 000b): the data may stay, and here it does.
            long ranges = f.host.allocatePages(1);
            f.host.memory().writeInt(ranges + 4, 8);
            f.host.memory().writeLong(ranges + 8, 8);
            assertTrue(q.execute(Command.of(0x09).nsid(1).prp1(ranges).cdw(11, 4)).ok());
            assertTrue(q.execute(Command.read(1, 8, 8, buf, 0)).ok());
            assertArrayEquals(pattern(2, 4096), get(f, buf, 4096));
        } finally {
            Files.deleteIfExists(file);
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
