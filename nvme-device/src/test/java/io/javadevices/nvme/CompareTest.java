package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static io.javadevices.nvme.GuestBytes.*;
import static org.junit.jupiter.api.Assertions.*;

/** Compare (05h): match, mismatch (Compare Failure), and Read's checks. */
class CompareTest {
    static Command compare(int nsid, long slba, int blocks, long prp1, long prp2) {
        return Command.of(0x05).nsid(nsid).slba(slba).cdw(12, blocks - 1).prp1(prp1).prp2(prp2);
    }

    @Test
    void matchingDataSucceedsAndOneDifferentByteIsCompareFailure() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(2);
            byte[] data = pattern(5, 8192);
            put(f, buf, data);
            assertTrue(q.execute(Command.write(1, 100, 16, buf, buf + 4096)).ok());
            assertTrue(q.execute(compare(1, 100, 16, buf, buf + 4096)).ok(), "same data compares equal");
            assertTrue(q.execute(compare(1, 104, 4, buf + 2048, 0)).ok(), "a sub-range with a PRP1 offset");

            byte[] changed = data.clone();
            changed[8191] ^= 1; // the very last byte, in the second page
            put(f, buf, changed);
            Completion c = q.execute(compare(1, 100, 16, buf, buf + 4096));
            assertEquals(2, c.sct(), c.toString());
            assertEquals(0x85, c.sc(), "Compare Failure");
            assertTrue(dnr(c));
            // Never-written blocks of a RAM namespace read as zeroes: a zero buffer matches them.
            long zero = f.host.allocatePages(1);
            assertTrue(q.execute(compare(1, 5000, 8, zero, 0)).ok());
            assertArrayEquals(changed, get(f, buf, 8192), "Compare never writes the host buffer");
        }
    }

    @Test
    void largerThanTheScratchChunkAndMultiplePrpListPages() {
        // 512 KiB (MDTS 7) = 4 scratch chunks; the host buffer is scattered, so the PRP list has 127 entries.
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:8M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            int length = 512 * 1024;
            long[] pages = new long[length / 4096];
            for (int i = 0; i < pages.length; i++) {
                pages[i] = f.host.allocatePages(2); // every other page: no merging
            }
            byte[] data = pattern(9, length);
            for (int i = 0; i < pages.length; i++) {
                put(f, pages[i], Arrays.copyOfRange(data, i * 4096, (i + 1) * 4096));
            }
            long list = f.host.allocatePages(1);
            Command w = Command.write(1, 0, length / 512, 0, 0);
            f.driver.setPrps(w, pages, 0, length, list);
            assertTrue(q.execute(w).ok());
            Command c = compare(1, 0, length / 512, 0, 0);
            f.driver.setPrps(c, pages, 0, length, list);
            assertTrue(q.execute(c).ok());
            put(f, pages[pages.length - 1] + 4095, new byte[] {(byte) ~data[length - 1]});
            assertEquals(0x85, q.execute(c).sc(), "a difference in the last byte of the last page");
        }
    }

    @Test
    void invalidFields() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "ram:1M")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            long blocks = (1 << 20) / 512;
            assertEquals(0x0B, q.execute(compare(2, 0, 1, buf, 0)).sc(), "wrong NSID");
            assertEquals(0x0B, q.execute(compare(0, 0, 1, buf, 0)).sc(), "NSID 0");
            assertEquals(0x80, q.execute(compare(1, blocks - 1, 2, buf, 0)).sc(), "beyond the end");
            assertEquals(0x80, q.execute(compare(1, -1L, 1, buf, 0)).sc(), "SLBA 2^64-1");
            Completion mdts = q.execute(compare(1, 0, 1025, buf, 0)); // MDTS 7 = 1024 blocks
            assertEquals(0x02, mdts.sc(), "NLB beyond MDTS: " + mdts);
            assertEquals(0x04, q.execute(compare(1, 0, 1, 1L << 40, 0)).sc(), "buffer outside guest memory");
            assertEquals(0x13, q.execute(compare(1, 0, 1, buf + 2, 0)).sc(), "PRP1 not dword aligned");
            assertTrue(q.execute(compare(1, 0, 1, buf, 0)).ok(), "still works");
        }
    }

    @Test
    void nullNamespaceComparesAsZeroes() {
        try (Fixture f = Fixture.of("queues", "1", "namespaces", "null:1G")) {
            f.driver.bringUp(1, 16, true);
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            assertTrue(q.execute(compare(1, 0, 8, buf, 0)).ok());
            put(f, buf + 100, new byte[] {1});
            assertEquals(0x85, q.execute(compare(1, 0, 8, buf, 0)).sc());
        }
    }
}
