package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.nvme.spec.IdCtrl;
import io.javadevices.pci.GuestMemoryException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemoryLayout.PathElement;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Get / Set Features (NVMe 1.4 §5.13, §5.21) as nvme-cli 2.13 drives them. {@code nvme get-feature /dev/nvme0}
 * without {@code -f} walks FID 00h-FFh (nvme.c get_feature_ids) with NSID FFFFFFFFh and the data length
 * libnvme's nvme_get_feature_length gives each FID; it skips Invalid Field quietly, reports Invalid Namespace and
 * stops at any other error. So every FID Identify says the controller has must answer every SEL with consistent
 * values, and every other FID must be Invalid Field, nothing else.
 */
class FeaturesTest {
    private static final int BROADCAST = 0xFFFF_FFFF;
    private static final int INVALID_FIELD = 0x02, DATA_TRANSFER_ERROR = 0x04;
    private static final int NOT_SAVEABLE = 0x0D, NOT_NAMESPACE_SPECIFIC = 0x0F;
    private static final int TIMESTAMP = 0x0E, HOST_BEHAVIOR = 0x16;
    /** libnvme nvme_get_feature_length: the FIDs that move a data structure, and its size. */
    private static final Map<Integer, Integer> NVME_CLI_DATA_LENGTH = Map.of(0x03, 4096, 0x0C, 256, 0x0D, 4096,
            0x0E, 8, 0x13, 512, 0x16, 512, 0x81, 16);

    private Fixture f;
    private LinuxLikeDriver d;
    private long page;

    @BeforeEach
    void setUp() {
        f = Fixture.of("queues", "2", "namespaces", "ram:16M,null:1G@4096");
        start(f);
    }

    private void start(Fixture fixture) {
        f = fixture;
        d = f.driver;
        d.enable();
        d.enableMsix(2);
        page = f.host.allocatePages(1);
    }

    @AfterEach
    void tearDown() {
        f.close();
    }

    private static void status(Completion c, int sct, int sc) {
        assertEquals(sct, c.sct(), c.toString());
        assertEquals(sc, c.sc(), c.toString());
    }

    private Completion get(int fid, int sel, int nsid) {
        return d.admin(Command.getFeatures(fid, sel, 0).nsid(nsid).prp1(page));
    }

    private Completion set(int fid, int value, int nsid) {
        return d.admin(Command.setFeatures(fid, value).nsid(nsid).prp1(page));
    }

    private byte[] read(int length) throws GuestMemoryException {
        byte[] out = new byte[length];
        f.host.memory().read(page, out, 0, length);
        return out;
    }

    private void write(byte[] data) throws GuestMemoryException {
        f.host.memory().write(page, data, 0, data.length);
    }

    private static int u16(byte[] id, long offset) {
        return (id[(int) offset] & 0xFF) | (id[(int) offset + 1] & 0xFF) << 8;
    }

    private static long field(String name) {
        return IdCtrl.LAYOUT.byteOffset(PathElement.groupElement(name));
    }

    /**
     * The features Identify Controller says this controller has: the ones mandatory for an NVM I/O controller
     * (NVMe 1.4 Figure 271), those an Identify field advertises, and the optional ones without such a field that
     * this controller implements (Host Behavior Support, Software Progress Marker).
     */
    private static Set<Integer> advertised(byte[] id) {
        Set<Integer> fids = new TreeSet<>(Set.of(0x01, 0x02, 0x04, 0x05, 0x07, 0x08, 0x09, 0x0A, 0x0B));
        if ((id[(int) IdCtrl.VWC.offset()] & 1) != 0) {
            fids.add(0x06);
        }
        if ((id[(int) IdCtrl.APSTA.offset()] & 1) != 0) {
            fids.add(0x0C);
        }
        if (ByteBuffer.wrap(id).order(ByteOrder.LITTLE_ENDIAN).getInt((int) field("HMPRE")) != 0) {
            fids.add(0x0D);
        }
        if ((u16(id, IdCtrl.ONCS.offset()) & 1 << 6) != 0) {
            fids.add(TIMESTAMP);
        }
        if (u16(id, field("KAS")) != 0) {
            fids.add(0x0F);
        }
        fids.add(HOST_BEHAVIOR);
        fids.add(0x80);
        return fids;
    }

