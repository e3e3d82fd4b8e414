package io.javadevices.nvme;

import io.javadevices.nvme.backend.FileBackend;
import io.javadevices.nvme.backend.NullBackend;
import io.javadevices.nvme.backend.RamBackend;
import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.HostQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.*;

class BackendTest {

    @Test
    void ramIsSparseAndThreadSafe() throws Exception {
        RamBackend ram = new RamBackend(64L << 20);
        assertEquals(0, ram.allocatedChunks());
        MemorySegment zero = MemorySegment.ofArray(new byte[8192]);
        ram.read(5 << 20, zero);
        assertEquals(0, ram.allocatedChunks(), "reads do not allocate");
        IntStream.range(0, 8).parallel().forEach(t -> {
            byte[] data = new byte[8192];
            new Random(t).nextBytes(data);
            for (int i = 0; i < 200; i++) {
                long off = ((long) t << 20) * 8 + (RamBackend.CHUNK - 4096) + i * 8192L % (4L << 20);
                ram.write(off, MemorySegment.ofArray(data));
                byte[] back = new byte[8192];
                ram.read(off, MemorySegment.ofArray(back));
                assertArrayEquals(data, back);
            }
        });
        ram.deallocate(0, 64L << 20);
        assertEquals(0, ram.allocatedChunks());
        byte[] back = new byte[4096];
        ram.read(RamBackend.CHUNK - 4096, MemorySegment.ofArray(back));
        assertArrayEquals(new byte[4096], back);
    }

    @Test
    void nullFillsReads() {
        NullBackend n = new NullBackend(1 << 20);
        byte[] b = new byte[512];
        b[3] = 9;
        n.read(0, MemorySegment.ofArray(b));
        assertArrayEquals(new byte[512], b);
    }

    @Test
    void fileBackendThroughController(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("disk.img");
        try (Fixture f = new Fixture(Map.of("namespaces", "file:" + file + ":4M", "queues", "1"))) {
            assertEquals(4L << 20, Files.size(file));
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(2);
            byte[] data = new byte[8192];
            new Random(1).nextBytes(data);
            f.host.memory().write(buf, data, 0, data.length);
            assertTrue(q.execute(Command.write(1, 64, 16, buf, buf + 4096)).ok());
            assertTrue(q.execute(Command.flush(1)).ok());
            byte[] onDisk = Files.readAllBytes(file);
            assertArrayEquals(data, java.util.Arrays.copyOfRange(onDisk, 64 * 512, 64 * 512 + 8192));
            long back = f.host.allocatePages(2);
            assertTrue(q.execute(Command.read(1, 64, 16, back, back + 4096)).ok());
            byte[] got = new byte[8192];
            f.host.memory().read(back, got, 0, 8192);
            assertArrayEquals(data, got);
            assertTrue(q.execute(Command.of(0x08).nsid(1).slba(64).cdw(12, 7)).ok());
            assertArrayEquals(new byte[4096], java.util.Arrays.copyOfRange(Files.readAllBytes(file), 64 * 512, 64 * 512 + 4096));
        }
        // size from an existing file
        FileBackend existing = new FileBackend(file, 0);
        assertEquals(4L << 20, existing.size());
        existing.close();
        assertThrows(IllegalArgumentException.class, () -> new FileBackend(dir.resolve("missing"), 0));
        assertThrows(IllegalArgumentException.class, () -> new FileBackend(dir.resolve("no/such/dir/x.img"), 4096));
    }

    @Test
    void backendIoErrorBecomesMediaStatus(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("disk.img");
        try (Fixture f = new Fixture(Map.of("namespaces", "file:" + file + ":1M", "queues", "1"))) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            // Close the backend under the controller: every access now throws ClosedChannelException.
            f.controller.namespace(1).backend().close();
            var c = q.execute(Command.write(1, 0, 8, buf, 0));
            assertEquals(2, c.sct());
            assertEquals(0x80, c.sc(), "Write Fault");
            c = q.execute(Command.read(1, 0, 8, buf, 0));
            assertEquals(2, c.sct());
            assertEquals(0x81, c.sc(), "Unrecovered Read Error");
            assertTrue(f.controller.errorLog().count() >= 2);
            assertTrue(q.execute(Command.of(0x7F).nsid(1)).sc() == 1, "controller alive");
        }
    }
}
