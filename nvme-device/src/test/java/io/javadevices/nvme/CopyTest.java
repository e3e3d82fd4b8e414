package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.pci.GuestMemoryException;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static io.javadevices.nvme.GuestBytes.*;
import static org.junit.jupiter.api.Assertions.*;

/** Copy (19h, source range format 0): data, overlap, limits (MSRC, MSSRL, MCL) and every refusal. */
class CopyTest {
    /** 512-byte LBAs: the 1 MiB copy buffer is 2048 blocks (MCL), and so is MSSRL. */
    private static final int MCL_512 = 2048;

    /** Writes the source range entries (format 0: SLBA at byte 8, NLB 0-based at byte 16) at {@code list}. */
    private static void ranges(Fixture f, long list, long... slbaAndBlocks) {
        try {
            for (int i = 0; i < slbaAndBlocks.length / 2; i++) {
                f.host.memory().writeLong(list + 32L * i + 8, slbaAndBlocks[2 * i]);
                f.host.memory().write(list + 32L * i + 16, new byte[] {
                        (byte) (slbaAndBlocks[2 * i + 1] - 1), (byte) ((slbaAndBlocks[2 * i + 1] - 1) >>> 8)}, 0, 2);
            }
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
    }

    private static Command copy(int nsid, long sdlba, int rangeCount, long prp1) {
        return Command.of(0x19).nsid(nsid).slba(sdlba).cdw(12, rangeCount - 1).prp1(prp1);
    }

    private static byte[] read(Fixture f, HostQueue q, long slba, int blocks) {
        long buf = f.host.allocatePages((blocks * 512 + 4095) / 4096);
        long list = f.host.allocatePages(1);
        long[] pages = new long[(blocks * 512 + 4095) / 4096];
        for (int i = 0; i < pages.length; i++) {
            pages[i] = buf + 4096L * i;
        }
        Command r = Command.read(1, slba, blocks, 0, 0);
        f.driver.setPrps(r, pages, 0, blocks * 512, list);
        Completion c = q.execute(r);
        assertTrue(c.ok(), c.toString());
        return get(f, buf, blocks * 512);
    }

    private static void write(Fixture f, HostQueue q, long slba, byte[] data) {
        int pages = (data.length + 4095) / 4096;
        long buf = f.host.allocatePages(pages);
        put(f, buf, data);
        long list = f.host.allocatePages(1);
        long[] p = new long[pages];
        for (int i = 0; i < pages; i++) {
            p[i] = buf + 4096L * i;
        }
        Command w = Command.write(1, slba, data.length / 512, 0, 0);
        f.driver.setPrps(w, p, 0, data.length, list);
        assertTrue(q.execute(w).ok());
    }

    @Test
    void copiesSourceRangesOneAfterTheOther() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            byte[] a = pattern(1, 8 * 512), b = pattern(2, 3 * 512);
            write(f, q, 100, a);
            write(f, q, 300, b);
            long list = f.host.allocatePages(1);
            ranges(f, list, 100, 8, 300, 3, 100, 1);
            assertTrue(q.execute(copy(1, 1000, 3, list)).ok());
            byte[] want = new byte[12 * 512];
            System.arraycopy(a, 0, want, 0, a.length);
            System.arraycopy(b, 0, want, a.length, b.length);
            System.arraycopy(a, 0, want, a.length + b.length, 512);
            assertArrayEquals(want, read(f, q, 1000, 12));
            assertArrayEquals(a, read(f, q, 100, 8), "sources unchanged");
        }
    }

    @Test
    void overlappingRangesCopyWhatTheSourcesHeldBefore() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            byte[] before = pattern(3, 32 * 512);
            write(f, q, 0, before);
            long list = f.host.allocatePages(1);
            // Shift blocks 0..15 up by 4 (destination overlaps the source's tail), then a second range, 16..19, that
            // the first range's destination (4..19) overwrites: it must still be copied as it was (blocks 16..19 before).
            ranges(f, list, 0, 16, 16, 4);
            assertTrue(q.execute(copy(1, 4, 2, list)).ok());
            byte[] want = before.clone();
            System.arraycopy(before, 0, want, 4 * 512, 16 * 512);
            System.arraycopy(before, 16 * 512, want, 20 * 512, 4 * 512);
            assertArrayEquals(want, read(f, q, 0, 32));
            // Destination below the source (shift down by 2) and identical source and destination.
            ranges(f, list, 10, 8);
            assertTrue(q.execute(copy(1, 8, 1, list)).ok());
            byte[] shifted = want.clone();
            System.arraycopy(want, 10 * 512, shifted, 8 * 512, 8 * 512);
            assertArrayEquals(shifted, read(f, q, 0, 32));
            assertTrue(q.execute(copy(1, 10, 1, list)).ok());
            assertArrayEquals(shifted, read(f, q, 0, 32), "a copy onto itself changes nothing");
        }
    }

    @Test
    void limitsAreEnforced() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long list = f.host.allocatePages(2);
            long[] entries = new long[2 * 129];
            for (int i = 0; i < 129; i++) {
                entries[2 * i] = i;
                entries[2 * i + 1] = 1;
            }
            ranges(f, list, entries);
            assertTrue(q.execute(copy(1, 5000, 128, list)).ok(), "MSRC + 1 = 128 ranges");
            Completion c = q.execute(copy(1, 5000, 129, list));
            assertEquals(1, c.sct(), c.toString());
            assertEquals(0x83, c.sc(), "129 ranges: Command Size Limit Exceeded");
            assertTrue(dnr(c));
            assertEquals(0x83, q.execute(copy(1, 5000, 256, list)).sc(), "NR at its maximum");

            ranges(f, list, 0, MCL_512);
            assertTrue(q.execute(copy(1, 5000, 1, list)).ok(), "one range of MSSRL = MCL blocks");
            ranges(f, list, 0, MCL_512 + 1);
            assertEquals(0x83, q.execute(copy(1, 5000, 1, list)).sc(), "a range beyond MSSRL");
            ranges(f, list, 0, MCL_512 / 2, 8000, MCL_512 / 2 + 1);
            c = q.execute(copy(1, 5000, 2, list));
            assertEquals(0x83, c.sc(), "in total beyond MCL: " + c);
            assertEquals(1, c.sct());
        }
    }

    @Test
    void refusals() throws GuestMemoryException {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:1M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long blocks = (1 << 20) / 512;
            long list = f.host.allocatePages(1);
            write(f, q, 0, pattern(4, 4096));
            ranges(f, list, 0, 8);
            assertEquals(0x0B, q.execute(copy(2, 100, 1, list)).sc(), "wrong NSID");
            assertEquals(0x0B, q.execute(copy(0, 100, 1, list)).sc(), "NSID 0");
            Completion c = q.execute(copy(1, 100, 1, list).cdw(12, 1 << 8));
            assertEquals(0x02, c.sc(), "descriptor format 1: Invalid Field");
            assertEquals(0, c.sct());
            assertEquals(0x02, q.execute(copy(1, 100, 1, list).cdw(12, 0xF << 8)).sc(), "descriptor format 15");
            assertEquals(0x80, q.execute(copy(1, blocks - 7, 1, list)).sc(), "destination beyond the end");
            assertEquals(0x80, q.execute(copy(1, -1L, 1, list)).sc(), "destination SLBA 2^64-1");
            ranges(f, list, blocks - 4, 8);
            assertEquals(0x80, q.execute(copy(1, 100, 1, list)).sc(), "source beyond the end");
            ranges(f, list, 0, 8, -1L, 1);
            assertEquals(0x80, q.execute(copy(1, 100, 2, list)).sc(), "second source at SLBA 2^64-1");
            assertEquals(0x04, q.execute(copy(1, 100, 1, 1L << 40)).sc(), "range list outside guest memory");
            assertEquals(0x04, q.execute(copy(1, 100, 2, list + 4064).prp2(1L << 40)).sc(),
                    "second page of the range list outside guest memory");
            assertEquals(0x13, q.execute(copy(1, 100, 1, list + 2)).sc(), "range list pointer not dword aligned");
            byte[] untouched = read(f, q, 100, 8);
            assertArrayEquals(new byte[4096], untouched, "no refused copy wrote anything");

            // Marked sources fail; a copy onto marked blocks heals them.
            ranges(f, list, 0, 8);
            assertTrue(q.execute(WriteUncorrectableTest.writeUncorrectable(1, 3, 1)).ok());
            WriteUncorrectableTest.assertUnrecovered(q.execute(copy(1, 100, 1, list)), "copy from a marked block");
            assertEquals(3, WriteUncorrectableTest.newestError(f)[0]);
            assertTrue(q.execute(WriteUncorrectableTest.writeUncorrectable(1, 200, 8)).ok());
            ranges(f, list, 8, 8);
            assertTrue(q.execute(copy(1, 200, 1, list)).ok(), "copy onto marked blocks");
            assertTrue(q.execute(WriteUncorrectableTest.verify(1, 200, 8)).ok(), "healed");
        }
    }

    @Test
    void fuaMakesTheDestinationDurable() throws IOException {
        Path dir = Files.createTempDirectory("copy");
        Path file = dir.resolve("ns.img");
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "file:" + file + ":8M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            byte[] data = pattern(6, 4096);
            write(f, q, 0, data);
            long list = f.host.allocatePages(1);
            ranges(f, list, 0, 8);
            assertTrue(q.execute(copy(1, 64, 1, list)).ok());
            assertEquals(0, f.stat("ns1.writes.fua"));
            assertTrue(q.execute(copy(1, 128, 1, list).cdw(12, 1 << 30)).ok());
            assertEquals(1, f.stat("ns1.writes.fua"), "a FUA copy is synced");
            assertArrayEquals(data, Arrays.copyOfRange(Files.readAllBytes(file), 128 * 512, 136 * 512));
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
    }

    @Test
    void identifyAdvertisesTheLimitsCopyEnforces() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M,ram:8M@4096")) {
            f.driver.enable();
            ByteBuffer ctrl = le(f.driver.identify(0x01, 0));
            assertEquals(1, ctrl.getShort(534) & 0xFFFF, "OCFS: source range format 0 only");
            assertEquals(0x100, ctrl.getShort(520) & 0x100, "ONCS bit 8 Copy");
            ByteBuffer ns1 = le(f.driver.identify(0x00, 1));
            assertEquals(MCL_512, ns1.getShort(74) & 0xFFFF, "MSSRL");
            assertEquals(MCL_512, ns1.getInt(76), "MCL");
            assertEquals(127, ns1.get(80) & 0xFF, "MSRC (0-based): 128 ranges");
            ByteBuffer ns2 = le(f.driver.identify(0x00, 2));
            assertEquals(256, ns2.getShort(74) & 0xFFFF, "MSSRL of 4 KiB blocks: 1 MiB");
            assertEquals(256, ns2.getInt(76), "MCL of 4 KiB blocks");
        }
    }
}
