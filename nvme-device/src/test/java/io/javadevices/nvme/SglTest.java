package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.driver.Sgl;
import io.javadevices.nvme.driver.Sgl.Descriptor;
import io.javadevices.pci.GuestMemoryException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

/**
 * SGL data pointers for I/O commands (NVMe 1.4 §4.4, Figures 112-118), driven as a host does: the shapes Linux
 * nvme-pci builds (an inline Data Block, a Last Segment pointing at a list of Data Blocks), chained segments, bit
 * buckets, and every malformed SGL with the status the spec (and QEMU's nvme_map_sgl) gives it.
 */
class SglTest {
    private static final int PAGE = 4096;
    /** Generic status codes (SCT 0) of NVMe 1.4 Figure 128. */
    private static final int INVALID_FIELD = 0x02, DATA_TRANSFER_ERROR = 0x04, INVALID_SGL_SEGMENT = 0x0D,
            INVALID_NUMBER_OF_SGL_DESCRIPTORS = 0x0E, DATA_SGL_LENGTH_INVALID = 0x0F, SGL_TYPE_INVALID = 0x11,
            SGL_SUBTYPE_INVALID = 0x17;

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

    // ------------------------------------------------------------------ helpers

    private static byte[] pattern(long seed, int length) {
        return GuestBytes.pattern(seed, length);
    }

    private void put(long address, byte[] data) {
        GuestBytes.put(f, address, data);
    }

    private byte[] get(long address, int length) {
        return GuestBytes.get(f, address, length);
    }

    /** Writes {@code data} at LBA {@code slba} with plain PRPs (the reference path). */
    private void writeWithPrps(long slba, byte[] data) {
        int pages = (data.length + PAGE - 1) / PAGE;
        long buf = f.host.allocatePages(pages);
        put(buf, data);
        long[] addresses = new long[pages + 1];
        for (int i = 0; i < pages; i++) {
            addresses[i] = buf + (long) PAGE * i;
        }
        Command w = Command.write(1, slba, data.length / 512, 0, 0);
        f.driver.setPrps(w, addresses, 0, data.length, f.host.allocatePages(1));
        assertOk(q.execute(w));
    }

    /** Reads {@code length} bytes at LBA {@code slba} with plain PRPs. */
    private byte[] readWithPrps(long slba, int length) {
        int pages = (length + PAGE - 1) / PAGE;
        long buf = f.host.allocatePages(pages);
        long[] addresses = new long[pages + 1];
        for (int i = 0; i < pages; i++) {
            addresses[i] = buf + (long) PAGE * i;
        }
        Command r = Command.read(1, slba, length / 512, 0, 0);
        f.driver.setPrps(r, addresses, 0, length, f.host.allocatePages(1));
        assertOk(q.execute(r));
        return get(buf, length);
    }

    private static void assertOk(Completion c) {
        assertTrue(c.ok(), c.toString());
    }

    private static void status(Completion c, int sc) {
        assertEquals(0, c.sct(), c.toString());
        assertEquals(sc, c.sc(), c.toString());
        assertTrue((c.status() & 0x4000) != 0 || sc == DATA_TRANSFER_ERROR, "DNR on a malformed SGL: " + c);
    }

    /** A read of {@code blocks} 512-byte LBAs at LBA 0 whose SGL1 is {@code sgl1}. */
    private Completion read(int blocks, Descriptor sgl1) {
        return q.execute(Command.read(1, 0, blocks, 0, 0).sgl(sgl1));
    }

    private Completion write(int blocks, Descriptor sgl1) {
        return q.execute(Command.write(1, 0, blocks, 0, 0).sgl(sgl1));
    }

    private void assertStillServing() {
        long buf = f.host.allocatePages(1);
        assertOk(q.execute(Command.read(1, 0, 8, buf, 0)));
        assertEquals(0, f.driver.readReg32(0x1C) & 2, "controller not fatal");
    }

    // ------------------------------------------------------------------ Identify

