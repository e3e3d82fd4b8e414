package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.nvme.pool.PoolManifest;
import io.javadevices.pci.GuestMemoryException;
import io.javadevices.pci.testkit.TestHost;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A directory pool across controller restarts: the manifest brings back the same NSIDs, sizes, formats,
 * attachment and identifiers (and the data in the namespace files); a damaged manifest or a missing file
 * refuses the start instead of dropping namespaces.
 */
class PoolPersistenceTest {
    private static final long MIB = 1L << 20;

    @TempDir
    Path dir;

    private TestHost host;
    private NvmeController controller;
    private LinuxLikeDriver driver;
    private NamespaceCommands ns;

    private Map<String, String> options(String... extra) {
        Map<String, String> o = new HashMap<>(Map.of("queues", "1", "serial", "POOL1", "pool", "dir:" + dir.resolve("pool") + ":64M"));
        for (int i = 0; i < extra.length; i += 2) {
            o.put(extra[i], extra[i + 1]);
        }
        return o;
    }

    private void start(Map<String, String> options) {
        host = TestHost.heap(32L << 20);
        controller = host.attach(ctx -> new NvmeController(NvmeOptions.parse(options), ctx));
        driver = new LinuxLikeDriver(host);
        driver.bringUp(1, 16, false);
        ns = new NamespaceCommands(driver);
    }

    private void stop() {
        host.close();
        host = null;
    }

    @AfterEach
    void close() {
        if (host != null) {
            host.close();
        }
    }

    /** What a restart must keep of a namespace: its Identify Namespace data (CNS 11h: size, format, NGUID, EUI-64). */
    private byte[] identity(int nsid) {
        return driver.identify(0x11, nsid);
    }

