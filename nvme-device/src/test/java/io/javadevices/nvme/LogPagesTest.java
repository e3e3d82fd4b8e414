package io.javadevices.nvme;

import io.javadevices.nvme.admin.AsyncEvents;
import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.pci.GuestMemoryException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Get Log Page (NVMe 1.4 §5.14, NVMe 2.0 §5.16) as Linux and nvme-cli read it: the Supported Log Pages log lists
 * exactly the LIDs that answer, every other LID is Invalid Log Page; each log with offsets (LPO) inside and past
 * its end, lengths shorter and longer than the log, NUMDU, RAE, the NSID each log accepts, the fields this
 * controller does not support (LSP, LSI, CDW14) and buffers outside guest memory.
 */
class LogPagesTest {
    /** The log pages this controller has, with their sizes in bytes. */
    private static final Map<Integer, Integer> SIZES = Map.of(0x00, 1024, 0x01, 4096, 0x02, 512, 0x03, 512, 0x04, 4096,
            0x05, 4096, 0x0E, 8192, 0x12, 1024);
    /** The broadcast NSID, as nvme-cli sends for a controller's character device. */
    private static final int BROADCAST = 0xFFFF_FFFF;
    private static final int INVALID_FIELD = 0x02, DATA_TRANSFER_ERROR = 0x04, INVALID_LOG_PAGE = 0x09;

    private Fixture f;
    private LinuxLikeDriver d;
    private long page;

    @BeforeEach
    void setUp() {
        f = Fixture.of("queues", "2", "namespaces", "ram:16M,null:1G@4096");
        d = f.driver;
        d.enable();
        d.enableMsix(2);
        page = f.host.allocatePages(2); // two contiguous pages: room for a 4 KiB log at any offset
    }

    @AfterEach
    void tearDown() {
        f.close();
    }

    private static void status(Completion c, int sct, int sc) {
        assertEquals(sct, c.sct(), c.toString());
        assertEquals(sc, c.sc(), c.toString());
    }

    /** Get Log Page of {@code bytes} (a multiple of 4) from byte offset {@code offset}, into {@link #page}. */
    private Completion log(int lid, int nsid, int bytes, long offset) {
        return d.admin(Command.getLogPage(lid, nsid, bytes, page).cdw(12, (int) offset).cdw(13, (int) (offset >>> 32)));
    }

    private byte[] read(long address, int length) throws GuestMemoryException {
        byte[] out = new byte[length];
        f.host.memory().read(address, out, 0, length);
        return out;
    }

    private void fill(long address, int length, byte value) throws GuestMemoryException {
        f.host.memory().fill(address, length, value);
    }

    private byte[] wholeLog(int lid) throws GuestMemoryException {
        int size = SIZES.get(lid);
        Completion c = d.admin(Command.getLogPage(lid, 0, size, page).prp2(page + 4096).cdw(10, lid | 1 << 15 | (size / 4 - 1) << 16));
        assertTrue(c.ok(), c.toString());
        return read(page, size);
    }

    @Test
    void supportedLogPagesListsExactlyTheLogPagesThatAnswerAndEveryOtherLidIsInvalidLogPage() throws Exception {
        assertTrue(log(0x00, 0, 1024, 0).ok());
        ByteBuffer supported = ByteBuffer.wrap(read(page, 1024)).order(ByteOrder.LITTLE_ENDIAN);
        TreeSet<Integer> listed = new TreeSet<>();
        for (int lid = 0; lid < 256; lid++) {
            int entry = supported.getInt(4 * lid);
            assertEquals(0, entry & ~1, "LID " + lid + ": only LSUPP, no index offsets (IOS), no LID specific bits");
            if ((entry & 1) != 0) {
                listed.add(lid);
            }
        }
        assertEquals(new TreeSet<>(SIZES.keySet()), listed);
        for (int lid = 0; lid < 256; lid++) {
            Completion c = log(lid, BROADCAST, 4, 0);
            if (listed.contains(lid)) {
                assertTrue(c.ok(), "LID " + Integer.toHexString(lid) + ": " + c);
            } else {
                status(c, 1, INVALID_LOG_PAGE);
            }
        }
    }