    @Test
    void identifyAdvertisesExactlyWhatIsImplemented() {
        int sgls = ByteBuffer.wrap(f.driver.identify(1, 0)).order(ByteOrder.LITTLE_ENDIAN).getInt(536);
        assertEquals(0b01, sgls & 0b11, "SGLs supported, no alignment requirement");
        assertEquals(1 << 16, sgls & 1 << 16, "Bit Bucket descriptors supported");
        assertEquals(0, sgls & ~(0b11 | 1 << 16), "no keyed blocks, MPTR SGLs, excess length, offsets: 0x" + Integer.toHexString(sgls));
    }

    // ------------------------------------------------------------------ the shapes that work

    @Test
    void singleInlineDataBlockWritesAndReads() {
        byte[] data = pattern(1, 8192);
        long buf = f.host.allocatePages(2);
        put(buf, data);
        assertOk(q.execute(Sgl.linux(Command.write(1, 40, 16, 0, 0), f.host.memory(), new long[] {buf}, new int[] {8192}, 0)));
        assertArrayEquals(data, readWithPrps(40, 8192), "written with an SGL, read back with PRPs");
        long back = f.host.allocatePages(2);
        assertOk(q.execute(Command.read(1, 40, 16, 0, 0).sgl(Descriptor.data(back, 8192))));
        assertArrayEquals(data, get(back, 8192));
        assertEquals(2, f.stat(NvmeStatistics.IO_SGL), "both SGL commands counted, the PRP read not");
    }

    @Test
    void linuxShapedLastSegmentListOfScatteredBuffers() {
        // The shape nvme_pci_setup_data_sgl builds for a multi-segment request (average segment ≥ sgl_threshold, 32
        // KiB): SGL1 = Last Segment → a list of Data Blocks, one per DMA segment, here of uneven sizes in memory
        // that is deliberately not in transfer order.
        int[] lengths = {32768, 65536, 4096, 45056};
        int total = Arrays.stream(lengths).sum();
        long[] addresses = new long[lengths.length];
        for (int i = lengths.length - 1; i >= 0; i--) {
            addresses[i] = f.host.allocatePages(lengths[i] / PAGE + 1); // a gap page between buffers
        }
        byte[] data = pattern(2, total);
        for (int i = 0, at = 0; i < lengths.length; at += lengths[i], i++) {
            put(addresses[i], Arrays.copyOfRange(data, at, at + lengths[i]));
        }
        int sgls = ByteBuffer.wrap(f.driver.identify(1, 0)).order(ByteOrder.LITTLE_ENDIAN).getInt(536);
        assertTrue(Sgl.linuxUsesSgls(sgls, q.qid, total, lengths.length), "Linux would choose SGLs for this request");
        assertFalse(Sgl.linuxUsesSgls(sgls, q.qid, 8 * PAGE, 8), "but PRPs for 4 KiB segments");
        long list = f.host.allocate(lengths.length * Sgl.BYTES, 256); // Linux's small descriptor pool: 256-byte blocks
        assertOk(q.execute(Sgl.linux(Command.write(1, 1000, total / 512, 0, 0), f.host.memory(), addresses, lengths, list)));
        assertArrayEquals(data, readWithPrps(1000, total), "data integrity: SGL write, PRP read");

        // And back through the same shape: each buffer gets its part.
        long[] back = new long[lengths.length];
        for (int i = 0; i < lengths.length; i++) {
            back[i] = f.host.allocatePages(lengths[i] / PAGE + 1);
        }
        assertOk(q.execute(Sgl.linux(Command.read(1, 1000, total / 512, 0, 0), f.host.memory(), back, lengths, list)));
        for (int i = 0, at = 0; i < lengths.length; at += lengths[i], i++) {
            assertArrayEquals(Arrays.copyOfRange(data, at, at + lengths[i]), get(back[i], lengths[i]), "buffer " + i);
        }
        assertEquals(2, f.stat(NvmeStatistics.IO_SGL));
        assertEquals(0, f.stat(NvmeStatistics.IO_ERRORS));
    }