    /** One answer of the walk: the status, dword 0 and the data structure (if the FID has one). */
    private record Answer(Completion completion, byte[] data) {
    }

    /** nvme-cli's "all features" walk at {@code sel}: every FID, NSID FFFFFFFFh, cdw11 0. */
    private Map<Integer, Answer> walk(int sel) throws GuestMemoryException {
        Map<Integer, Answer> answers = new TreeMap<>();
        for (int fid = 0; fid < 256; fid++) {
            int length = NVME_CLI_DATA_LENGTH.getOrDefault(fid, 0);
            f.host.memory().fill(page, 4096, (byte) 0xEE);
            Completion c = get(fid, sel, BROADCAST);
            answers.put(fid, new Answer(c, c.ok() && length > 0 ? read(length) : null));
        }
        return answers;
    }

    private void walkAnswersExactlyTheAdvertisedFeatures() throws GuestMemoryException {
        Set<Integer> advertised = advertised(d.identify(0x01, 0));
        Map<Integer, Answer>[] bySel = new Map[4];
        for (int sel = 0; sel < 4; sel++) {
            bySel[sel] = walk(sel);
            Set<Integer> answered = new TreeSet<>();
            for (var e : bySel[sel].entrySet()) {
                Completion c = e.getValue().completion();
                if (c.ok()) {
                    answered.add(e.getKey());
                } else {
                    status(c, 0, INVALID_FIELD); // anything else stops nvme-cli's walk
                }
            }
            assertEquals(advertised, answered, "SEL " + sel + ": the FIDs that answer are the ones Identify advertises");
        }
        for (int fid : advertised) {
            Answer current = bySel[0].get(fid), dflt = bySel[1].get(fid), saved = bySel[2].get(fid);
            int capabilities = bySel[3].get(fid).completion().dw0();
            assertEquals(0, capabilities & ~0x7, "FID " + fid + ": SEL 11b uses bits 2:0");
            assertEquals(0, capabilities & 1, "FID " + fid + ": nothing is saveable");
            assertEquals(0, capabilities & 2, "FID " + fid + ": nothing is namespace specific");
            assertEquals(dflt.completion().dw0(), saved.completion().dw0(), "FID " + fid + ": not saveable, saved = default");
            if (fid == TIMESTAMP) {
                // a counter: compare the attributes (Synch, Origin) and that each value counts from the reset
                for (Answer a : new Answer[] {current, dflt, saved}) {
                    assertEquals(0, a.data()[6], "Origin 000b and Synch 0 before any Set");
                    assertEquals(0, a.data()[7]);
                }
            } else {
                assertEquals(dflt.completion().dw0(), current.completion().dw0(), "FID " + fid + ": after a reset current = default");
                if (current.data() != null) {
                    assertArrayEquals(dflt.data(), current.data(), "FID " + fid);
                    assertArrayEquals(dflt.data(), saved.data(), "FID " + fid);
                }
            }
        }
    }

    @Test
    void nvmeCliWalkOfEveryFidAndSelAnswersExactlyTheFeaturesIdentifyAdvertises() throws Exception {
        walkAnswersExactlyTheAdvertisedFeatures();
    }