    @Test
    void everyLogAnswersAtEveryOffsetInsideItAndInvalidFieldAtOrPastItsEnd() throws Exception {
        for (var e : SIZES.entrySet()) {
            int lid = e.getKey(), size = e.getValue();
            byte[] whole = wholeLog(lid);
            for (long offset : new long[] {0, 4, size / 2, size - 4}) {
                fill(page, 8, (byte) 0xAA);
                assertTrue(log(lid, 0, 8, offset).ok(), "LID " + lid + " LPO " + offset);
                int n = (int) Math.min(8, size - offset);
                assertArrayEquals(Arrays.copyOfRange(whole, (int) offset, (int) offset + n), read(page, n),
                        "LID " + lid + ": the bytes at LPO " + offset);
                if (n < 8) {
                    assertArrayEquals(new byte[] {(byte) 0xAA, (byte) 0xAA, (byte) 0xAA, (byte) 0xAA}, read(page + n, 4),
                            "LID " + lid + ": nothing written past the log's end");
                }
            }
            for (long offset : new long[] {size, size + 4, 1L << 32, 1L << 63, -4L}) {
                status(log(lid, 0, 4, offset), 0, INVALID_FIELD);
            }
            status(log(lid, 0, 4, 2), 0, INVALID_FIELD); // LPO not dword aligned
        }
        assertTrue(f.stat("guest.error.invalid-log-offset") > 0);
    }

    @Test
    void aLengthBeyondTheLogTransfersTheLogAndLeavesTheRestOfTheBufferAlone() throws Exception {
        for (var e : SIZES.entrySet()) {
            int lid = e.getKey(), size = e.getValue();
            byte[] whole = wholeLog(lid);
            fill(page, 8192, (byte) 0x5A);
            assertTrue(d.admin(Command.getLogPage(lid, 0, 8192, page).prp2(page + 4096)).ok());
            assertArrayEquals(whole, read(page, size), "LID " + lid);
            byte[] rest = read(page + size, 8192 - size);
            byte[] untouched = new byte[rest.length];
            Arrays.fill(untouched, (byte) 0x5A);
            assertArrayEquals(untouched, rest, "LID " + lid + ": bytes past the log");
        }
    }

    @Test
    void numduExtendsTheLengthUpToMdts() throws Exception {
        byte[] smart = wholeLog(0x02);
        // NUMDU = 1: 64 Ki + 1 dwords, within MDTS (512 KiB); only the log's 512 bytes move, so one page will do.
        assertTrue(d.admin(Command.getLogPage(0x02, 0, 4, page).cdw(11, 1)).ok());
        assertArrayEquals(smart, read(page, 512));
        // NUMDU = 2: more than 512 KiB.
        status(d.admin(Command.getLogPage(0x02, 0, 4, page).cdw(11, 2)), 0, INVALID_FIELD);
        status(d.admin(Command.getLogPage(0x02, 0, 4, page).cdw(10, 0xFFFF_0002).cdw(11, 0xFFFF)), 0, INVALID_FIELD);
    }

    @Test
    void smartAcceptsOnlyTheControllerNsidsAndTheOtherLogsIgnoreTheNsid() {
        byte[] id = d.identify(0x01, 0);
        assertEquals(0, id[261] & 0x01, "LPA bit 0: no per-namespace SMART");
        assertEquals(0x06, id[261] & 0x06, "LPA bits 1 (effects log) and 2 (NUMDU, LPO)");
        assertEquals(0, id[261] & 0x20, "LPA bit 5 needs LIDs 12h and 13h");
        assertTrue(log(0x02, 0, 512, 0).ok());
        assertTrue(log(0x02, BROADCAST, 512, 0).ok());
        for (int nsid : new int[] {1, 2, 3, 0xFFFF_FFFE}) {
            status(log(0x02, nsid, 512, 0), 0, INVALID_FIELD);
        }
        for (int lid : new int[] {0x00, 0x01, 0x03, 0x05, 0x12}) {
            for (int nsid : new int[] {0, 1, BROADCAST}) {
                assertTrue(log(lid, nsid, 512, 0).ok(), "LID " + lid + " NSID " + nsid);
            }
        }
    }

    @Test
    void fieldsTheControllerDoesNotSupportAreInvalidField() {
        for (int lid : SIZES.keySet()) {
            Command base = Command.getLogPage(lid, 0, 4, page);
            int cdw10 = base.cdw(10);
            status(d.admin(Command.getLogPage(lid, 0, 4, page).cdw(10, cdw10 | 1 << 8)), 0, INVALID_FIELD);   // LSP
            status(d.admin(Command.getLogPage(lid, 0, 4, page).cdw(10, cdw10 | 0x40 << 8)), 0, INVALID_FIELD); // LSP bit 6
            status(d.admin(Command.getLogPage(lid, 0, 4, page).cdw(11, 1 << 16)), 0, INVALID_FIELD);         // LSI
            status(d.admin(Command.getLogPage(lid, 0, 4, page).cdw(14, 1)), 0, INVALID_FIELD);               // UUID index
            status(d.admin(Command.getLogPage(lid, 0, 4, page).cdw(14, 1 << 23)), 0, INVALID_FIELD);         // OT
            status(d.admin(Command.getLogPage(lid, 0, 4, page).cdw(14, 2 << 24)), 0, INVALID_FIELD);         // CSI ZNS
            assertTrue(d.admin(Command.getLogPage(lid, 0, 4, page).cdw(10, cdw10 | 1 << 15)).ok(), "RAE alone is fine");
        }
        // an unknown LID is Invalid Log Page whatever its other fields
        status(d.admin(Command.getLogPage(0x06, 0, 4, page).cdw(14, 1)), 1, INVALID_LOG_PAGE);
    }

