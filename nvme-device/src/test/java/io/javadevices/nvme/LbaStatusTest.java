package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;

import static io.javadevices.nvme.GuestBytes.le;
import static io.javadevices.nvme.WriteUncorrectableTest.writeUncorrectable;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Get LBA Status (admin 86h) and the LBA Status Information log (0Eh) report the Write-Uncorrectable-marked
 * ranges; OACS and ONCS advertise exactly the commands that execute.
 */
class LbaStatusTest {
    private static final int TRACKED = 0x11, SCAN = 0x10;

    private static Command getLbaStatus(int nsid, long slba, int mndw, int atype, int rl, long prp1) {
        return Command.of(0x86).nsid(nsid).slba(slba).cdw(12, mndw).cdw(13, atype << 24 | rl).prp1(prp1);
    }

    /** Runs Get LBA Status into the driver's data page; returns the first {@code bytes} of the answer. */
    private static ByteBuffer lbaStatus(Fixture f, long slba, int mndw, int atype, int rl) {
        Completion c = f.driver.admin(getLbaStatus(1, slba, mndw, atype, rl, f.driver.dataPage()));
        assertTrue(c.ok(), c.toString());
        return le(f.driver.readData(4096));
    }

    @Test
    void returnsTheMarkedRangesOfTheAskedRange() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            ByteBuffer none = lbaStatus(f, 0, 1023, TRACKED, 0);
            assertEquals(0, none.getInt(0), "nothing marked: no descriptor");
            assertEquals(2, none.get(4), "CMPC 2h: the whole range was examined");

            assertTrue(q.execute(writeUncorrectable(1, 10, 5)).ok());    // 10..14
            assertTrue(q.execute(writeUncorrectable(1, 15, 5)).ok());    // merges: 10..19
            assertTrue(q.execute(writeUncorrectable(1, 100, 1)).ok());
            assertTrue(q.execute(writeUncorrectable(1, 16000, 384)).ok()); // up to the last block
            ByteBuffer all = lbaStatus(f, 0, 1023, TRACKED, 0);
            assertEquals(3, all.getInt(0), "NLSD");
            assertEquals(2, all.get(4), "CMPC");
            assertEquals(10, all.getLong(8));
            assertEquals(10, all.getInt(16));
            assertEquals(100, all.getLong(24));
            assertEquals(1, all.getInt(32));
            assertEquals(16000, all.getLong(40));
            assertEquals(384, all.getInt(48));

            // SLBA and RL clip the ranges; ATYPE 10h answers the same.
            ByteBuffer clipped = lbaStatus(f, 12, 1023, SCAN, 90);       // 12..101
            assertEquals(2, clipped.getInt(0));
            assertEquals(12, clipped.getLong(8));
            assertEquals(8, clipped.getInt(16));
            assertEquals(100, clipped.getLong(24));
            assertEquals(1, clipped.getInt(32));

            // MNDW = 5 (0-based: 6 dwords = header + 1 descriptor): CMPC 1h, more descriptors left.
            ByteBuffer first = lbaStatus(f, 0, 5, TRACKED, 0);
            assertEquals(1, first.getInt(0));
            assertEquals(1, first.get(4), "CMPC 1h: stopped by MNDW");
            assertEquals(10, first.getLong(8));