    @Test
    void nvmeCliWalkOnAControllerWithAWriteCacheIncludesVolatileWriteCache(@TempDir Path dir) throws Exception {
        f.close();
        start(new Fixture(Map.of("namespaces", "file:" + dir.resolve("disk.img") + ":4M", "queues", "1")));
        assertEquals(1, d.identify(0x01, 0)[(int) IdCtrl.VWC.offset()] & 1, "a file has a cache");
        walkAnswersExactlyTheAdvertisedFeatures();
        assertEquals(1, get(0x06, 1, 0).dw0(), "the cache is on by default");
        assertTrue(set(0x06, 0, 0).ok());
        assertEquals(0, get(0x06, 0, 0).dw0());
        assertEquals(1, get(0x06, 2, 0).dw0());
    }

    @Test
    void identifyAdvertisesSaveSelectAndTimestampAndNoApstKeepAliveOrHostMemoryBuffer() {
        byte[] id = d.identify(0x01, 0);
        int oncs = u16(id, IdCtrl.ONCS.offset());
        assertEquals(1 << 4, oncs & 1 << 4, "ONCS bit 4: Save and Select fields");
        assertEquals(1 << 6, oncs & 1 << 6, "ONCS bit 6: Timestamp");
        assertEquals(0, id[(int) IdCtrl.APSTA.offset()], "APSTA");
        assertEquals(0, u16(id, field("KAS")), "KAS");
        assertEquals(0, ByteBuffer.wrap(id).order(ByteOrder.LITTLE_ENDIAN).getInt((int) field("HMPRE")), "HMPRE");
        assertEquals(0, u16(id, field("CRDT1")), "CRDT1: no command retry delays");
    }

    @Test
    void apstKeepAliveAndHostMemoryBufferAreInvalidFieldAsLinuxExpects() {
        for (int fid : new int[] {0x0C, 0x0D, 0x0F}) {
            for (int sel = 0; sel < 4; sel++) {
                status(get(fid, sel, 0), 0, INVALID_FIELD);
            }
            status(set(fid, 1, 0), 0, INVALID_FIELD);
        }
    }

    @Test
    void selectValues4To7AreInvalidFieldForEveryFeature() {
        for (int fid : advertised(d.identify(0x01, 0))) {
            for (int sel = 4; sel < 8; sel++) {
                status(get(fid, sel, 0), 0, INVALID_FIELD);
            }
        }
    }

    @Test
    void saveIsFeatureNotSaveableForEveryFeatureAndChangesNothing() {
        for (int fid : advertised(d.identify(0x01, 0))) {
            int before = get(fid, 0, 0).dw0();
            status(d.admin(Command.setFeatures(fid, 1).cdw(10, 1 << 31 | fid).prp1(page)), 1, NOT_SAVEABLE);
            if (fid != TIMESTAMP) {
                assertEquals(before, get(fid, 0, 0).dw0(), "FID " + fid);
            }
        }
        status(d.admin(Command.setFeatures(0x55, 1).cdw(10, 1 << 31 | 0x55)), 0, INVALID_FIELD); // unknown FID first
    }

    @Test
    void setWithANamespaceIdIsFeatureNotNamespaceSpecific() throws Exception {
        for (int nsid : new int[] {1, 2, 7}) {
            status(set(0x01, 0x0302, nsid), 1, NOT_NAMESPACE_SPECIFIC);
            status(set(HOST_BEHAVIOR, 0, nsid), 1, NOT_NAMESPACE_SPECIFIC);
        }
        assertEquals(0, get(0x01, 0, 0).dw0(), "nothing set");
        assertTrue(set(0x01, 0x0302, BROADCAST).ok());
        assertEquals(0x0302, get(0x01, 0, 1).dw0(), "Get ignores the NSID of a controller feature");
        assertTrue(set(0x01, 0x0303, 0).ok());
        assertEquals(0x0303, get(0x01, 0, BROADCAST).dw0());
    }

