package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.pci.DeviceControl.ControlException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static io.javadevices.nvme.GuestBytes.get;
import static io.javadevices.nvme.GuestBytes.pattern;
import static io.javadevices.nvme.GuestBytes.put;
import static io.javadevices.nvme.LinuxRescan.activeList;
import static io.javadevices.nvme.LinuxRescan.handleNotice;
import static io.javadevices.nvme.LinuxRescan.ncapNuse;
import static io.javadevices.nvme.LinuxRescan.noEventBeyond;
import static io.javadevices.nvme.LinuxRescan.nsze;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The control plane's namespace methods driven as the host's RPC does ({@code DeviceControl.call}) while a
 * Linux-like driver uses the controller: each change reaches the guest as Namespace Attribute Changed, and the
 * driver's rescan (log 04h, Identify CNS 02h, CNS 00h) sees the disk appear, go or change size; I/O on the other
 * namespaces goes on meanwhile.
 */
class NamespaceControlTest {
    @TempDir
    Path dir;

    static Object call(Fixture f, String method, Object... keyValues) throws ControlException {
        Map<String, Object> params = new LinkedHashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            params.put((String) keyValues[i], keyValues[i + 1]);
        }
        return f.controller.control().call(method, params);
    }

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> list(Fixture f) throws ControlException {
        return (List<Map<String, Object>>) ((Map<String, Object>) call(f, "namespace_list")).get("namespaces");
    }

    /** Writes {@code blocks} 512-byte blocks of pattern {@code seed} at {@code slba}, reads them back, compares. */
    private static void writeAndReadBack(Fixture f, HostQueue q, int nsid, long slba, int seed) {
        long buf = f.host.allocatePages(1), back = f.host.allocatePages(1);
        byte[] data = pattern(seed, 4096);
        put(f, buf, data);
        Completion w = q.execute(Command.write(nsid, slba, 8, buf, 0));
        assertTrue(w.ok(), "write at " + slba + ": " + w);
        Completion r = q.execute(Command.read(nsid, slba, 8, back, 0));
        assertTrue(r.ok(), "read at " + slba + ": " + r);
        assertArrayEquals(data, get(f, back, 4096), "read back at " + slba);
    }

    private static byte[] read(Fixture f, HostQueue q, int nsid, long slba) {
        long back = f.host.allocatePages(1);
        Completion r = q.execute(Command.read(nsid, slba, 8, back, 0));
        assertTrue(r.ok(), "read at " + slba + ": " + r);
        return get(f, back, 4096);
    }

    /** Write / read-back / compare rounds on one namespace from a thread of its own (the guest's other I/O). */
    private static final class Traffic implements AutoCloseable {
        final AtomicInteger rounds = new AtomicInteger();
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        private volatile boolean stop;
        private final Thread thread;

        Traffic(Fixture f, HostQueue q, int nsid) {
            thread = Thread.ofPlatform().start(() -> {
                try {
                    for (int i = 0; !stop; i++) {
                        writeAndReadBack(f, q, nsid, (i % 64) * 8L, i);
                        rounds.incrementAndGet();
                    }
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
        }

        void awaitRounds(int n) {
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (rounds.get() < n && failure.get() == null) {
                if (System.nanoTime() > deadline) {
                    fail("the other namespace's I/O stalled at " + rounds.get() + " rounds");
                }
                Thread.onSpinWait();
            }
            assertNull(failure.get(), () -> "the other namespace's I/O failed: " + failure.get());
        }

        @Override
        public void close() throws InterruptedException {
            stop = true;
            thread.join(10_000);
            assertNull(failure.get(), () -> "the other namespace's I/O failed: " + failure.get());
        }
    }

    @Test
    void anAddedNamespaceAppearsToTheGuestWhileIoRunsOnAnother() throws Exception {
        try (Fixture f = Fixture.of("queues", "2", "namespaces", "ram:8M")) {
            f.driver.bringUp(2, 16, false);
            assertEquals(List.of(1), activeList(f));
            try (Traffic other = new Traffic(f, f.driver.ioQueue(1), 1)) {
                other.awaitRounds(3);
                Object added = call(f, "namespace_add", "namespace", "ram:4M");
                assertEquals(Map.of("nsid", 2L, "size_bytes", 4L << 20, "block_size", 512L), added);

                assertEquals(List.of(2), handleNotice(f, 1), "log 04h names the new NSID");
                assertEquals(List.of(1, 2), activeList(f), "Identify CNS 02h lists it");
                assertEquals(8192, nsze(f, 2), "NSZE: 4 MiB of 512-byte blocks");
                assertArrayEquals(new long[] {8192, 8192}, ncapNuse(f, 2));
                NamespaceCommands management = new NamespaceCommands(f.driver);
                assertEquals(12L << 20, management.tnvmcap(), "TNVMCAP: the namespaces' sum, as at start");
                assertEquals(0, management.unvmcap(), "nothing for the guest to create from, as before");
                HostQueue q = f.driver.ioQueue(2);
                writeAndReadBack(f, q, 2, 0, 11);
                writeAndReadBack(f, q, 2, 8184, 12); // its last 4 KiB
                assertEquals(0x80, q.execute(Command.read(2, 8192, 1, f.host.allocatePages(1), 0)).sc(),
                        "LBA Out of Range past its end");
                int before = other.rounds.get();
                other.awaitRounds(before + 3); // the other namespace's I/O went on throughout
            }
            List<Map<String, Object>> listed = list(f);
            assertEquals(List.of("ram:8M", "ram:4M"), listed.stream().map(m -> m.get("spec")).toList());
            assertEquals(List.of(true, true), listed.stream().map(m -> m.get("attached")).toList());
            assertEquals(List.of(8L << 20, 4L << 20), listed.stream().map(m -> m.get("size_bytes")).toList());

            Object third = call(f, "namespace_add", "namespace", "null:1G@4096", "nsid", 7L);
            assertEquals(Map.of("nsid", 7L, "size_bytes", 1L << 30, "block_size", 4096L), third, "the NSID asked for");
            assertEquals(List.of(7), handleNotice(f, 2));
            assertEquals(List.of(1, 2, 7), activeList(f));
            assertEquals((1L << 30) / 4096, nsze(f, 7));
            noEventBeyond(f, 2);
        }
    }

    /**
     * A controller that started with RAM only told its guest there is no volatile write cache (Identify VWC = 0,
     * fixed while it runs), so the guest never flushes: a file namespace added later writes through.
     */
    @Test
    void aFileNamespaceAddedWithoutAdvertisedCacheWritesThrough() throws Exception {
        for (String engine : List.of("sync", "threads")) {
            try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M", "io-engine", engine)) {
                f.driver.bringUp(1, 16, false);
                assertEquals(0, f.driver.identify(0x01, 0)[525] & 1, "VWC: no volatile write cache");
                call(f, "namespace_add", "namespace", "file:" + dir.resolve(engine + ".raw") + ":4M");
                assertEquals(List.of(2), handleNotice(f, 1));
                long syncs = f.stat("ns2.syncs");
                writeAndReadBack(f, f.driver.ioQueue(1), 2, 0, 8);
                assertEquals(1, f.stat("ns2.writes.through"), engine + ": the write was made durable before it completed");
                assertTrue(f.stat("ns2.syncs") > syncs, engine);
                writeAndReadBack(f, f.driver.ioQueue(1), 1, 0, 9);
                assertEquals(0, f.stat("ns1.writes.through"), "a RAM namespace has no cache to write through");
            }
        }
    }

    @Test
    void aRemovedNamespaceFinishesItsCommandsInFlightThenIsFlushedAndClosed() throws Exception {
        List<ProbeBackend> probes = new ArrayList<>();
        try (Fixture f = new Fixture(Map.of("queues", "2", "namespaces", "ram:8M"), 64L << 20, spec -> {
            ProbeBackend p = new ProbeBackend(spec.open());
            probes.add(p);
            return p;
        })) {
            f.driver.bringUp(2, 16, false);
            assertEquals(Map.of("nsid", 2L, "size_bytes", 4L << 20, "block_size", 512L),
                    call(f, "namespace_add", "namespace", "ram:4M"));
            assertEquals(List.of(2), handleNotice(f, 1));
            ProbeBackend removed = probes.get(1);
            HostQueue q1 = f.driver.ioQueue(1), q2 = f.driver.ioQueue(2);
            writeAndReadBack(f, q1, 2, 16, 5);

            removed.holdNextRead();
            long buf = f.host.allocatePages(1);
            q1.submit(Command.read(2, 16, 8, buf, 0));
            removed.awaitHeldRead();
            AtomicReference<Object> result = new AtomicReference<>();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread remover = Thread.ofPlatform().start(() -> {
                try {
                    result.set(call(f, "namespace_remove", "nsid", 2L));
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            while (f.controller.namespace(2) != null) {
                assertTrue(System.nanoTime() < deadline, "the namespace never left the table");
                Thread.onSpinWait();
            }
            assertEquals(0x0B, q2.execute(Command.read(2, 0, 1, f.host.allocatePages(1), 0)).sc(),
                    "a command after the removal: Invalid Namespace or Format");
            assertFalse(removed.closed, "not closed while its read is in flight");
            removed.release();
            Completion held = q1.awaitCompletions(1, Duration.ofSeconds(5)).getFirst();
            assertTrue(held.ok(), "the command in flight completes normally: " + held);
            assertArrayEquals(pattern(5, 4096), get(f, buf, 4096), "with the data");
            remover.join(10_000);
            assertNull(failure.get());
            assertEquals(Map.of("nsid", 2L, "flushed", true), result.get());
            assertTrue(removed.closed && removed.flushedBeforeClose, "flushed, then closed");
            assertFalse(removed.closedUnderCommand);

            assertEquals(List.of(2), handleNotice(f, 2), "the guest is told");
            assertEquals(List.of(1), activeList(f));
            assertArrayEquals(new byte[4096], f.driver.identify(0x00, 2), "NSID 2 is inactive now");
            assertEquals(0x0B, q1.execute(Command.write(2, 0, 1, buf, 0)).sc());
            writeAndReadBack(f, q1, 1, 0, 6);
            assertEquals(List.of(1L), list(f).stream().map(m -> m.get("nsid")).toList());
            assertFalse(probes.get(0).closed, "the other namespace is untouched");
        }
    }

    /** Asynchronous operations outlive their batch: the removal waits for the last of them before the close. */
    @Test
    void aRemovalWaitsForTheAsynchronousOperationsInFlight() throws Exception {
        HeldBackend[] held = new HeldBackend[1];
        try (Fixture f = new Fixture(Map.of("queues", "1", "namespaces", "ram:8M,ram:4M", "io-engine", "threads"),
                64L << 20, spec -> spec.size() == 4L << 20 ? held[0] = new HeldBackend(spec.open()) : spec.open())) {
            f.driver.bringUp(1, 16, false);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            q.queue(Command.read(2, 0, 1, buf, 0));
            q.queue(Command.write(2, 1, 1, buf, 0));
            q.ringSq();
            List<HeldBackend.Op> ops = held[0].awaitHeld(2);
            AtomicReference<Object> result = new AtomicReference<>();
            Thread remover = Thread.ofPlatform().start(() -> {
                try {
                    result.set(call(f, "namespace_remove", "nsid", 2L));
                } catch (ControlException e) {
                    result.set(e);
                }
            });
            long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            while (f.controller.namespace(2) != null) {
                assertTrue(System.nanoTime() < deadline, "the namespace never left the table");
                Thread.onSpinWait();
            }
            held[0].complete(ops.get(0));
            assertFalse(held[0].closed(), "one operation is still in flight");
            held[0].complete(ops.get(1));
            remover.join(10_000);
            assertEquals(Map.of("nsid", 2L, "flushed", true), result.get());
            assertTrue(held[0].closed());
            assertFalse(held[0].closedWithOperationsInFlight());
            assertTrue(q.awaitCompletions(2, Duration.ofSeconds(5)).stream().allMatch(Completion::ok),
                    "the commands accepted before the removal complete normally");
            assertEquals(List.of(2), handleNotice(f, 1));
        }
    }

    @Test
    void aFailedFlushOnRemovalIsReported() throws Exception {
        List<ProbeBackend> probes = new ArrayList<>();
        try (Fixture f = new Fixture(Map.of("queues", "1", "namespaces", "ram:8M,ram:8M"), 64L << 20, spec -> {
            ProbeBackend p = new ProbeBackend(spec.open());
            probes.add(p);
            return p;
        })) {
            f.driver.bringUp(1, 16, false);
            probes.get(1).failFlush = true;
            assertEquals(Map.of("nsid", 2L, "flushed", false), call(f, "namespace_remove", "nsid", 2L));
            assertTrue(probes.get(1).closed, "removed and closed all the same");
            assertEquals(List.of(2), handleNotice(f, 1));
        }
    }

    @Test
    void ramNamespaceGrowsAndShrinksWhileTheGuestRuns() throws Exception {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M")) {
            f.driver.bringUp(1, 16, false);
            HostQueue q = f.driver.ioQueue(1);
            writeAndReadBack(f, q, 1, 16376, 1); // the last 4 KiB of 8 MiB

            assertEquals(Map.of("nsid", 1L, "size_bytes", 16L << 20, "blocks", 32768L),
                    call(f, "namespace_resize", "nsid", 1L, "size", "16M"));
            assertEquals(List.of(1), handleNotice(f, 1));
            assertEquals(32768, nsze(f, 1), "Linux revalidates the capacity from NSZE");
            assertArrayEquals(new long[] {32768, 32768}, ncapNuse(f, 1));
            assertArrayEquals(pattern(1, 4096), read(f, q, 1, 16376), "the old data stays");
            assertArrayEquals(new byte[4096], read(f, q, 1, 20000), "the grown range reads zero");
            writeAndReadBack(f, q, 1, 32760, 2); // beyond the old end

            assertEquals(Map.of("nsid", 1L, "size_bytes", 4L << 20, "blocks", 8192L),
                    call(f, "namespace_resize", "nsid", 1L, "size", 4L << 20));
            assertEquals(List.of(1), handleNotice(f, 2));
            assertEquals(8192, nsze(f, 1));
            NamespaceCommands management = new NamespaceCommands(f.driver);
            assertEquals(4L << 20, management.tnvmcap(), "TNVMCAP follows the host's resize");
            assertEquals(0, management.unvmcap());
            assertEquals(4L << 20, java.nio.ByteBuffer.wrap(f.driver.identify(0x00, 1))
                    .order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong(48), "NVMCAP");
            assertEquals(0x80, q.execute(Command.read(1, 8192, 1, f.host.allocatePages(1), 0)).sc(),
                    "LBA Out of Range past the new end");
            assertEquals(List.of("ram:4M"), list(f).stream().map(m -> m.get("spec")).toList());

            call(f, "namespace_resize", "nsid", 1L, "size", "16M");
            assertEquals(List.of(1), handleNotice(f, 3));
            assertArrayEquals(new byte[4096], read(f, q, 1, 16376), "what the shrink dropped reads zero when grown again");
            assertArrayEquals(new byte[4096], read(f, q, 1, 32760));

            assertEquals(Map.of("nsid", 1L, "size_bytes", 16L << 20, "blocks", 32768L),
                    call(f, "namespace_resize", "nsid", 1L, "size", "16M"), "the same size: nothing to do");
            noEventBeyond(f, 3);
        }
    }

    @Test
    void nullNamespaceResizesBothWaysWithoutConfirmation() throws Exception {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "null:1G@4096")) {
            f.driver.bringUp(1, 16, false);
            assertEquals(Map.of("nsid", 1L, "size_bytes", 2L << 30, "blocks", (2L << 30) / 4096),
                    call(f, "namespace_resize", "nsid", 1L, "size", "2G"));
            assertEquals(List.of(1), handleNotice(f, 1));
            assertEquals((2L << 30) / 4096, nsze(f, 1));
            assertEquals(Map.of("nsid", 1L, "size_bytes", 512L << 20, "blocks", (512L << 20) / 4096),
                    call(f, "namespace_resize", "nsid", 1L, "size", "512M"), "a null disk holds no data to lose");
            assertEquals(List.of(1), handleNotice(f, 2));
            assertEquals((512L << 20) / 4096, nsze(f, 1));
            assertEquals(List.of("null:512M@4096"), list(f).stream().map(m -> m.get("spec")).toList());
        }
    }

    @Test
    void fileNamespaceGrowsWithFtruncateAndShrinksOnlyWhenConfirmed() throws Exception {
        Path image = dir.resolve("a.raw");
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "file:" + image + ":8M")) {
            f.driver.bringUp(1, 16, false);
            HostQueue q = f.driver.ioQueue(1);
            writeAndReadBack(f, q, 1, 16376, 3);

            call(f, "namespace_resize", "nsid", 1L, "size", "16M");
            assertEquals(16L << 20, Files.size(image), "the file grew");
            assertEquals(List.of(1), handleNotice(f, 1));
            assertEquals(32768, nsze(f, 1));
            assertArrayEquals(pattern(3, 4096), read(f, q, 1, 16376));
            assertArrayEquals(new byte[4096], read(f, q, 1, 24000), "a hole past the old end");
            writeAndReadBack(f, q, 1, 32760, 4);
            assertEquals(List.of("file:" + image), list(f).stream().map(m -> m.get("spec")).toList());

            ControlException e = assertThrows(ControlException.class,
                    () -> call(f, "namespace_resize", "nsid", 1L, "size", "4M"));
            assertEquals(ControlException.Kind.INVALID_PARAMS, e.kind());
            assertTrue(e.getMessage().contains("\"shrink\": true"), e.getMessage());
            assertEquals(16L << 20, Files.size(image), "an unconfirmed shrink changes nothing");
            assertEquals(32768, nsze(f, 1));
            noEventBeyond(f, 1);

            call(f, "namespace_resize", "nsid", 1L, "size", "4M", "shrink", true);
            assertEquals(4L << 20, Files.size(image), "truncated once the commands on the old size were done");
            assertEquals(List.of(1), handleNotice(f, 2));
            assertEquals(8192, nsze(f, 1));
            writeAndReadBack(f, q, 1, 8184, 5);
        }
    }
}
