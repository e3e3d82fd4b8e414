package io.javadevices.nvme;

import io.javadevices.nvme.backend.BlockBackend;
import io.javadevices.nvme.backend.SyncFaults;
import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * FUA (Write and Write Zeroes), a disabled volatile write cache and Flush reach the storage durably on every engine ({@code io-engine=sync},
 * {@code threads}, {@code io_uring}) and every durable kind of {@code file:} namespace (buffered, {@code ?direct=on}).
 * Power cannot be pulled here, so the test asserts what the code can observe: which call made the data durable
 * (an RWF_DSYNC write for a durable write, an fdatasync / ring fsync for a Flush: the backend's counters, read right
 * after the completion arrives, so before it), that the data is in the file, that the descriptors doing the I/O
 * are O_DIRECT when asked ({@code /proc/self/fdinfo}), and that a failure injected into the durable write or the
 * flush reaches the guest as Write Fault with DNR and stays for the namespace, on each engine.
 */
class DurableEnginesTest {
    private static final int FUA = 1 << 30;
    private static final int O_DIRECT = 040000;

    static Stream<Arguments> enginesAndFiles() {
        return Stream.of("sync", "threads", "io_uring")
                .flatMap(engine -> Stream.of(Arguments.of(engine, false), Arguments.of(engine, true)));
    }

    /** A fixture with native guest RAM, one I/O queue on {@code engine}; {@code image} on a disk file system (O_DIRECT). */
    private static Fixture fixture(Path image, String engine, boolean direct) {
        Fixture f = Fixture.onNativeMemory("queues", "1", "io-engine", engine,
                "namespaces", "file:" + image + ":4M" + (direct ? "?direct=on" : ""));
        assertTrue(f.controller.ioEngine().startsWith(engine.equals("sync") ? "sync" : engine), f.controller.ioEngine());
        f.driver.bringUp(1, 16, true);
        return f;
    }

    private static Path directory() throws IOException {
        Path target = Path.of("target").toAbsolutePath();
        Files.createDirectories(target);
        return Files.createTempDirectory(target, "durable-engines");
    }

