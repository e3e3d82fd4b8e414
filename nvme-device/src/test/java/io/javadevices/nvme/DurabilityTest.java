package io.javadevices.nvme;

import io.javadevices.nvme.backend.SyncFaults;
import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * FUA, the Volatile Write Cache feature and Flush error reporting on a {@code file:} namespace (issue 11
 * item 6). The backend's own counters ({@code ns1.syncs}: fdatasync calls and RWF_DSYNC writes that returned) are
 * read right after the completion arrives, so "synced" means synced before the command completed. Every engine
 * and both kinds of file: {@link DurableEnginesTest}.
 */
class DurabilityTest {
    private static final int FUA = 1 << 30;

    private static Fixture file(Path dir) {
        return new Fixture(Map.of("namespaces", "file:" + dir.resolve("disk.img") + ":4M", "queues", "1"));
    }

    private static long buffer(Fixture f, long seed) throws Exception {
        long buf = f.host.allocatePages(1);
        byte[] data = new byte[4096];
        new Random(seed).nextBytes(data);
        f.host.memory().write(buf, data, 0, data.length);
        return buf;
    }

    @Test
    void fuaWriteIsSyncedBeforeItCompletesAndPlainWriteIsNot(@TempDir Path dir) throws Exception {
        try (Fixture f = file(dir)) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = buffer(f, 1);
            assertTrue(q.execute(Command.write(1, 8, 8, buf, 0)).ok());
            assertEquals(0, f.stat("ns1.syncs"), "a plain write with the cache on is not synced");
            assertEquals(0, f.stat("ns1.writes.fua"));
            Completion c = q.execute(Command.write(1, 16, 8, buf, 0).cdw(12, 7 | FUA));
            assertTrue(c.ok(), c.toString());
            assertEquals(1, f.stat("ns1.syncs"), "the FUA write's fdatasync returned before its completion");
            assertEquals(1, f.stat("ns1.writes.fua"));
            byte[] expected = new byte[4096];
            f.host.memory().read(buf, expected, 0, 4096);
            byte[] onDisk = Files.readAllBytes(dir.resolve("disk.img"));
            assertArrayEquals(expected, Arrays.copyOfRange(onDisk, 16 * 512, 16 * 512 + 4096));
            // Write Zeroes with FUA and Read with FUA sync too (Read: commit, then read).
            assertTrue(q.execute(Command.of(0x08).nsid(1).slba(64).cdw(12, 7 | FUA)).ok());
            assertEquals(2, f.stat("ns1.syncs"));
            assertTrue(q.execute(Command.read(1, 16, 8, buf, 0).cdw(12, 7 | FUA)).ok());
            assertEquals(3, f.stat("ns1.syncs"));
            assertTrue(q.execute(Command.flush(1)).ok());
            assertEquals(4, f.stat("ns1.syncs"));
            assertEquals(1, f.stat("ns1.flushes"));
            assertEquals(0, f.stat("ns1.sync.errors"));
        }
    }

    @Test
    void disabledWriteCacheSyncsEveryWrite(@TempDir Path dir) throws Exception {
        try (Fixture f = file(dir)) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = buffer(f, 2);
            assertEquals(1, f.driver.admin(Command.getFeatures(0x06, 0, 0)).dw0(), "cache on by default");
            assertTrue(q.execute(Command.write(1, 0, 8, buf, 0)).ok());
            assertEquals(0, f.stat("ns1.syncs"));
            assertTrue(f.driver.admin(Command.setFeatures(0x06, 0)).ok());
            assertEquals(0, f.driver.admin(Command.getFeatures(0x06, 0, 0)).dw0(), "Get Features returns what was set");
            assertEquals(1, f.driver.admin(Command.getFeatures(0x06, 1, 0)).dw0(), "default: on");
            assertEquals(1, f.stat("ns1.syncs"), "disabling the cache flushed what it held");
            for (int i = 0; i < 3; i++) {
                assertTrue(q.execute(Command.write(1, 8L * i, 8, buf, 0)).ok());
                assertEquals(2 + i, f.stat("ns1.syncs"), "write " + i + " synced before completion");
            }
            assertEquals(3, f.stat("ns1.writes.through"));
            assertTrue(f.driver.admin(Command.setFeatures(0x06, 1)).ok());
            assertEquals(1, f.driver.admin(Command.getFeatures(0x06, 0, 0)).dw0());
            assertTrue(q.execute(Command.write(1, 0, 8, buf, 0)).ok());
            assertEquals(4, f.stat("ns1.syncs"), "cache on again: no sync");
        }
    }

    @Test
    void flushAfterFailedWriteBackKeepsFailingUntilReopened(@TempDir Path dir) throws Exception {
        try (Fixture f = file(dir)) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = buffer(f, 3);
            assertTrue(q.execute(Command.write(1, 0, 8, buf, 0)).ok());
            // The next durability point "returns EIO" (the backend's fault-injection seam, on whichever path).
            SyncFaults.failNextSync(f.controller.namespace(1).backend(), new IOException("fdatasync: Input/output error"));
            Completion first = q.execute(Command.flush(1));
            assertEquals(2, first.sct(), first.toString());
            assertEquals(0x80, first.sc(), "Write Fault");
            assertTrue((first.status() & (1 << 14)) != 0, "DNR: retrying cannot bring the lost writes back");
            // A real fdatasync would now succeed (the kernel reported the error once); the flush must not.
            Completion second = q.execute(Command.flush(1));
            assertEquals(0x80, second.sc(), "sticky: " + second);
            Completion fua = q.execute(Command.write(1, 8, 8, buf, 0).cdw(12, 7 | FUA));
            assertEquals(0x80, fua.sc(), "a FUA write cannot be durable either: " + fua);
            assertTrue(q.execute(Command.write(1, 16, 8, buf, 0)).ok(), "plain writes still go to the page cache");
            assertEquals(1, f.stat("ns1.sync.failed"));
            assertEquals(3, f.stat("ns1.sync.errors"));
            assertEquals(0, f.stat("ns1.syncs"));
            assertTrue(f.controller.errorLog().count() >= 3);
        }
        try (Fixture reopened = file(dir)) {
            reopened.driver.bringUp(1, 16, true);
            assertTrue(reopened.driver.ioQueue(1).execute(Command.flush(1)).ok(), "a new open starts clean");
            assertEquals(0, reopened.stat("ns1.sync.failed"));
        }
    }

    @Test
    void identifyAdvertisesAWriteCacheOnlyWhenABackendHasOne(@TempDir Path dir) throws Exception {
        try (Fixture f = new Fixture(Map.of("namespaces", "ram:4M,file:" + dir.resolve("d.img") + ":1M"))) {
            f.driver.bringUp(1, 16, true);
            assertEquals(0x07, f.driver.identify(0x01, 0)[525], "VWC present, Flush NSID FFFFFFFFh supported");
            assertEquals(0x4, f.driver.admin(Command.getFeatures(0x06, 3, 0)).dw0(), "changeable");
        }
        try (Fixture f = Fixture.of("namespaces", "ram:4M,null:4M")) {
            f.driver.bringUp(1, 16, true);
            assertEquals(0, f.driver.identify(0x01, 0)[525], "no cache: Linux sends no Flush or FUA");
            Completion set = f.driver.admin(Command.setFeatures(0x06, 0));
            assertEquals(0x02, set.sc(), "no Volatile Write Cache feature without a cache: " + set);
            HostQueue q = f.driver.ioQueue(1);
            assertTrue(q.execute(Command.flush(1)).ok(), "Flush is still accepted (mandatory command)");
            long buf = f.host.allocatePages(1);
            assertTrue(q.execute(Command.write(1, 0, 8, buf, 0).cdw(12, 7 | FUA)).ok(), "FUA on ram: trivially durable");
            assertEquals(1, f.stat("ns1.writes.fua"));
        }
    }
}
