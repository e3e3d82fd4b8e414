package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.pci.GuestMemoryException;
import io.javadevices.pci.testkit.TestHost;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Format NVM (80h, NVMe 1.4 §5.23) and the two LBA formats of Identify Namespace (512 and 4096 bytes), driven as
 * nvme-cli's {@code format} and Linux do: the admin command, then (effects NCC) a rescan with Identify
 * Namespace, whose FLBAS, LBADS and NSZE the block device follows.
 */
class FormatNvmTest {
    /** CDW10 fields: LBAF 3:0, MSET 4, PI 7:5, PIL 8, SES 11:9. */
    private static final int MSET = 1 << 4, PIL = 1 << 8;
    private static final int NS_CHANGED_DW0 = 0x04_00_02;

    private static int pi(int type) {
        return type << 5;
    }

    private static int ses(int setting) {
        return setting << 9;
    }

    private static Completion format(LinuxLikeDriver d, int nsid, int cdw10) {
        return d.admin(Command.of(0x80).nsid(nsid).cdw(10, cdw10));
    }

    private static ByteBuffer identifyNs(LinuxLikeDriver d, int nsid) {
        return ByteBuffer.wrap(d.identify(0x00, nsid)).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** LBADS of the format FLBAS names, as nvme_update_ns_info reads it. */
    private static int lbads(ByteBuffer id) {
        return id.get(128 + 4 * (id.get(26) & 0xF) + 2);
    }

    private static void assertStatus(Completion c, int sct, int sc) {
        assertEquals(sct, c.sct(), c.toString());
        assertEquals(sc, c.sc(), c.toString());
    }

    private static byte[] pattern(long seed, int length) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static void put(TestHost host, long address, byte[] data) {
        try {
            host.memory().write(address, data, 0, data.length);
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
    }

    private static byte[] get(TestHost host, long address, int length) {
        byte[] out = new byte[length];
        try {
            host.memory().read(address, out, 0, length);
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
        return out;
    }

    /** Writes {@code data} (whole pages) at {@code slba} of namespace {@code nsid}. */
    private static void write(Fixture f, int nsid, long slba, int blocks, byte[] data) {
        long buf = f.host.allocatePages(data.length / 4096);
        put(f.host, buf, data);
        Completion c = f.driver.ioQueue(1).execute(Command.write(nsid, slba, blocks, buf, data.length > 4096 ? buf + 4096 : 0));
        assertTrue(c.ok(), c.toString());
    }

    private static byte[] read(Fixture f, int nsid, long slba, int blocks, int bytes) {
        long buf = f.host.allocatePages(Math.max(1, bytes / 4096));
        Completion c = f.driver.ioQueue(1).execute(Command.read(nsid, slba, blocks, buf, bytes > 4096 ? buf + 4096 : 0));
        assertTrue(c.ok(), c.toString());
        return get(f.host, buf, bytes);
    }

    @Test
    void identifyListsBothFormatsTheCurrentOneAndWhatEachBackendDoes(@TempDir Path dir) {
        String file = "file:" + dir.resolve("disk.img") + ":8M";
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M,null:8M@4096," + file)) {
            f.driver.bringUp(1, 16, false);
            int[] flbas = {0, 1, 0};
            // Deallocated blocks read zeroes on ram:, null: and a file whose file system punches holes (ext4, XFS, tmpfs).
            int[] dlfeat = {0x09, 0x09, 0x09};
            for (int nsid = 1; nsid <= 3; nsid++) {
                ByteBuffer id = identifyNs(f.driver, nsid);
                assertEquals(1, id.get(25), "NLBAF (0-based): two formats");
                assertEquals(9, id.get(128 + 2), "LBAF0 LBADS: 512 bytes");
                assertEquals(12, id.get(132 + 2), "LBAF1 LBADS: 4096 bytes");
                assertEquals(0, id.getShort(128) | id.getShort(132), "no metadata in either format");
                assertEquals(0, id.getInt(136), "no LBAF2");
                assertEquals(flbas[nsid - 1], id.get(26), "FLBAS of ns " + nsid);
                long blocks = (8L << 20) >> lbads(id);
                assertEquals(blocks, id.getLong(0), "NSZE");
                assertEquals(blocks, id.getLong(8), "NCAP");
                assertEquals(blocks, id.getLong(16), "NUSE");
                assertEquals(0, id.get(24), "NSFEAT: no thin provisioning, atomics, DULBE, NGUID reuse or I/O hints");
                assertEquals(dlfeat[nsid - 1], id.get(33), "DLFEAT of ns " + nsid);
                assertEquals(0, id.get(29) | id.get(28) | id.get(27), "DPS, DPC, MC: no protection, no metadata");
            }
            // NSID FFFFFFFFh: what every namespace can be formatted to (nvme-cli create-ns --block-size).
            ByteBuffer common = identifyNs(f.driver, 0xFFFF_FFFF);
            assertEquals(1, common.get(25));
            assertEquals(9, common.get(130));
            assertEquals(12, common.get(134));
            assertEquals(0, common.getLong(0), "no size: not a namespace");

            ByteBuffer ctrl = ByteBuffer.wrap(f.driver.identify(0x01, 0)).order(ByteOrder.LITTLE_ENDIAN);
            assertEquals(2, ctrl.getShort(256) & 2, "OACS bit 1: Format NVM");
            assertEquals(0, ctrl.get(524), "FNA: per namespace, erase per namespace, no cryptographic erase");
            assertTrue(f.driver.admin(Command.getLogPage(0x05, 0, 4096, f.driver.dataPage())).ok());
            int effects = ByteBuffer.wrap(f.driver.readData(4096)).order(ByteOrder.LITTLE_ENDIAN).getInt(4 * 0x80);
            assertEquals(0x1 | 0x2 | 0x4, effects & 0x1F, "CSUPP, LBCC, NCC; no NIC, no CCC");
            assertEquals(2, (effects >>> 16) & 7, "CSE 010b: nothing else runs meanwhile");
        }
    }

    @Test
    void format512To4096AndBackKeepsTheBytesWithoutErase() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M")) {
            f.driver.bringUp(1, 16, false);
            byte[] first = pattern(1, 8192);
            write(f, 1, 16, 16, first);                             // 512-byte LBAs 16..31 = bytes 8 KiB..16 KiB

            assertTrue(format(f.driver, 1, 1).ok());                // LBAF1, SES 000b
            assertEquals(NS_CHANGED_DW0, f.driver.awaitAsyncEvent(Duration.ofSeconds(5)), "the namespace changed");
            ByteBuffer id = identifyNs(f.driver, 1);
            assertEquals(1, id.get(26), "FLBAS");
            assertEquals(12, lbads(id));
            assertEquals(2048, id.getLong(0), "NSZE in 4096-byte blocks");
            assertArrayEquals(first, read(f, 1, 2, 2, 8192), "the same bytes, now 4096-byte LBAs 2..3");
            assertStatus(f.driver.ioQueue(1).execute(Command.read(1, 2048, 1, f.host.allocatePages(1), 0)), 0, 0x80);

            byte[] second = pattern(2, 4096);
            write(f, 1, 2047, 1, second);                           // the last 4096-byte block
            assertTrue(format(f.driver, 1, 0).ok());                // back to LBAF0
            id = identifyNs(f.driver, 1);
            assertEquals(0, id.get(26));
            assertEquals(16384, id.getLong(0), "NSZE in 512-byte blocks");
            assertArrayEquals(second, read(f, 1, 16376, 8, 4096), "the last 4 KiB, now 512-byte LBAs 16376..16383");
            assertArrayEquals(first, read(f, 1, 16, 16, 8192));
        }
    }