    private void put(long address, byte[] data) {
        try {
            host.memory().write(address, data, 0, data.length);
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
    }

    private byte[] get(long address, int length) {
        byte[] out = new byte[length];
        try {
            host.memory().read(address, out, 0, length);
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
        return out;
    }

    @Test
    void restartPresentsTheSameNamespacesIdentifiersFormatsAndData() throws Exception {
        Path seed = dir.resolve("seed.img");
        Map<String, String> o = options("namespaces", "file:" + seed + ":8M");
        start(o);
        assertEquals(64 * MIB, ns.tnvmcap());
        assertEquals(56 * MIB, ns.unvmcap(), "the command-line file comes out of the pool");
        int a = ns.create(16 * MIB / 4096, 1);
        int b = ns.create(4 * MIB / 512, 0);
        assertEquals(List.of(1, 2, 3), List.of(1, a, b));
        assertTrue(ns.attach(a).ok());
        byte[] data = new byte[8192];
        new Random(7).nextBytes(data);
        long buf = host.allocatePages(2);
        put(buf, data);
        HostQueue q = driver.ioQueue(1);
        assertTrue(q.execute(Command.write(a, 5, 2, buf, buf + 4096)).ok());
        assertTrue(q.execute(Command.flush(a)).ok());
        byte[][] before = {identity(1), identity(a), identity(b)};
        byte[] descriptors = driver.identify(0x03, a);
        long unvmcap = ns.unvmcap();
        assertEquals(36 * MIB, unvmcap);
        assertTrue(Files.exists(dir.resolve("pool").resolve(PoolManifest.FILE)));
        stop();

        start(o); // the same command line: the manifest is the table now, the seed is not added twice
        assertEquals(List.of(1, a, b), ns.list(0x10));
        assertEquals(List.of(1, a), ns.list(0x02), "attachment kept: " + b + " still detached");
        assertArrayEquals(before[0], identity(1));
        assertArrayEquals(before[1], identity(a), "size, format and identifiers of a created namespace");
        assertArrayEquals(before[2], identity(b));
        assertArrayEquals(descriptors, driver.identify(0x03, a), "EUI-64, NGUID, UUID");
        assertEquals(12, ns.lbads(a));
        assertEquals(unvmcap, ns.unvmcap());
        long back = host.allocatePages(2);
        assertTrue(driver.ioQueue(1).execute(Command.read(a, 5, 2, back, back + 4096)).ok());
        assertArrayEquals(data, get(back, 8192), "the data of a created namespace survives");
        // Deletion: a pool-created file goes with its namespace, a command-line file stays.
        Path created;
        try (var files = Files.list(dir.resolve("pool"))) {
            created = files.filter(p -> p.getFileName().toString().startsWith("ns" + a + "-")).findFirst().orElseThrow();
        }
        assertTrue(ns.delete(a).ok());
        assertTrue(ns.delete(1).ok());
        controller.close(); // waits for pending releases
        assertFalse(Files.exists(created), "the pool's file of a deleted namespace is removed");
        assertTrue(Files.exists(seed), "a command-line file is never deleted");
        stop();
        start(o);
        assertEquals(List.of(b), ns.list(0x10), "deletions persisted");
        assertEquals(60 * MIB, ns.unvmcap());
    }

    @Test
    void aReformattedNamespaceIsRecordedWithItsNewLbaSize() {
        Map<String, String> o = options();
        start(o);
        int nsid = ns.create(8 * MIB / 512, 0);
        assertTrue(ns.attach(nsid).ok());
        byte[] ids = Arrays.copyOfRange(identity(nsid), 104, 128);
        // Format NVM to LBA format 1 (4096 bytes), as nvme-cli format --lbaf=1 sends it.
        assertTrue(driver.admin(Command.of(0x80).nsid(nsid).cdw(10, 1)).ok());
        stop();
        start(o);
        ByteBuffer idns = ByteBuffer.wrap(identity(nsid)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(8 * MIB / 4096, idns.getLong(0), "NSZE in the new blocks");
        assertEquals(12, ns.lbads(nsid));
        assertArrayEquals(ids, Arrays.copyOfRange(identity(nsid), 104, 128));
    }

    @Test
    void poolFilesNoManifestNamesAreRemovedAtStartOthersAreLeftAlone() throws IOException {
        Map<String, String> o = options();
        start(o);
        int nsid = ns.create(1024, 0);
        stop();
        Path pool = dir.resolve("pool");
        Path orphan = pool.resolve("ns9-0badc0de.img"), foreign = pool.resolve("notes.img"), lookalike = pool.resolve("ns9-x.img");
        for (Path p : List.of(orphan, foreign, lookalike)) {
            Files.write(p, new byte[512]);
        }
        start(o);
        assertEquals(List.of(nsid), ns.list(0x10));
        assertFalse(Files.exists(orphan), "a crashed create's file is removed");
        assertTrue(Files.exists(foreign) && Files.exists(lookalike), "files the pool did not name are never touched");
        try (var files = Files.list(pool)) {
            assertEquals(1, files.filter(p -> p.getFileName().toString().matches("ns[0-9]+-[0-9a-f]{8}\\.img")).count(),
                    "the namespace's own file stays");
        }
    }

    @Test
    void aSecondServerOnTheSamePoolIsRefused() {
        Map<String, String> o = options();
        start(o);
        try (TestHost other = TestHost.heap(16L << 20)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> other.attach(ctx -> new NvmeController(NvmeOptions.parse(o), ctx)));
            assertTrue(e.getMessage().contains("in use by another server"), e.getMessage());
        }
        assertEquals(64 * MIB, ns.unvmcap(), "the first server goes on");
    }

    private IllegalArgumentException refusedStart(Map<String, String> o) {
        try (TestHost other = TestHost.heap(16L << 20)) {
            return assertThrows(IllegalArgumentException.class, () -> other.attach(ctx -> new NvmeController(NvmeOptions.parse(o), ctx)));
        }
    }

    @Test
    void aCorruptManifestRefusesToStart() throws IOException {
        Map<String, String> o = options();
        start(o);
        ns.create(1024, 0);
        stop();
        Path manifest = dir.resolve("pool").resolve(PoolManifest.FILE);
        String good = Files.readString(manifest);
        Files.writeString(manifest, good.replace(" 524288 ", " 524800 ")); // a size changed: checksum mismatch
        IllegalArgumentException e = refusedStart(o);
        assertTrue(e.getMessage().contains("wrong checksum") && e.getMessage().contains("refusing to start"), e.getMessage());
        Files.writeString(manifest, good.substring(0, good.length() / 2)); // torn by hand
        e = refusedStart(o);
        assertTrue(e.getMessage().contains("not a complete pool manifest"), e.getMessage());
        Files.write(manifest, new byte[0]);
        assertTrue(refusedStart(o).getMessage().contains("pool manifest"));
        Files.writeString(manifest, good);
        start(o);
        assertEquals(List.of(1), ns.list(0x10), "the intact manifest starts again");
        stop();
        try (var files = Files.list(dir.resolve("pool"))) {
            for (Path p : files.filter(p -> p.toString().endsWith(".img")).toList()) {
                Files.delete(p);
            }
        }
        e = refusedStart(o);
        assertTrue(e.getMessage().contains("is missing"), e.getMessage());
    }

    @Test
    void manifestLinesThatDoNotParseAreRefusedEvenWithAValidChecksum() throws IOException {
        Path pool = dir.resolve("pool");
        Files.createDirectories(pool);
        String body = "javadevices-nvme-pool 1\nns 1 4096 1000 1 0 1 00:00:00 x.img\n";
        java.util.zip.CRC32 crc = new java.util.zip.CRC32();
        crc.update(body.getBytes(StandardCharsets.UTF_8));
        Files.writeString(pool.resolve(PoolManifest.FILE), body + String.format("crc32 %08x\n", crc.getValue()));
        IllegalArgumentException e = refusedStart(options());
        assertTrue(e.getMessage().contains("malformed line"), e.getMessage());
    }

    @Test
    void commandLineRamNamespacesAndOverfullPoolsAreRefused() throws IOException {
        assertTrue(refusedStart(options("namespaces", "ram:1M")).getMessage().contains("must be file: namespaces"));
        Path big = dir.resolve("big.img");
        IllegalArgumentException e = refusedStart(options("namespaces", "file:" + big + ":128M"));
        assertTrue(e.getMessage().contains("more than its size"), e.getMessage());
        try (TestHost other = TestHost.heap(16L << 20)) {
            Map<String, String> o = new HashMap<>(Map.of("namespaces", "ram:16M", "pool", "ram:8M"));
            e = assertThrows(IllegalArgumentException.class, () -> other.attach(ctx -> new NvmeController(NvmeOptions.parse(o), ctx)));
            assertTrue(e.getMessage().contains("more than the pool"), e.getMessage());
        }
        assertFalse(Files.exists(dir.resolve("pool").resolve(PoolManifest.FILE)), "a refused seed writes no manifest");
    }

    @Test
    void aFileOutsideThePoolDirectoryIsRecordedByItsPath() throws IOException {
        Path outside = dir.resolve("elsewhere").resolve("disk.img");
        Files.createDirectories(outside.getParent());
        Map<String, String> o = options("namespaces", "file:" + outside + ":4M");
        start(o);
        assertEquals(60 * MIB, ns.unvmcap());
        stop();
        String manifest = Files.readString(dir.resolve("pool").resolve(PoolManifest.FILE));
        assertTrue(manifest.contains(" " + outside.toAbsolutePath()), manifest);
        start(o);
        assertEquals(List.of(1), ns.list(0x02));
        assertEquals(4 * MIB / 512, ns.identify(0x00, 1).getLong(0), "the outside file is namespace 1 again");
    }
}