    @Test
    void dwordFeaturesRoundTripAndKeepTheirDefault() {
        int[][] values = {{0x01, 0x0302}, {0x04, 350}, {0x05, 100}, {0x08, 0x0A04}, {0x0A, 1}, {0x0B, 1 << 8}, {0x80, 5}};
        for (int[] v : values) {
            int fid = v[0];
            int dflt = get(fid, 1, 0).dw0();
            assertEquals(4, get(fid, 3, 0).dw0(), "FID " + fid + ": changeable only");
            assertTrue(set(fid, v[1], 0).ok());
            assertEquals(v[1], get(fid, 0, 0).dw0(), "FID " + fid);
            assertEquals(dflt, get(fid, 1, 0).dw0(), "FID " + fid + ": default");
            assertEquals(dflt, get(fid, 2, 0).dw0(), "FID " + fid + ": saved = default");
        }
        assertEquals(0, get(0x07, 3, 0).dw0(), "Number of Queues: not changeable");
        d.disable();
        d.enable();
        for (int[] v : values) {
            assertEquals(get(v[0], 1, 0).dw0(), get(v[0], 0, 0).dw0(), "FID " + v[0] + " back to its default after a reset");
        }
    }

    // ---- Timestamp (0Eh)

    private long timestamp(int sel) throws GuestMemoryException {
        assertTrue(get(TIMESTAMP, sel, 0).ok());
        return ByteBuffer.wrap(read(8)).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    private Completion setTimestamp(long value) throws GuestMemoryException {
        write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(value).array());
        return set(TIMESTAMP, 0, 0);
    }

    private static long millis(long qword) {
        return qword & ((1L << 48) - 1);
    }

    private static int origin(long qword) {
        return (int) (qword >>> 49) & 7;
    }

    @Test
    void timestampCountsOnFromTheValueTheHostSetAndReportsItsOrigin() throws Exception {
        long sinceStart = System.nanoTime();
        long atReset = timestamp(0);
        assertEquals(0, origin(atReset), "000b: counted from the reset");
        assertEquals(0, (atReset >>> 48) & 1, "Synch 0");
        assertTrue(millis(atReset) <= (System.nanoTime() - sinceStart) / 1_000_000 + 60_000, "counted from the reset: " + atReset);

        long t = 1_764_580_000_000L; // a 2025 date in milliseconds
        long before = System.nanoTime();
        assertTrue(setTimestamp(t | 0xFFL << 56 | 0xFFL << 48).ok(), "bytes 7:6 of a Set are ignored");
        long first = timestamp(0);
        assertEquals(1, origin(first), "001b: set with Set Features");
        assertEquals(0, (first >>> 48) & 1, "Synch 0: the count never stopped");
        assertEquals(0, first >>> 56, "byte 7 reserved");
        assertTrue(millis(first) >= t, first + " < " + t);
        // awaited, not slept: the count advances
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        long later;
        do {
            later = millis(timestamp(0));
        } while (later <= millis(first) && System.nanoTime() < deadline);
        long elapsedMs = (System.nanoTime() - before) / 1_000_000;
        assertTrue(later > millis(first), "the timestamp advances");
        assertTrue(later <= t + elapsedMs + 1, later + " counted faster than real time (" + elapsedMs + " ms)");

        long dflt = timestamp(1);
        assertEquals(0, origin(dflt), "the default is the never-set count");
        assertTrue(millis(dflt) < t);
        assertEquals(0, origin(timestamp(2)), "saved = default");
        assertEquals(4, get(TIMESTAMP, 3, 0).dw0(), "changeable");

        d.disable();
        d.enable();
        assertEquals(0, origin(timestamp(0)), "a reset restarts the count at 0");
        assertTrue(millis(timestamp(0)) < t);
    }

    @Test
    void linuxBringUpSetsTheTimestampToTheWallClock() throws Exception {
        d.disable();
        long before = System.currentTimeMillis();
        d.bringUp(1, 16, false); // nvme_configure_timestamp, as nvme_init_ctrl_finish does with ONCS bit 6
        long after = System.currentTimeMillis();
        long ts = timestamp(0);
        assertEquals(1, origin(ts), "set by the host");
        assertTrue(millis(ts) >= before && millis(ts) <= System.currentTimeMillis() + 1,
                millis(ts) + " not within [" + before + ", " + after + "]");
    }