    @Test
    void userDataEraseLeavesZeroesInEveryBackend(@TempDir Path dir) {
        String file = "file:" + dir.resolve("disk.img") + ":4M";
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:4M," + file)) {
            f.driver.bringUp(1, 16, false);
            for (int nsid = 1; nsid <= 2; nsid++) {
                byte[] data = pattern(nsid, 8192);
                write(f, nsid, 0, 16, data);
                write(f, nsid, 8176, 16, data);                         // the last 8 KiB
                long syncs = f.stat("ns" + nsid + ".syncs");
                assertTrue(format(f.driver, nsid, 1 | ses(1)).ok());    // LBAF1, User Data Erase
                if (nsid == 2) {
                    assertEquals(syncs + 1, f.stat("ns2.syncs"), "the file's erase is made durable");
                }
                assertEquals(12, lbads(identifyNs(f.driver, nsid)));
                assertArrayEquals(new byte[8192], read(f, nsid, 0, 2, 8192), "ns " + nsid + " erased at the start");
                assertArrayEquals(new byte[8192], read(f, nsid, 1022, 2, 8192), "ns " + nsid + " erased at the end");

                write(f, nsid, 5, 1, pattern(9, 4096));
                assertTrue(format(f.driver, nsid, ses(1)).ok());        // back to 512 bytes, erasing again
                assertEquals(8192, identifyNs(f.driver, nsid).getLong(0));
                assertArrayEquals(new byte[4096], read(f, nsid, 40, 8, 4096), "ns " + nsid + " erased again");
            }
        }
    }

    @Test
    void aFormatClearsWriteUncorrectableMarks() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M")) {
            f.driver.bringUp(1, 16, false);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            assertTrue(q.execute(Command.of(0x04).nsid(1).slba(0).cdw(12, 7)).ok()); // Write Uncorrectable 0..7
            assertStatus(q.execute(Command.read(1, 0, 8, buf, 0)), 2, 0x81);          // Unrecovered Read Error
            assertTrue(format(f.driver, 1, 0).ok(), "LBAF0 again, no erase");
            assertTrue(q.execute(Command.read(1, 0, 8, buf, 0)).ok(), "every block was formatted: no marks left");
        }
    }

    @Test
    void invalidFieldsChangeNothing() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M")) {
            f.driver.bringUp(1, 16, false);
            byte[] data = pattern(3, 4096);
            write(f, 1, 0, 8, data);
            assertStatus(format(f.driver, 1, 2), 1, 0x0A);               // LBAF2: no such format → Invalid Format
            assertStatus(format(f.driver, 1, 15), 1, 0x0A);
            assertStatus(format(f.driver, 1, 1 | MSET), 1, 0x0A);        // metadata settings, no metadata
            assertStatus(format(f.driver, 1, 1 | pi(1)), 1, 0x0A);       // PI type 1 needs metadata
            assertStatus(format(f.driver, 1, 1 | pi(3)), 1, 0x0A);
            assertStatus(format(f.driver, 1, 1 | PIL), 1, 0x0A);
            assertStatus(format(f.driver, 1, 1 | pi(4)), 0, 0x02);       // reserved PI value → Invalid Field
            assertStatus(format(f.driver, 1, 1 | ses(2)), 0, 0x02);      // Cryptographic Erase: FNA bit 2 = 0
            assertStatus(format(f.driver, 1, 1 | ses(7)), 0, 0x02);      // reserved SES
            for (int sesValue = 3; sesValue <= 6; sesValue++) {
                assertStatus(format(f.driver, 1, ses(sesValue)), 0, 0x02);
            }
            assertTrue(format(f.driver, 1, 1 | ses(2)).status() >>> 14 != 0, "DNR: retrying cannot help");
            assertEquals(0, identifyNs(f.driver, 1).get(26), "still LBAF0");
            assertArrayEquals(data, read(f, 1, 0, 8, 4096), "nothing erased");
            assertEquals(-1, f.driver.awaitAsyncEvent(Duration.ZERO), "no namespace change reported");
            assertTrue(f.driver.asyncCompletions().isEmpty());
        }
    }

    @Test
    void aSizeThatIsNotWholeNewBlocksIsInvalidFormat() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:1049088")) { // 1 MiB + 512 bytes
            f.driver.bringUp(1, 16, false);
            assertEquals(2049, identifyNs(f.driver, 1).getLong(0));
            assertStatus(format(f.driver, 1, 1), 1, 0x0A);
            assertStatus(format(f.driver, 1, 1 | ses(1)), 1, 0x0A);
            assertEquals(2049, identifyNs(f.driver, 1).getLong(0), "unchanged");
            assertTrue(format(f.driver, 1, 0).ok(), "512-byte blocks fit");
        }
    }

    @Test
    void broadcastFormatsEveryAttachedNamespaceOrNone() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M,ram:4M,ram:1049088")) {
            f.driver.bringUp(1, 16, false);
            byte[] data = pattern(4, 4096);
            write(f, 1, 0, 8, data);
            // ns 3 cannot take 4096-byte blocks: nothing is formatted, nothing erased.
            assertStatus(format(f.driver, 0xFFFF_FFFF, 1 | ses(1)), 1, 0x0A);
            for (int nsid = 1; nsid <= 3; nsid++) {
                assertEquals(0, identifyNs(f.driver, nsid).get(26));
            }
            assertArrayEquals(data, read(f, 1, 0, 8, 4096));

            assertTrue(f.controller.namespaceTable().setAttached(3, false));
            assertTrue(format(f.driver, 0xFFFF_FFFF, 1 | ses(1)).ok(), "every attached namespace fits now");
            assertEquals(2048, identifyNs(f.driver, 1).getLong(0));
            assertEquals(1024, identifyNs(f.driver, 2).getLong(0));
            assertArrayEquals(new byte[4096], read(f, 1, 0, 1, 4096), "erased");
            assertTrue(f.controller.namespaceTable().setAttached(3, true));
            assertEquals(0, identifyNs(f.driver, 3).get(26), "a detached namespace is not formatted");
        }
    }

    @Test
    void wrongOrInactiveNamespace() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:4M,ram:4M", "max-namespaces", "2")) {
            f.driver.bringUp(1, 16, false);
            assertStatus(format(f.driver, 0, 1), 0, 0x0B);               // NSID 0 → Invalid Namespace or Format
            assertStatus(format(f.driver, 3, 1), 0, 0x0B);               // beyond NN
            assertStatus(format(f.driver, 0xFFFF_FFFE, 1), 0, 0x0B);
            assertTrue(f.controller.namespaceTable().setAttached(2, false));
            assertStatus(format(f.driver, 2, 1), 0, 0x02);               // valid but inactive → Invalid Field (§6.1.5)
            assertEquals(9, f.controller.namespaceTable().allocated(2).lbaShift(), "untouched");
        }
    }

    // ------------------------------------------------------------------ I/O around a format

    private static final class HeldFixture implements AutoCloseable {
        final TestHost host = TestHost.heap(64L << 20);
        GatedBackend backend;
        final NvmeController controller;
        final LinuxLikeDriver driver;

        HeldFixture() {
            Map<String, String> o = new HashMap<>(Map.of("queues", "1", "namespaces", "ram:8M"));
            controller = host.attach(ctx -> new NvmeController(NvmeOptions.parse(o), ctx,
                    spec -> backend = new GatedBackend(spec.open())));
            driver = new LinuxLikeDriver(host);
            driver.bringUp(1, 16, false);
        }

        @Override
        public void close() {
            backend.release();
            host.close();
        }
    }

    @Test
    void ioDuringAFormatIsFormatInProgressAndAfterItSeesTheNewFormat() throws Exception {
        try (HeldFixture f = new HeldFixture()) {
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            put(f.host, buf, pattern(5, 4096));
            assertTrue(q.execute(Command.write(1, 0, 8, buf, 0)).ok());

            f.backend.armZeroes();
            CompletableFuture<Completion> formatting = CompletableFuture.supplyAsync(
                    () -> format(f.driver, 1, 1 | ses(1)));
            f.backend.awaitEntered();                                        // the erase is under way
            for (Command c : new Command[] {Command.read(1, 0, 1, buf, 0), Command.write(1, 0, 1, buf, 0),
                    Command.flush(1), Command.of(0x08).nsid(1)}) {
                Completion during = q.execute(c);
                assertStatus(during, 0, 0x84);                               // Format In Progress
                assertEquals(0, during.status() >>> 14, "no DNR: the host may retry after the format");
            }
            assertEquals(0x0B, q.execute(Command.read(2, 0, 1, buf, 0)).sc(), "other NSIDs: as before");
            assertFalse(formatting.isDone());

            f.backend.release();
            assertTrue(formatting.get(10, TimeUnit.SECONDS).ok());
            Completion after = q.execute(Command.read(1, 0, 1, buf, 0));    // one block is 4096 bytes now
            assertTrue(after.ok(), after.toString());
            assertArrayEquals(new byte[4096], get(f.host, buf, 4096), "erased");
            assertEquals(0x80, q.execute(Command.read(1, 2048, 1, buf, 0)).sc(), "NSZE is 2048 blocks now");
        }
    }

    @Test
    void aFailedEraseIsInternalErrorAndKeepsTheOldFormat() {
        try (HeldFixture f = new HeldFixture()) {
            f.backend.failZeroes(true);
            assertStatus(format(f.driver, 1, 1 | ses(1)), 0, 0x06);
            assertEquals(1L, f.controller.errorLog().count(), "logged in the error log");
            assertEquals(0, identifyNs(f.driver, 1).get(26), "still LBAF0");
            long buf = f.host.allocatePages(1);
            assertTrue(f.driver.ioQueue(1).execute(Command.read(1, 0, 1, buf, 0)).ok(), "no longer formatting");
            f.backend.failZeroes(false);
            assertTrue(format(f.driver, 1, 1 | ses(1)).ok(), "the host formats again");
        }
    }

    @Test
    void aReadStartedBeforeAFormatFinishesOnTheOldFormat() throws Exception {
        try (HeldFixture f = new HeldFixture()) {
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(2);
            byte[] data = pattern(6, 8192);
            put(f.host, buf, data);
            assertTrue(q.execute(Command.write(1, 0, 16, buf, buf + 4096)).ok());

            long into = f.host.allocatePages(1);
            f.backend.arm(true);
            int cid = q.submit(Command.read(1, 9, 1, into, 0));             // 512-byte LBA 9: bytes 4608..5119
            f.backend.awaitEntered();
            assertTrue(format(f.driver, 1, 1).ok(), "the format does not wait for the host's stray read");
            f.backend.release();
            Completion read = q.awaitCompletions(1, Duration.ofSeconds(10)).getFirst();
            assertEquals(cid, read.cid());
            assertTrue(read.ok(), read.toString());
            byte[] got = get(f.host, into, 4096);
            byte[] want = new byte[4096];
            System.arraycopy(data, 4608, want, 0, 512);                      // one old 512-byte block, nothing more
            assertArrayEquals(want, got);
        }
    }
}