    private static void delete(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    @ParameterizedTest(name = "{0}, direct={1}")
    @MethodSource("enginesAndFiles")
    void fuaWriteThroughAndFlushAreDurableWithTheRightCall(String engine, boolean direct) throws IOException {
        Path dir = directory();
        Path image = dir.resolve("ns.img");
        try (Fixture f = fixture(image, engine, direct)) {
            HostQueue q = f.driver.ioQueue(1);
            BlockBackend backend = f.controller.namespace(1).backend();
            long buf = f.host.allocatePages(1);
            GuestBytes.put(f, buf, GuestBytes.pattern(1, 4096));

            assertTrue(q.execute(Command.write(1, 0, 8, buf, 0)).ok());
            assertEquals(0, f.stat("ns1.syncs"), "a plain write with the cache on is not durable yet");

            Completion fua = q.execute(Command.write(1, 8, 8, buf, 0).cdw(12, 7 | FUA));
            assertTrue(fua.ok(), fua.toString());
            assertEquals(1, f.stat("ns1.syncs"), "durable before it completed");
            assertEquals(1, SyncFaults.dsyncWrites(backend), "the FUA write was one RWF_DSYNC write");
            assertEquals(1, f.stat("ns1.writes.fua"));
            assertArrayEquals(GuestBytes.pattern(1, 4096), Arrays.copyOfRange(Files.readAllBytes(image), 8 * 512, 8 * 512 + 4096));

            assertTrue(f.driver.admin(Command.setFeatures(0x06, 0)).ok(), "volatile write cache off");
            assertEquals(2, f.stat("ns1.syncs"), "turning the cache off flushed it");
            GuestBytes.put(f, buf, GuestBytes.pattern(2, 4096));
            assertTrue(q.execute(Command.write(1, 16, 8, buf, 0)).ok());
            assertEquals(3, f.stat("ns1.syncs"), "with the cache off a plain write is durable before it completes");
            assertEquals(2, SyncFaults.dsyncWrites(backend), "as an RWF_DSYNC write");
            assertEquals(1, f.stat("ns1.writes.through"));
            assertArrayEquals(GuestBytes.pattern(2, 4096), Arrays.copyOfRange(Files.readAllBytes(image), 16 * 512, 16 * 512 + 4096));
            assertTrue(f.driver.admin(Command.setFeatures(0x06, 1)).ok());

            assertTrue(q.execute(Command.flush(1)).ok());
            assertEquals(4, f.stat("ns1.syncs"), "the flush synced before it completed");
            assertEquals(2, SyncFaults.dsyncWrites(backend), "a flush is an fdatasync (or the ring's fsync), not a write");

            Completion zeroes = q.execute(Command.of(0x08).nsid(1).slba(8).cdw(12, 7 | FUA));
            assertTrue(zeroes.ok(), "Write Zeroes with FUA: " + zeroes);
            assertEquals(5, f.stat("ns1.syncs"), "zeroed, then synced before it completed");
            assertEquals(2, SyncFaults.dsyncWrites(backend), "zeroing has no RWF_DSYNC: fallocate (or zeroes), then a sync");
            assertArrayEquals(new byte[4096], Arrays.copyOfRange(Files.readAllBytes(image), 8 * 512, 8 * 512 + 4096));
            assertEquals(0, f.stat("ns1.sync.errors"));

            int directDescriptors = directDescriptorsOf(image);
            if (!direct) {
                assertEquals(0, directDescriptors, "buffered: no O_DIRECT descriptor");
            } else {
                // The backend's own descriptor, and on io_uring the queue's ring has one of its own, O_DIRECT too.
                assertEquals(engine.equals("io_uring") ? 2 : 1, directDescriptors, "descriptors of the image with O_DIRECT");
            }
        } finally {
            delete(dir);
        }
    }

    /** A FUA write of two guest pages that are not adjacent (two pieces) is still one durable write, not two. */
    @ParameterizedTest(name = "{0}, direct={1}")
    @MethodSource("enginesAndFiles")
    void aFuaWriteOfSeveralPiecesIsOneRwfDsyncWrite(String engine, boolean direct) throws IOException {
        Path dir = directory();
        Path image = dir.resolve("ns.img");
        try (Fixture f = fixture(image, engine, direct)) {
            HostQueue q = f.driver.ioQueue(1);
            long pages = f.host.allocatePages(3);
            long first = pages, second = pages + 2 * 4096; // the page between them is not part of the write
            GuestBytes.put(f, first, GuestBytes.pattern(3, 4096));
            GuestBytes.put(f, pages + 4096, GuestBytes.pattern(99, 4096));
            GuestBytes.put(f, second, GuestBytes.pattern(4, 4096));
            Completion c = q.execute(Command.write(1, 32, 16, first, second).cdw(12, 15 | FUA));
            assertTrue(c.ok(), c.toString());
            assertEquals(1, f.stat("ns1.syncs"), "one durability point for the command");
            assertEquals(1, SyncFaults.dsyncWrites(f.controller.namespace(1).backend()), "one RWF_DSYNC write of both pieces");
            byte[] onDisk = Files.readAllBytes(image);
            assertArrayEquals(GuestBytes.pattern(3, 4096), Arrays.copyOfRange(onDisk, 32 * 512, 32 * 512 + 4096));
            assertArrayEquals(GuestBytes.pattern(4, 4096), Arrays.copyOfRange(onDisk, 40 * 512, 40 * 512 + 4096));
        } finally {
            delete(dir);
        }
    }

    @ParameterizedTest(name = "{0}, direct={1}")
    @MethodSource("enginesAndFiles")
    void aFailedDurableWriteIsWriteFaultAndSticks(String engine, boolean direct) throws IOException {
        Path dir = directory();
        Path image = dir.resolve("ns.img");
        try (Fixture f = fixture(image, engine, direct)) {
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            assertTrue(q.execute(Command.write(1, 0, 8, buf, 0)).ok(), "the queue's path is open before the fault");
            SyncFaults.failNextSync(f.controller.namespace(1).backend(), new IOException("injected: EIO"));
            assertWriteFault(q.execute(Command.write(1, 8, 8, buf, 0).cdw(12, 7 | FUA)), "the FUA write");
            assertWriteFault(q.execute(Command.flush(1)), "a later Flush (sticky)");
            assertWriteFault(q.execute(Command.write(1, 16, 8, buf, 0).cdw(12, 7 | FUA)), "a later FUA write (sticky)");
            assertTrue(q.execute(Command.write(1, 24, 8, buf, 0)).ok(), "a cached write still goes to the cache");
            assertEquals(1, f.stat("ns1.sync.failed"));
            assertEquals(3, f.stat("ns1.sync.errors"));
            assertEquals(0, f.stat("ns1.syncs"));
            assertEquals(0, f.stat("ns1.writes.fua"), "no FUA write completed as durable");
        } finally {
            delete(dir);
        }
    }

    @ParameterizedTest(name = "{0}, direct={1}")
    @MethodSource("enginesAndFiles")
    void aFailedFlushIsWriteFaultAndSticks(String engine, boolean direct) throws IOException {
        Path dir = directory();
        Path image = dir.resolve("ns.img");
        try (Fixture f = fixture(image, engine, direct)) {
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            assertTrue(q.execute(Command.write(1, 0, 8, buf, 0)).ok());
            SyncFaults.failNextSync(f.controller.namespace(1).backend(), new IOException("injected: EIO"));
            assertWriteFault(q.execute(Command.flush(1)), "the Flush");
            assertWriteFault(q.execute(Command.flush(1)), "the next Flush (sticky)");
            Completion off = f.driver.admin(Command.setFeatures(0x06, 0));
            assertEquals(0x06, off.sc(), "turning the cache off cannot flush it: Internal Error, " + off);
            assertEquals(0, f.driver.admin(Command.getFeatures(0x06, 0, 0)).dw0(), "the cache stays off (the safer state)");
            assertWriteFault(q.execute(Command.write(1, 8, 8, buf, 0)), "a write-through write (sticky)");
            assertEquals(1, f.stat("ns1.sync.failed"));
            assertEquals(0, f.stat("ns1.syncs"));
        } finally {
            delete(dir);
        }
    }

    private static void assertWriteFault(Completion c, String what) {
        assertEquals(2, c.sct(), what + ": " + c);
        assertEquals(0x80, c.sc(), what + ": Write Fault, " + c);
        assertTrue((c.status() & (1 << 14)) != 0, what + ": DNR, retrying cannot bring lost writes back: " + c);
    }

    /** Descriptors of this process open on {@code image} with O_DIRECT ({@code /proc/self/fdinfo} flags, octal). */
    private static int directDescriptorsOf(Path image) throws IOException {
        Path real = image.toRealPath();
        int n = 0;
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            for (Path fd : fds.toList()) {
                Path target;
                try {
                    target = Files.readSymbolicLink(fd);
                } catch (IOException gone) {
                    continue; // closed meanwhile (the listing's own descriptor)
                }
                if (!target.equals(real)) {
                    continue;
                }
                for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo/" + fd.getFileName()))) {
                    if (line.startsWith("flags:") && (Integer.parseInt(line.substring(6).trim(), 8) & O_DIRECT) != 0) {
                        n++;
                    }
                }
            }
        }
        return n;
    }
}