    @Test
    void chainedSegmentsWithByteAlignedBlocks() {
        // SGL1 = Segment → [data, data, Segment] → [data, Last Segment] → [data, zero-length data, data]: the chained
        // form older Linux built when a list filled its page, with blocks at odd addresses and of odd lengths
        // (SGLS bits 1:0 = 01b: no alignment or granularity requirement).
        byte[] data = pattern(3, 8192);
        long buf = f.host.allocatePages(4);
        int[] lengths = {1000, 3001, 95, 2048, 2048};
        long[] addresses = {buf + 1, buf + 4096 + 3, buf + 2 * 4096 + 7, buf + 3 * 4096, buf + 3 * 4096 - 2048 - 100};
        for (int i = 0, at = 0; i < lengths.length; at += lengths[i], i++) {
            put(addresses[i], Arrays.copyOfRange(data, at, at + lengths[i]));
        }
        long s1 = f.host.allocate(3 * Sgl.BYTES, 16), s2 = f.host.allocate(2 * Sgl.BYTES, 16),
                s3 = f.host.allocate(3 * Sgl.BYTES, 16);
        Sgl.write(f.host.memory(), s1, Descriptor.data(addresses[0], lengths[0]), Descriptor.data(addresses[1], lengths[1]),
                Descriptor.segment(s2, 2));
        Sgl.write(f.host.memory(), s2, Descriptor.data(addresses[2], lengths[2]), Descriptor.lastSegment(s3, 3));
        Sgl.write(f.host.memory(), s3, Descriptor.data(addresses[3], lengths[3]), Descriptor.data(buf, 0),
                Descriptor.data(addresses[4], lengths[4]));
        assertOk(q.execute(Command.write(1, 64, 16, 0, 0).sgl(Descriptor.segment(s1, 3))));
        assertArrayEquals(data, readWithPrps(64, 8192));
    }

    @Test
    void segmentOfMoreDescriptorsThanOneReadChunk() {
        // 299 Data Blocks and a Last Segment descriptor in one segment (the controller reads 256 at a time), then
        // one more block: 300 × 512 bytes, contiguous, so they merge into one piece.
        byte[] data = pattern(9, 300 * 512);
        long buf = f.host.allocatePages(300 * 512 / PAGE + 1);
        put(buf, data);
        Descriptor[] first = new Descriptor[300];
        for (int i = 0; i < 299; i++) {
            first[i] = Descriptor.data(buf + 512L * i, 512);
        }
        long s1 = f.host.allocate(300 * Sgl.BYTES, 16), s2 = f.host.allocate(Sgl.BYTES, 16);
        first[299] = Descriptor.lastSegment(s2, 1);
        Sgl.write(f.host.memory(), s1, first);
        Sgl.write(f.host.memory(), s2, Descriptor.data(buf + 512L * 299, 512));
        assertOk(q.execute(Command.write(1, 2000, 300, 0, 0).sgl(Descriptor.segment(s1, 300))));
        assertArrayEquals(data, readWithPrps(2000, data.length));
    }

    @Test
    void aListOfMoreScatteredBlocksThanTheControllerKeepsIsRefused() {
        // 256 separate pieces (Linux's largest list: one 4 KiB page of descriptors) work; 257 are refused.
        long buf = f.host.allocatePages(130), list = f.host.allocate(257 * Sgl.BYTES, 256);
        Descriptor[] blocks = new Descriptor[257];
        for (int i = 0; i < blocks.length; i++) {
            blocks[i] = Descriptor.data(buf + 2048L * i, 1024); // every other KiB: nothing merges
        }
        Sgl.write(f.host.memory(), list, blocks);
        assertOk(read(512, Descriptor.lastSegment(list, 256)));
        status(q.execute(Command.read(1, 0, 514, 0, 0).sgl(Descriptor.lastSegment(list, 257))),
                INVALID_NUMBER_OF_SGL_DESCRIPTORS);
        assertStillServing();
    }