    @Test
    void aBufferOutsideGuestMemoryIsDataTransferError() {
        for (int lid : SIZES.keySet()) {
            status(d.admin(Command.getLogPage(lid, 0, 512, 1L << 40)), 0, DATA_TRANSFER_ERROR);
            status(d.admin(Command.getLogPage(lid, 0, 512, f.host.ramSize() - 256).prp2(f.host.ramSize())), 0,
                    DATA_TRANSFER_ERROR); // the second half past the end of RAM
        }
        assertTrue(f.stat("guest.error.dma-outside-memory") > 0);
    }

    @Test
    void firmwareSlotAndEffectsContent() throws Exception {
        ByteBuffer fw = ByteBuffer.wrap(wholeLog(0x03)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(1, fw.get(0), "AFI: slot 1 active");
        assertEquals("1.0     ", new String(Arrays.copyOfRange(fw.array(), 8, 16), java.nio.charset.StandardCharsets.US_ASCII));
        ByteBuffer effects = ByteBuffer.wrap(wholeLog(0x05)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(1, effects.getInt(4 * 0x02) & 1, "Get Log Page itself");
        assertEquals(3, effects.getInt(1024 + 4 * 0x01) & 3, "Write: CSUPP and LBCC");
    }

    @Test
    void featureEffectsListsExactlyTheFeaturesGetFeaturesAnswers() throws Exception {
        ByteBuffer log = ByteBuffer.wrap(wholeLog(0x12)).order(ByteOrder.LITTLE_ENDIAN);
        for (int fid = 0; fid < 256; fid++) {
            int entry = log.getInt(4 * fid);
            Completion c = d.admin(Command.getFeatures(fid, 0, 0).prp1(page));
            if (c.ok()) {
                assertEquals(1 | 1 << 21, entry, "FID " + fid + ": FSUPP, controller scope, no effects");
            } else {
                assertEquals(0, entry, "FID " + fid + " is not a feature: " + c);
            }
        }
        assertEquals(0, log.getInt(4 * 0x06), "no Volatile Write Cache without a cache");
        assertNotEquals(0, log.getInt(4 * 0x0E), "Timestamp");
    }

    /** Raises {@code event} (any thread may) and returns the AER completions seen after two admin round trips. */
    private List<Completion> raiseAndSettle(int event) {
        f.controller.asyncEvents().raise(event);
        // The admin worker polls its events before each batch it takes: after two round trips it has polled since.
        assertTrue(d.admin(Command.getFeatures(0x01, 0, 0)).ok());
        assertTrue(d.admin(Command.getFeatures(0x01, 0, 0)).ok());
        return aers();
    }

    private List<Completion> aers() {
        return d.asyncCompletions().stream().filter(c -> c.cid() >= LinuxLikeDriver.AER_CID && c.cid() < LinuxLikeDriver.AER_CID + 2)
                .toList();
    }

    private void awaitAerCount(int n) {
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (aers().size() < n && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        assertEquals(n, aers().size(), aers().toString());
    }

    @Test
    void readingTheLogWithRaeClearUnmasksItsEventTypeAndWithRaeSetDoesNot() {
        int[][] cases = {
                {AsyncEvents.INVALID_DOORBELL_VALUE, 0x01},                    // error status → Error Information
                {AsyncEvents.TYPE_SMART_HEALTH | 0x02 << 16, 0x02},            // SMART / health status → SMART
        };
        for (int[] c : cases) {
            int event = c[0], lid = c[1];
            d.disable();
            d.enable();
            for (int i = 0; i < 2; i++) {
                d.submitAer(LinuxLikeDriver.AER_CID + i);
            }
            f.controller.asyncEvents().raise(event);
            awaitAerCount(1);
            assertEquals(1, raiseAndSettle(event).size(), "the type is masked until its log is read");
            assertTrue(d.admin(Command.getLogPage(lid, 0, 64, page).cdw(10, lid | 1 << 15 | 15 << 16)).ok());
            assertEquals(1, raiseAndSettle(event).size(), "RAE = 1 keeps the type masked, LID " + lid);
            assertTrue(d.admin(Command.getLogPage(0x03, 0, 64, page)).ok());
            assertEquals(1, raiseAndSettle(event).size(), "reading another log does not unmask, LID " + lid);
            assertTrue(log(lid, 0, 64, 0).ok());
            f.controller.asyncEvents().raise(event);
            awaitAerCount(2);
            assertEquals(event, aers().get(1).dw0(), "LID " + lid);
        }
    }
}