    @Test
    void timestampWrapsAt48Bits() throws Exception {
        long max = (1L << 48) - 1;
        assertTrue(setTimestamp(max).ok());
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        long v;
        do {
            v = timestamp(0);
        } while (millis(v) == max && System.nanoTime() < deadline);
        assertTrue(millis(v) < 5_000, "wrapped to a small count: " + millis(v));
        assertEquals(1, origin(v));
    }

    // ---- Host Behavior Support (16h)

    private byte[] hostBehavior(int acre) {
        byte[] data = new byte[512];
        data[0] = (byte) acre;
        return data;
    }

    @Test
    void hostBehaviorSupportKeepsWhatTheHostSetsAndRejectsWhatItCannotHonour() throws Exception {
        assertTrue(get(HOST_BEHAVIOR, 0, 0).ok());
        assertArrayEquals(new byte[512], read(512), "nothing enabled after a reset");
        write(hostBehavior(1));
        assertTrue(set(HOST_BEHAVIOR, 0, 0).ok(), "ACRE = 1");
        f.host.memory().fill(page, 512, (byte) 0xEE);
        assertTrue(get(HOST_BEHAVIOR, 0, 0).ok());
        assertArrayEquals(hostBehavior(1), read(512));
        assertTrue(get(HOST_BEHAVIOR, 1, 0).ok());
        assertArrayEquals(new byte[512], read(512), "default");
        assertTrue(get(HOST_BEHAVIOR, 2, 0).ok());
        assertArrayEquals(new byte[512], read(512), "saved = default");
        assertEquals(4, get(HOST_BEHAVIOR, 3, 0).dw0(), "changeable");

        for (int at : new int[] {1, 2, 3, 4, 100, 511}) { // ETDAS, LBAFEE, reserved...
            byte[] data = hostBehavior(0);
            data[at] = 1;
            write(data);
            status(set(HOST_BEHAVIOR, 0, 0), 0, INVALID_FIELD);
        }
        write(hostBehavior(2)); // ACRE bits 7:1 reserved
        status(set(HOST_BEHAVIOR, 0, 0), 0, INVALID_FIELD);
        assertTrue(get(HOST_BEHAVIOR, 0, 0).ok());
        assertArrayEquals(hostBehavior(1), read(512), "a rejected Set changes nothing");

        d.disable();
        d.enable();
        assertTrue(get(HOST_BEHAVIOR, 0, 0).ok());
        assertArrayEquals(new byte[512], read(512), "reset to the default");
    }

    @Test
    void dataFeaturesWithBuffersOutsideGuestMemoryAreDataTransferErrorAndChangeNothing() throws Exception {
        long end = f.host.ramSize();
        long[][] outside = {{1L << 40, 0}, {end - 256, end}}; // unmapped; the second page past the end of RAM
        for (long[] prps : outside) {
            for (int fid : new int[] {TIMESTAMP, HOST_BEHAVIOR}) {
                int bytes = fid == TIMESTAMP ? 8 : 512;
                if (bytes <= 256 && prps[0] == end - 256) {
                    continue; // fits in the last 256 bytes of RAM
                }
                status(d.admin(Command.getFeatures(fid, 0, 0).prp1(prps[0]).prp2(prps[1])), 0, DATA_TRANSFER_ERROR);
                status(d.admin(Command.setFeatures(fid, 0).prp1(prps[0]).prp2(prps[1])), 0, DATA_TRANSFER_ERROR);
            }
        }
        // an 8-byte timestamp straddling the end of RAM
        status(d.admin(Command.setFeatures(TIMESTAMP, 0).prp1(end - 4).prp2(end)), 0, DATA_TRANSFER_ERROR);
        assertEquals(0, origin(timestamp(0)), "no Set took effect");
        assertTrue(f.stat("guest.error.dma-outside-memory") > 0);
    }
}
