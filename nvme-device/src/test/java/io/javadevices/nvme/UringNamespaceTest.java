package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.HostQueue;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A {@code file:} namespace on the default engine ({@code io-engine=auto}: io_uring on this kernel), driven as the
 * Linux driver does: commands of one queue are in flight on the ring together, with a descriptor of the queue's
 * own, buffered and with O_DIRECT, and what was written reads back intact; FUA writes and Flush are syncs.
 */
class UringNamespaceTest {

    /** A directory on a disk file system (O_DIRECT and hole punching), under the module's target directory. */
    private static Path diskDir() throws IOException {
        Path target = Path.of("target").toAbsolutePath();
        Files.createDirectories(target);
        return Files.createTempDirectory(target, "uring-ns");
    }

    @Test
    void bufferedFileRunsOnTheRing() throws IOException {
        depth32(false);
    }

    @Test
    void directFileRunsOnTheRing() throws IOException {
        depth32(true);
    }

    private static void depth32(boolean direct) throws IOException {
        Path dir = diskDir();
        Path file = dir.resolve("ns.img");
        try (Fixture f = Fixture.of("queues", "2", "namespaces", "file:" + file + ":16M" + (direct ? "?direct=on" : ""))) {
            assertTrue(f.controller.ioEngine().startsWith("io_uring"), f.controller.ioEngine());
            assertEquals(1, f.stat("io.engine.uring"));
            f.driver.bringUp(2, 64, true);
            HostQueue q = f.driver.ioQueue(1);
            int blocks = 256;
            long bufs = DeepWrites.writeAll(f, q, blocks);
            HostQueue other = f.driver.ioQueue(2); // a second queue, its own ring and descriptor, sees the same data
            for (int b = 0; b < blocks; b++) {
                long buf = bufs + 4096L * (b % 32);
                assertTrue(other.execute(Command.read(1, 8L * b, 8, buf, 0)).ok());
                assertArrayEquals(GuestBytes.pattern(b, 4096), GuestBytes.get(f, buf, 4096), "block " + b);
            }
            assertTrue(q.execute(Command.flush(1)).ok());
            assertTrue(f.stat("ns1.inflight.max") > 1, "commands were in flight together: " + f.stat("ns1.inflight.max"));
            assertEquals(2L * blocks + 1, f.stat("ns1.completed"), "every command went through the ring");
            assertEquals(blocks / 16, f.stat("ns1.writes.fua"));
            assertEquals(blocks / 16 + 1, f.stat("ns1.syncs"), "each FUA write (RWF_DSYNC) and the flush is one sync");
            byte[] onDisk = Files.readAllBytes(file);
            for (int b = 0; b < blocks; b++) {
                assertArrayEquals(GuestBytes.pattern(b, 4096), java.util.Arrays.copyOfRange(onDisk, b * 4096, b * 4096 + 4096));
            }
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
    }

    /** A reset with writes in flight on the ring, then the same namespace again: the queue's descriptors do not pile up. */
    @Test
    void resetsDoNotAccumulateDescriptors() throws IOException {
        Path dir = diskDir();
        Path file = dir.resolve("ns.img");
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "file:" + file + ":4M")) {
            long before = -1;
            for (int round = 0; round < 20; round++) {
                f.driver.bringUp(1, 64, true);
                HostQueue q = f.driver.ioQueue(1);
                long buf = f.host.allocatePages(1);
                for (int i = 0; i < 16; i++) {
                    q.submit(Command.write(1, 8L * i, 8, buf, 0));
                }
                f.driver.teardown(); // Delete I/O SQ with writes still in flight: it waits for them, then CC.EN = 0
                if (round == 2) {
                    before = openFds();
                }
            }
            // A descriptor leaked per teardown would add 17 here. The slack of 2 is for descriptors that close
            // asynchronously just after a teardown returns, which either count may or may not catch.
            long after = openFds();
            assertTrue(after <= before + 2, "descriptors after 17 more teardowns: " + after + ", after the third: " + before);
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
    }

    private static long openFds() throws IOException {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        }
    }
}