    @Test
    void psdt10bMapsDataLikePsdt01bAndPsdt11bIsInvalid() {
        // PSDT 10b only changes how MPTR is read, and no namespace here has metadata: the data SGL is the same.
        byte[] data = pattern(4, 4096);
        writeWithPrps(8, data);
        long back = f.host.allocatePages(1);
        assertOk(q.execute(Command.read(1, 8, 8, 0, 0).sgl(Descriptor.data(back, 4096)).psdt(2)));
        assertArrayEquals(data, get(back, 4096));
        assertEquals(INVALID_FIELD, q.execute(Command.read(1, 8, 8, 0, 0).sgl(Descriptor.data(back, 4096)).psdt(3)).sc());
    }

    @Test
    void datasetManagementRangesThroughAnSgl() {
        byte[] data = pattern(5, 4096);
        writeWithPrps(16, data);
        long ranges = f.host.allocatePages(1);
        try {
            f.host.memory().writeInt(ranges + 4, 8);       // NLB
            f.host.memory().writeLong(ranges + 8, 16);     // SLBA
        } catch (GuestMemoryException e) {
            throw new AssertionError(e);
        }
        // NR = 0 (one range), AD: deallocate; the range list arrives through an inline Data Block.
        assertOk(q.execute(Command.of(0x09).nsid(1).cdw(10, 0).cdw(11, 4).sgl(Descriptor.data(ranges, 16))));
        assertArrayEquals(new byte[4096], readWithPrps(16, 4096), "a RAM namespace reads deallocated blocks as zeroes");
        status(q.execute(Command.of(0x09).nsid(1).cdw(10, 0).cdw(11, 4).sgl(Descriptor.data(ranges, 8))),
                DATA_SGL_LENGTH_INVALID);
    }

    @Test
    void dataBlockAcrossTwoAdjacentMemoryRegions() {
        // Guest RAM in two regions that touch: a Data Block may run from one into the other (a PRP page never does).
        long end = f.host.ramSize();
        f.host.memory().map(end, MemorySegment.ofArray(new byte[2 * PAGE]));
        byte[] data = pattern(6, 4096);
        put(end - 2048, data);
        assertOk(write(8, Descriptor.data(end - 2048, 4096)));
        assertArrayEquals(data, readWithPrps(0, 4096));
    }

    // ------------------------------------------------------------------ bit buckets

    @Test
    void bitBucketInAReadDropsThoseBytes() {
        byte[] data = pattern(7, 4096);
        writeWithPrps(0, data);
        long buf = f.host.allocatePages(1);
        byte[] canary = pattern(8, 4096);
        put(buf, canary);
        long list = f.host.allocate(3 * Sgl.BYTES, 16);
        // 1 KiB to buf, 2 KiB discarded, the last 1 KiB to buf + 3 KiB.
        Sgl.write(f.host.memory(), list, Descriptor.data(buf, 1024), Descriptor.bitBucket(2048),
                Descriptor.data(buf + 3072, 1024));
        assertOk(read(8, Descriptor.lastSegment(list, 3)));
        byte[] got = get(buf, 4096);
        assertArrayEquals(Arrays.copyOfRange(data, 0, 1024), Arrays.copyOfRange(got, 0, 1024));
        assertArrayEquals(Arrays.copyOfRange(canary, 1024, 3072), Arrays.copyOfRange(got, 1024, 3072), "bucket bytes not written");
        assertArrayEquals(Arrays.copyOfRange(data, 3072, 4096), Arrays.copyOfRange(got, 3072, 4096), "bucket counted in the length");
    }

    @Test
    void bitBucketInAWriteIsInvalid() {
        long buf = f.host.allocatePages(1), list = f.host.allocate(2 * Sgl.BYTES, 16);
        Sgl.write(f.host.memory(), list, Descriptor.data(buf, 2048), Descriptor.bitBucket(2048));
        status(write(8, Descriptor.lastSegment(list, 2)), SGL_TYPE_INVALID);
        status(write(8, Descriptor.bitBucket(4096)), SGL_TYPE_INVALID);
        assertTrue(f.stat("guest.error.invalid-sgl") >= 2);
    }

