package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.pci.GuestMemoryException;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;

import static io.javadevices.nvme.GuestBytes.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Write Uncorrectable (04h): marked blocks fail Read, Compare, Verify and Copy with Unrecovered Read Error (and an
 * Error Information entry naming the first marked LBA) until Write, Write Zeroes, DSM deallocate or a Copy onto
 * them rewrites them.
 */
class WriteUncorrectableTest {
    static Command writeUncorrectable(int nsid, long slba, int blocks) {
        return Command.of(0x04).nsid(nsid).slba(slba).cdw(12, blocks - 1);
    }

    static Command verify(int nsid, long slba, int blocks) {
        return Command.of(0x0C).nsid(nsid).slba(slba).cdw(12, blocks - 1);
    }

    static void assertUnrecovered(Completion c, String what) {
        assertEquals(2, c.sct(), what + ": " + c);
        assertEquals(0x81, c.sc(), what + ": Unrecovered Read Error");
        assertTrue(dnr(c), what + ": DNR, a retry cannot succeed");
    }

    /** The newest Error Information entry: {LBA, NSID, status field (without phase)}. */
    static long[] newestError(Fixture f) {
        assertTrue(f.driver.admin(Command.getLogPage(0x01, 0, 64, f.driver.dataPage())).ok());
        ByteBuffer e = le(f.driver.readData(64));
        return new long[] {e.getLong(16), e.getInt(24), (e.getShort(12) & 0xFFFF) >>> 1};
    }

    @Test
    void markedBlocksFailReadsUntilAWriteHealsThem() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(2);
            put(f, buf, pattern(1, 8192));
            assertTrue(q.execute(Command.write(1, 0, 16, buf, buf + 4096)).ok());
            assertTrue(q.execute(writeUncorrectable(1, 10, 3)).ok()); // blocks 10, 11, 12

            assertUnrecovered(q.execute(Command.read(1, 8, 4, buf, 0)), "read over block 10");
            long[] err = newestError(f);
            assertEquals(10, err[0], "error log LBA: the first marked block");
            assertEquals(1, err[1], "error log NSID");
            assertEquals(0x4281, err[2], "error log status: SCT 2 SC 81h DNR");
            assertUnrecovered(q.execute(Command.read(1, 12, 1, buf, 0)), "read of block 12 alone");
            assertUnrecovered(q.execute(CompareTest.compare(1, 0, 16, buf, buf + 4096)), "compare");
            assertUnrecovered(q.execute(verify(1, 11, 1)), "verify");
            assertTrue(q.execute(Command.read(1, 0, 10, buf, buf + 4096)).ok(), "blocks before the marks");
            assertTrue(q.execute(Command.read(1, 13, 3, buf, 0)).ok(), "blocks after the marks");
            assertTrue(q.execute(verify(1, 0, 10)).ok());

            // A write of block 11 only heals block 11: 10 and 12 stay marked.
            put(f, buf, pattern(2, 512));
            assertTrue(q.execute(Command.write(1, 11, 1, buf, 0)).ok());
            assertTrue(q.execute(Command.read(1, 11, 1, buf, 0)).ok());
            assertArrayEquals(pattern(2, 512), get(f, buf, 512), "the rewritten block reads what was written");
            assertUnrecovered(q.execute(Command.read(1, 10, 1, buf, 0)), "block 10 still marked");
            assertUnrecovered(q.execute(Command.read(1, 12, 1, buf, 0)), "block 12 still marked");
            assertEquals(12, newestError(f)[0]);

            assertTrue(q.execute(Command.write(1, 8, 8, buf, 0)).ok());
            assertTrue(q.execute(Command.read(1, 0, 16, buf, buf + 4096)).ok(), "all rewritten");
            assertTrue(q.execute(verify(1, 0, 16)).ok());
        }
    }

    @Test
    void marksSetThroughOneQueueAreSeenByAnother() {
        try (Fixture f = Fixture.of("queues", "2", "namespaces", "ram:8M")) {
            f.driver.bringUp(2, 16, true);
            HostQueue q1 = f.driver.ioQueue(1), q2 = f.driver.ioQueue(2);
            long buf = f.host.allocatePages(1);
            assertTrue(q1.execute(writeUncorrectable(1, 40, 1)).ok());
            assertUnrecovered(q2.execute(Command.read(1, 40, 1, buf, 0)), "read on the other queue");
            assertTrue(q2.execute(Command.write(1, 40, 1, buf, 0)).ok());
            assertTrue(q1.execute(Command.read(1, 40, 1, buf, 0)).ok(), "healed through the other queue");
        }
    }

    @Test
    void writeZeroesAndDeallocateHealToo() throws GuestMemoryException {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            assertTrue(q.execute(writeUncorrectable(1, 100, 8)).ok());
            assertTrue(q.execute(writeUncorrectable(1, 200, 8)).ok());
            assertTrue(q.execute(Command.of(0x08).nsid(1).slba(100).cdw(12, 7)).ok(), "write zeroes");
            assertTrue(q.execute(Command.read(1, 100, 8, buf, 0)).ok());
            assertArrayEquals(new byte[4096], get(f, buf, 4096));
            long ranges = f.host.allocatePages(1);
            f.host.memory().writeInt(ranges + 4, 8);
            f.host.memory().writeLong(ranges + 8, 200);
            assertTrue(q.execute(Command.of(0x09).nsid(1).prp1(ranges).cdw(11, 4)).ok(), "DSM deallocate");
            assertTrue(q.execute(Command.read(1, 200, 8, buf, 0)).ok());
            assertArrayEquals(new byte[4096], get(f, buf, 4096), "deallocated blocks of a RAM namespace read zero");
        }
    }

    @Test
    void notLimitedByMdtsButByTheNamespace() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:64M,ram:1M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            assertTrue(q.execute(writeUncorrectable(1, 0, 65536)).ok(), "65536 blocks = 32 MiB, far beyond MDTS");
            assertTrue(q.execute(verify(1, 65536, 65536)).ok(), "verify of the 32 MiB after it");
            assertUnrecovered(q.execute(verify(1, 0, 65536)), "verify of the marked 32 MiB");
            assertUnrecovered(q.execute(Command.read(1, 65535, 1, buf, 0)), "last marked block");
            assertTrue(q.execute(Command.read(2, 0, 1, buf, 0)).ok(), "marks belong to their namespace");

            long blocks = (1 << 20) / 512;
            assertEquals(0x0B, q.execute(writeUncorrectable(3, 0, 1)).sc(), "wrong NSID");
            assertEquals(0x0B, q.execute(writeUncorrectable(0, 0, 1)).sc(), "NSID 0");
            assertEquals(0x0B, q.execute(writeUncorrectable(-1, 0, 1)).sc(), "broadcast NSID");
            assertEquals(0x80, q.execute(writeUncorrectable(2, blocks - 1, 2)).sc(), "beyond the end");
            assertEquals(0x80, q.execute(writeUncorrectable(2, -1L, 1)).sc(), "SLBA 2^64-1");
            assertTrue(q.execute(Command.read(2, blocks - 1, 1, buf, 0)).ok(), "a refused mark marks nothing");
        }
    }
}
