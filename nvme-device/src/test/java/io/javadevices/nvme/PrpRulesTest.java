package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.pci.GuestMemoryException;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The PRP rules of NVMe 1.4 §4.3 (Figures 108-109), with the statuses QEMU's nvme_map_prp returns: every
 * entry after the first has offset 0, a PRP list pointer in PRP2 may start inside its page (the list then
 * runs to the page's end, its last entry chaining to the next list page when more are needed), a chained
 * list pointer is a PRP entry and so has offset 0.
 */
class PrpRulesTest {
    private static final int PAGE = 4096;
    private Fixture f;
    private HostQueue q;

    @BeforeEach
    void setUp() {
        f = Fixture.of("queues", "1");
        f.driver.bringUp(1, 16, false);
        q = f.driver.ioQueue(1);
    }

    @AfterEach
    void tearDown() {
        f.close();
    }

    private void writeLong(long address, long value) {
        try {
            f.host.memory().writeLong(address, value);
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
    }

    private static void status(Completion c, int sct, int sc) {
        assertEquals(sct, c.sct(), c.toString());
        assertEquals(sc, c.sc(), c.toString());
    }

    /** A 4-page read (32 LBAs of 512 bytes): PRP1 + a list of 3 entries. */
    private Completion read4(long prp1, long prp2) {
        return q.execute(Command.read(1, 0, 32, prp1, prp2));
    }

    @Test
    void listEntryWithAnOffsetIsPrpOffsetInvalid() {
        long data = f.host.allocatePages(4), list = f.host.allocatePages(1);
        writeLong(list, data + PAGE);
        writeLong(list + 8, data + 2 * PAGE + 512); // second list entry with an offset
        writeLong(list + 16, data + 3 * PAGE);
        status(read4(data, list), 0, 0x13);
        assertTrue(f.stat("guest.error.invalid-prp-offset") >= 1);
    }

    @Test
    void prp2DataPointerWithAnOffsetIsPrpOffsetInvalid() {
        long data = f.host.allocatePages(2);
        status(q.execute(Command.read(1, 0, 16, data, data + PAGE + 8)), 0, 0x13);
    }

    @Test
    void prp1MustBeDwordAligned() {
        long data = f.host.allocatePages(1);
        status(q.execute(Command.read(1, 0, 1, data + 2, 0)), 0, 0x13);
    }

    @Test
    void chainedListPointerWithAnOffsetIsPrpOffsetInvalid() {
        long data = f.host.allocatePages(4), list = f.host.allocatePages(1), next = f.host.allocatePages(1);
        // PRP2 points at the last two qwords of its page: one data entry, then the chain pointer.
        long first = list + PAGE - 16;
        writeLong(first, data + PAGE);
        writeLong(first + 8, next + 8); // chain pointer qword aligned but not page aligned: not allowed
        writeLong(next + 8, data + 2 * PAGE);
        writeLong(next + 16, data + 3 * PAGE);
        status(read4(data, first), 0, 0x13);
    }

    @Test
    void listOutsideMemoryIsDataTransferError() {
        long data = f.host.allocatePages(1);
        status(read4(data, 1L << 40), 0, 0x04);
        assertTrue(f.stat("guest.error.dma-outside-memory") >= 1);
    }

    @Test
    void prp2ListPointerWithAnInPageOffsetRunsToThePageEndAndChains() throws GuestMemoryException {
        long data = f.host.allocatePages(6), list = f.host.allocatePages(1), next = f.host.allocatePages(1);
        byte[] pattern = new byte[6 * PAGE - 1024];
        new Random(7).nextBytes(pattern);
        long src = f.host.allocatePages(6);
        f.host.memory().write(src, pattern, 0, pattern.length);
        // Write the pattern from a plain buffer: PRP1 at offset 1024 of its page, then 5 more pages.
        long[] pages = {src, src + PAGE, src + 2 * PAGE, src + 3 * PAGE, src + 4 * PAGE, src + 5 * PAGE};
        Command w = Command.write(1, 100, pattern.length / 512, 0, 0);
        f.driver.setPrps(w, pages, 0, pattern.length, f.host.allocatePages(1));
        assertTrue(q.execute(w).ok());
        // Read it back: PRP1 = data + 1024, the list starts 24 bytes before the end of its page (3 entries:
        // two data pages, then the chain), the next list page holds the other three.
        long prp1 = data + 1024;
        long first = list + PAGE - 24;
        writeLong(first, data + PAGE);
        writeLong(first + 8, data + 2 * PAGE);
        writeLong(first + 16, next);
        writeLong(next, data + 3 * PAGE);
        writeLong(next + 8, data + 4 * PAGE);
        writeLong(next + 16, data + 5 * PAGE);
        writeLong(next + 24, 0xDEAD_0001L); // past the transfer: never read as an entry
        Completion c = q.execute(Command.read(1, 100, pattern.length / 512, prp1, first));
        assertTrue(c.ok(), c.toString());
        byte[] got = new byte[pattern.length];
        f.host.memory().read(prp1, got, 0, pattern.length);
        assertArrayEquals(pattern, got);
    }

    @Test
    void lastListEntryIsDataWhenNoMoreEntriesAreNeeded() throws GuestMemoryException {
        // The list's last entry in the page is a data pointer when it is the transfer's last page (no chain).
        long data = f.host.allocatePages(3), list = f.host.allocatePages(1);
        long first = list + PAGE - 16;
        writeLong(first, data + PAGE);
        writeLong(first + 8, data + 2 * PAGE);
        assertTrue(q.execute(Command.read(1, 0, 24, data, first)).ok());
    }
}