    // ------------------------------------------------------------------ memory bounds

    @Test
    void dataBlocksOutsideGuestMemoryAreDataTransferErrors() {
        status(read(8, Descriptor.data(1L << 40, 4096)), DATA_TRANSFER_ERROR);
        status(write(8, Descriptor.data(f.host.ramSize() - 2048, 4096)), DATA_TRANSFER_ERROR); // runs off the end
        long list = f.host.allocate(2 * Sgl.BYTES, 16), buf = f.host.allocatePages(1);
        Sgl.write(f.host.memory(), list, Descriptor.data(buf, 2048), Descriptor.data(0x8000_0000_0000_0000L, 2048));
        status(read(8, Descriptor.lastSegment(list, 2)), DATA_TRANSFER_ERROR);
        assertTrue(f.stat("guest.error.dma-outside-memory") >= 3);
        assertStillServing();
    }

    @Test
    void segmentListInUnmappedMemoryIsDataTransferError() {
        status(read(8, Descriptor.lastSegment(1L << 40, 1)), DATA_TRANSFER_ERROR);
        // A list that starts in RAM and runs past its end.
        status(read(8, Descriptor.lastSegment(f.host.ramSize() - Sgl.BYTES, 2)), DATA_TRANSFER_ERROR);
        assertStillServing();
    }

    @Test
    void addressRangeThatWrapsIsDataSglLengthInvalid() {
        status(read(8, Descriptor.data(-2048L, 4096)), DATA_SGL_LENGTH_INVALID);
    }

    // ------------------------------------------------------------------ loops and lengths

    @Test
    void segmentPointingAtItselfEndsWithAnErrorNotAHang() {
        long list = f.host.allocate(2 * Sgl.BYTES, 16), buf = f.host.allocatePages(1);
        // No progress: a segment whose only descriptor is a Segment descriptor to itself.
        Sgl.write(f.host.memory(), list, Descriptor.segment(list, 1));
        status(read(8, Descriptor.segment(list, 1)), INVALID_SGL_SEGMENT);
        // Progress each hop: 512 bytes, then itself again; after the transfer is covered the next block is excess.
        Sgl.write(f.host.memory(), list, Descriptor.data(buf, 512), Descriptor.segment(list, 2));
        status(read(8, Descriptor.segment(list, 2)), DATA_SGL_LENGTH_INVALID);
        // The same with a huge transfer (MDTS) and 1-byte blocks: bounded by the descriptor limit, not by the length.
        Sgl.write(f.host.memory(), list, Descriptor.data(buf, 1), Descriptor.segment(list, 2));
        status(read(1024, Descriptor.segment(list, 2)), INVALID_NUMBER_OF_SGL_DESCRIPTORS);
        assertStillServing();
    }

    @Test
    void sglShorterOrLongerThanTheTransferIsDataSglLengthInvalid() {
        long buf = f.host.allocatePages(2), list = f.host.allocate(2 * Sgl.BYTES, 16);
        status(read(8, Descriptor.data(buf, 4095)), DATA_SGL_LENGTH_INVALID);
        status(read(8, Descriptor.data(buf, 4097)), DATA_SGL_LENGTH_INVALID); // SGLS bit 18 clear: lengths must match
        Sgl.write(f.host.memory(), list, Descriptor.data(buf, 2048), Descriptor.data(buf + 2048, 1024));
        status(write(8, Descriptor.lastSegment(list, 2)), DATA_SGL_LENGTH_INVALID);
        Sgl.write(f.host.memory(), list, Descriptor.data(buf, 4096), Descriptor.data(buf + 4096, 512));
        status(write(8, Descriptor.lastSegment(list, 2)), DATA_SGL_LENGTH_INVALID);
        status(read(8, Descriptor.data(buf, 0)), DATA_SGL_LENGTH_INVALID); // nothing described at all
    }

    // ------------------------------------------------------------------ malformed descriptors