            // A write heals a piece: the descriptors follow.
            long buf = f.host.allocatePages(1);
            assertTrue(q.execute(Command.write(1, 12, 2, buf, 0)).ok());
            ByteBuffer healed = lbaStatus(f, 0, 1023, TRACKED, 30);
            assertEquals(2, healed.getInt(0));
            assertEquals(10, healed.getLong(8));
            assertEquals(2, healed.getInt(16));
            assertEquals(14, healed.getLong(24));
            assertEquals(6, healed.getInt(32));
        }
    }

    @Test
    void theLbaStatusInformationLogListsTheMarksPerNamespace() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M,ram:8M,ram:8M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            ByteBuffer empty = log(f);
            assertEquals(16, empty.getInt(0), "LSLPLEN: the header only");
            assertEquals(0, empty.getInt(4), "NLSLNE");
            int generation = empty.getShort(14);
            assertTrue(q.execute(writeUncorrectable(1, 7, 2)).ok());
            assertTrue(q.execute(writeUncorrectable(3, 0, 1)).ok());
            assertTrue(q.execute(writeUncorrectable(3, 50, 10)).ok());
            ByteBuffer log = log(f);
            assertEquals(16 + (16 + 16) + (16 + 2 * 16), log.getInt(0), "LSLPLEN");
            assertEquals(2, log.getInt(4), "NLSLNE: namespaces 1 and 3");
            assertEquals(13, log.getInt(8), "ESTULB: marked blocks");
            assertNotEquals(generation, log.getShort(14), "LSGC changed");
            assertEquals(1, log.getInt(16), "NEID");
            assertEquals(1, log.getInt(20), "NLRD");
            assertEquals(0x11, log.get(24), "RATYPE");
            assertEquals(7, log.getLong(32));
            assertEquals(2, log.getInt(40));
            assertEquals(3, log.getInt(48), "NEID");
            assertEquals(2, log.getInt(52), "NLRD");
            assertEquals(0, log.getLong(64));
            assertEquals(1, log.getInt(72));
            assertEquals(50, log.getLong(80));
            assertEquals(10, log.getInt(88));
        }
    }

    private static ByteBuffer log(Fixture f) {
        Completion c = f.driver.admin(Command.getLogPage(0x0E, 0, 4096, f.driver.dataPage()));
        assertTrue(c.ok(), c.toString());
        return le(f.driver.readData(4096));
    }

    @Test
    void invalidFields() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:1M")) {
            f.driver.enable();
            long page = f.driver.dataPage();
            long blocks = (1 << 20) / 512;
            assertEquals(0x0B, f.driver.admin(getLbaStatus(2, 0, 1023, TRACKED, 0, page)).sc(), "wrong NSID");
            assertEquals(0x0B, f.driver.admin(getLbaStatus(0, 0, 1023, TRACKED, 0, page)).sc(), "NSID 0");
            assertEquals(0x0B, f.driver.admin(getLbaStatus(-1, 0, 1023, TRACKED, 0, page)).sc(), "broadcast NSID");
            Completion c = f.driver.admin(getLbaStatus(1, blocks, 1023, TRACKED, 0, page));
            assertEquals(0x80, c.sc(), "SLBA beyond the end: " + c);
            assertEquals(0x02, f.driver.admin(getLbaStatus(1, 0, 1023, 0x02, 0, page)).sc(), "ATYPE 02h");
            assertEquals(0x02, f.driver.admin(getLbaStatus(1, 0, 1023, 0, 0, page)).sc(), "ATYPE 0");
            assertEquals(0x04, f.driver.admin(getLbaStatus(1, 0, 1023, TRACKED, 0, 1L << 40)).sc(),
                    "buffer outside guest memory");
            assertTrue(f.driver.admin(getLbaStatus(1, blocks - 1, -1, TRACKED, 0, page)).ok(),
                    "MNDW at its maximum is capped, the last block is in range");
        }
    }

    @Test
    void oacsAndOncsFollowTheCommands() {
        try (Fixture f = Fixture.of("queues", "1")) {
            f.driver.enable();
            assertTrue(f.driver.admin(Command.getLogPage(0x05, 0, 4096, f.driver.dataPage())).ok());
            ByteBuffer effects = le(f.driver.readData(4096));
            ByteBuffer ctrl = le(f.driver.identify(0x01, 0));
            int oacs = ctrl.getShort(256) & 0xFFFF;
            int oncs = ctrl.getShort(520) & 0xFFFF;
            assertEquals(1 << 9, oacs & 1 << 9, "OACS bit 9 Get LBA Status");
            assertEquals(1, effects.getInt(4 * 0x86) & 1, "Get LBA Status in the effects log");
            int[][] bits = {{0x05, 0}, {0x04, 1}, {0x09, 2}, {0x08, 3}, {0x0C, 7}, {0x19, 8}};
            for (int[] b : bits) {
                assertEquals(1, effects.getInt(1024 + 4 * b[0]) & 1, "opcode " + Integer.toHexString(b[0]) + " supported");
                assertEquals(1 << b[1], oncs & 1 << b[1], "ONCS bit " + b[1]);
            }
            assertEquals(0, oncs & (1 << 5), "no reservations");
            assertEquals(2, effects.getInt(1024 + 4 * 0x04) & 2, "Write Uncorrectable changes LBA content");
            assertEquals(2, effects.getInt(1024 + 4 * 0x19) & 2, "Copy changes LBA content");
            assertEquals(0, effects.getInt(1024 + 4 * 0x05) & 2, "Compare does not");
        }
    }
}