    @Test
    void wrongTypeOrSubType() {
        long buf = f.host.allocatePages(1), list = f.host.allocate(2 * Sgl.BYTES, 16);
        status(read(8, Descriptor.of(Sgl.KEYED_DATA_BLOCK, 0, buf, 4096)), SGL_TYPE_INVALID); // fabrics only
        status(read(8, Descriptor.of(0xF, 0, buf, 4096)), SGL_TYPE_INVALID);                  // vendor specific
        status(read(8, Descriptor.of(Sgl.DATA_BLOCK, 1, buf, 4096)), SGL_SUBTYPE_INVALID);    // offset: fabrics only
        status(read(8, Descriptor.of(Sgl.LAST_SEGMENT, 1, list, 32)), SGL_SUBTYPE_INVALID);
        Sgl.write(f.host.memory(), list, Descriptor.data(buf, 2048), Descriptor.of(0x5, 0, buf + 2048, 2048));
        status(read(8, Descriptor.lastSegment(list, 2)), SGL_TYPE_INVALID);
        Sgl.write(f.host.memory(), list, Descriptor.data(buf, 2048), Descriptor.of(Sgl.DATA_BLOCK, 2, buf + 2048, 2048));
        status(read(8, Descriptor.lastSegment(list, 2)), SGL_SUBTYPE_INVALID);
        assertStillServing();
    }

    @Test
    void malformedSegments() {
        long buf = f.host.allocatePages(1), list = f.host.allocate(4 * Sgl.BYTES, 16), next = f.host.allocate(Sgl.BYTES, 16);
        Sgl.write(f.host.memory(), list, Descriptor.data(buf, 2048), Descriptor.data(buf + 2048, 2048));
        status(read(8, Descriptor.lastSegment(list + 4, 2)), INVALID_SGL_SEGMENT);        // not qword aligned
        status(read(8, Descriptor.of(Sgl.LAST_SEGMENT, 0, list, 0)), INVALID_SGL_SEGMENT); // empty segment
        status(read(8, Descriptor.of(Sgl.LAST_SEGMENT, 0, list, 24)), INVALID_SGL_SEGMENT); // not whole descriptors
        // A Segment descriptor before the last entry of a segment.
        Sgl.write(f.host.memory(), list, Descriptor.data(buf, 2048), Descriptor.lastSegment(next, 1),
                Descriptor.data(buf + 2048, 2048));
        Sgl.write(f.host.memory(), next, Descriptor.data(buf + 2048, 2048));
        status(read(8, Descriptor.segment(list, 3)), INVALID_NUMBER_OF_SGL_DESCRIPTORS);
        // A Last Segment whose segment chains on.
        Sgl.write(f.host.memory(), list, Descriptor.data(buf, 2048), Descriptor.lastSegment(next, 1));
        status(read(8, Descriptor.lastSegment(list, 2)), INVALID_SGL_SEGMENT);
        // ... while as a Segment it is the valid chain.
        assertOk(read(8, Descriptor.segment(list, 2)));
        // A zero-length Data Block transfers nothing and is fine anywhere.
        Sgl.write(f.host.memory(), list, Descriptor.data(0, 0), Descriptor.data(buf, 4096), Descriptor.data(1L << 40, 0));
        assertOk(read(8, Descriptor.lastSegment(list, 3)));
        assertTrue(f.stat("guest.error.invalid-sgl") >= 5);
    }

    @Test
    void sglOnAnAdminCommandIsInvalidField() {
        // "SGLs shall not be used for Admin commands in NVMe over PCIe" (QEMU nvme_admin_cmd: Invalid Field).
        long buf = f.host.allocatePages(1);
        Completion c = f.driver.admin(Command.identify(1, 0, 0).sgl(Descriptor.data(buf, 4096)));
        assertEquals(0, c.sct(), c.toString());
        assertEquals(INVALID_FIELD, c.sc(), c.toString());
        assertArrayEquals(new byte[4096], get(buf, 4096), "nothing transferred");
        assertEquals(0, f.stat(NvmeStatistics.IO_SGL), "admin commands are not I/O");
    }
}
