package io.javadevices.nvme;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Sgl;
import io.javadevices.nvme.driver.Sgl.Descriptor;
import io.javadevices.nvme.model.Namespace;
import io.javadevices.nvme.model.NamespaceTable;
import io.javadevices.nvme.spec.Nvme;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The fields of the commands the fuzz targets send ({@link NvmeRacingHostFuzzTest} with Jazzer's choices,
 * {@link FuzzTest} with a seeded {@link Random}), shaped per opcode so that most commands get past the first
 * field check and reach the command's real work: LBAs near the namespace's edges, Copy source range lists, Write
 * Zeroes with DEAC, Format NVM LBAF / SES / PI, Get LBA Status ATYPE / MNDW / RL, Get Log Page of every LID at
 * edge offsets, Timestamp / Host Behavior Support data buffers, and data pointers as PRPs or as SGLs (PSDT 01b /
 * 10b) both Linux-shaped (nvme_pci_setup_data_sgl: one inline Data Block, or a Last Segment list) and malformed
 * (bad types and sub types, loops, wrong lengths, segments outside memory or in pages the device may only read).
 *
 * <p>Structures the shapes build (range lists, SGL segments, feature data) go into {@link #SLOTS} slots of two
 * pages ({@code built}): a command of a burst takes the next slot, so the commands of one burst do not overwrite
 * each other's lists before the device read them. Data blocks point only into the data area the target gives
 * ({@code data}, {@code dataPages} pages), never past it.
 *
 * <p>Adding a command: its opcode into {@link #IO_OPCODES} or {@link #ADMIN_OPCODES} (the generic fields of the
 * targets then reach it), and a case in {@link #io} / {@link #admin} if its fields are worth shaping.
 */
final class CommandShapes {
    /** I/O opcodes the targets pick from (NVMe 1.4 Figure 346, Copy from NVMe 2.0). */
    static final int[] IO_OPCODES = {Nvme.IO_FLUSH, Nvme.IO_WRITE, Nvme.IO_READ, Nvme.IO_WRITE_UNCORRECTABLE,
            Nvme.IO_COMPARE, Nvme.IO_WRITE_ZEROES, Nvme.IO_DSM, Nvme.IO_VERIFY, Nvme.IO_COPY};
    /**
     * Admin opcodes the targets pick from (not the AER: it completes only on an event). Namespace Management (0Dh)
     * and Namespace Attachment (15h) get the targets' generic fields; both targets keep namespace 1 usable (see
     * {@link FuzzTest#randomAdmin} and {@code NvmeRacingHostFuzzTest.Racer}).
     */
    static final int[] ADMIN_OPCODES = {Nvme.ADM_DELETE_SQ, Nvme.ADM_CREATE_SQ, Nvme.ADM_GET_LOG_PAGE,
            Nvme.ADM_DELETE_CQ, Nvme.ADM_CREATE_CQ, Nvme.ADM_IDENTIFY, Nvme.ADM_ABORT, Nvme.ADM_SET_FEATURES,
            Nvme.ADM_GET_FEATURES, Nvme.ADM_KEEP_ALIVE, Nvme.ADM_DOORBELL_BUFFER_CONFIG, Nvme.ADM_FORMAT_NVM,
            Nvme.ADM_GET_LBA_STATUS, Nvme.ADM_NAMESPACE_MANAGEMENT, Nvme.ADM_NAMESPACE_ATTACHMENT};
    /** Log pages the controller has (admin/LogPages), and 06h / 0Dh / FFh it has not. */
    static final int[] LOG_PAGES = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x0E, 0x12, 0x06, 0x0D, 0xFF};
    /** Log page offsets (LPO) at the sizes of the pages (512, 1024, 4096, 8192 bytes), beyond them, and huge. */
    static final long[] LOG_OFFSETS = {0, 4, 508, 512, 1020, 1024, 4092, 4096, 8188, 8192, 8196, 1L << 32,
            1L << 62, 1L << 63, -4, Long.MAX_VALUE & ~3};
    /** Features with a data buffer (admin/DataFeatures): Timestamp, Host Behavior Support. */
    static final int TIMESTAMP = 0x0E, HOST_BEHAVIOR = 0x16;
    /** Structures of this many commands can be in flight at once (one burst). */
    static final int SLOTS = 4;
    static final int SLOT_BYTES = 8192;

    /** Where the choices come from: Jazzer's data or a seeded Random. */
    interface Choices {
        /** An int in {@code [lo, hi]}. */
        int range(int lo, int hi);

        long any();

        boolean coin();

        default int pick(int... values) {
            return values[range(0, values.length - 1)];
        }

        default long pickLong(long... values) {
            return values[range(0, values.length - 1)];
        }

        static Choices of(FuzzedDataProvider d) {
            return new Choices() {
                public int range(int lo, int hi) {
                    return d.consumeInt(lo, hi);
                }

                public long any() {
                    return d.consumeLong();
                }

                public boolean coin() {
                    return d.consumeBoolean();
                }
            };
        }

        static Choices of(Random r) {
            return new Choices() {
                public int range(int lo, int hi) {
                    return lo + (int) Math.floorMod(r.nextLong(), (long) hi - lo + 1);
                }

                public long any() {
                    return r.nextLong();
                }

                public boolean coin() {
                    return r.nextBoolean();
                }
            };
        }
    }

    private final Choices ch;
    private final GuestMemory memory;
    private final NamespaceTable namespaces;
    private final long data;
    private final int dataPages;
    private final long built;
    /** Pages a segment list may lie in that the device may read but must not write (guards), or not RAM at all. */
    private final long[] hostileLists;
    private int slot;

    /**
     * @param data         the first of {@code dataPages} pages data blocks may point at
     * @param built        {@link #SLOTS} × {@link #SLOT_BYTES} bytes for the structures (range lists, segments)
     * @param hostileLists addresses of pages a malformed SGL may name as a segment (read-only guards, not RAM)
     */
    CommandShapes(Choices ch, GuestMemory memory, NamespaceTable namespaces, long data, int dataPages, long built,
                  long... hostileLists) {
        this.ch = ch;
        this.memory = memory;
        this.namespaces = namespaces;
        this.data = data;
        this.dataPages = dataPages;
        this.built = built;
        this.hostileLists = hostileLists;
    }

    /** A new burst: its commands take the slots from the first again. */
    void newBurst() {
        slot = 0;
    }

    private long payloadPage() {
        return built + (long) SLOT_BYTES * (slot % SLOTS);
    }

    private long segmentPage() {
        return payloadPage() + 4096;
    }

    // ------------------------------------------------------------ I/O

    /** Shapes the fields of I/O command {@code c} (which has the target's generic fields) by its opcode. */
    Command io(Command c) {
        int opcode = c.opcode();
        int nsid = ch.pick(1, 1, 1, 2, c.cdw(1));
        c.nsid(nsid);
        int shift = shift(nsid);
        long slba = lba(nsid);
        int nlb = ch.coin() ? ch.range(0, 15) : ch.pick(0, 0x1F, 0xFF, 0xFFFF, ch.range(0, 0xFFFF));
        boolean fua = ch.range(0, 3) == 0;
        switch (opcode) {
            case Nvme.IO_READ, Nvme.IO_WRITE, Nvme.IO_COMPARE -> {
                c.slba(slba).cdw(12, nlb | (fua ? 1 << 30 : 0));
                dataPointer(c, (long) (nlb + 1) << shift, opcode == Nvme.IO_READ);
            }
            case Nvme.IO_VERIFY -> c.slba(slba).cdw(12, nlb | (ch.coin() ? ch.range(0, 15) << 26 : 0)); // PRINFO
            case Nvme.IO_WRITE_UNCORRECTABLE -> c.slba(slba).cdw(12, nlb);
            case Nvme.IO_WRITE_ZEROES -> c.slba(slba).cdw(12, nlb | (ch.coin() ? 1 << 25 : 0) | (fua ? 1 << 30 : 0)); // DEAC
            case Nvme.IO_COPY -> copy(c, nsid);
            default -> {
            }
        }
        slot++;
        return c;
    }

    /** The namespace's current LBA data size (log2); 9 if it is not attached (the host's guess). */
    private int shift(int nsid) {
        Namespace ns = namespaces.attached(nsid);
        return ns == null ? 9 : ns.lbaShift();
    }

    private long blocks(int nsid) {
        Namespace ns = namespaces.attached(nsid);
        return ns == null ? 2048 : ns.blocks();
    }

    /** An LBA: mostly small, else at and beyond the end of the namespace, or huge. */
    private long lba(int nsid) {
        long blocks = blocks(nsid);
        return switch (ch.range(0, 5)) {
            case 0, 1, 2 -> ch.range(0, 64);
            case 3 -> blocks - ch.range(0, 16);
            case 4 -> ch.pickLong(blocks, blocks + 1, 1L << 32, -1L, Long.MAX_VALUE);
            default -> ch.any();
        };
    }

    /**
     * Copy (19h): NR ranges (0-based, up to and beyond MSRC), descriptor format (mostly 0), FUA; the source range
     * entries (format 0: SLBA at byte 8, NLB 0-based at byte 16) written into the slot, pointed at by PRP1 or an
     * SGL.
     */
    private void copy(Command c, int nsid) {
        int nr = ch.coin() ? ch.range(0, 7) : ch.pick(126, 127, 128, 255);
        int format = ch.range(0, 7) == 0 ? ch.range(1, 15) : 0;
        c.slba(lba(nsid)).cdw(12, nr | format << 8 | (ch.range(0, 3) == 0 ? 1 << 30 : 0));
        long list = payloadPage();
        int entries = Math.min(nr + 1, 128);
        try {
            for (int i = 0; i < entries; i++) {
                long at = list + 32L * i;
                memory.writeLong(at, 0);
                memory.writeLong(at + 8, lba(nsid));
                memory.writeLong(at + 16, ch.coin() ? ch.range(0, 31) : ch.pick(0xFF, 0x7FF, 0xFFFF, ch.range(0, 0xFFFF)));
                memory.writeLong(at + 24, 0);
            }
        } catch (GuestMemoryException e) {
            throw new IllegalStateException(e);
        }
        long bytes = 32L * (nr + 1);
        if (ch.coin()) {
            c.psdt(0).prp1(list).prp2(bytes > 4096 ? segmentPage() : 0);
        } else {
            c.sgl(Descriptor.data(list, (int) (ch.range(0, 7) == 0 ? bytes - 16 : bytes))).psdt(ch.pick(1, 1, 2, 3));
        }
    }

    /** A data pointer for {@code bytes}: the generic PRPs, valid PRPs into the data area, or an SGL. */
    private void dataPointer(Command c, long bytes, boolean toHost) {
        switch (ch.range(0, 3)) {
            case 0 -> {
                // the target's generic PRP1/PRP2 as they are
            }
            case 1 -> c.psdt(0).prp1(dataPage()).prp2(dataPage());
            default -> sgl(c, bytes, toHost);
        }
    }

    private long dataPage() {
        return data + 4096L * ch.range(0, dataPages - 1);
    }

    // ------------------------------------------------------------ SGLs

    /** Sets PSDT 01b / 10b (sometimes the reserved 11b) and an SGL for {@code bytes}, valid or not. */
    private void sgl(Command c, long bytes, boolean toHost) {
        long seg = segmentPage();
        int kind = ch.range(0, 9);
        switch (kind) {
            case 0, 1 -> c.sgl(inlineBlock(bytes)); // Linux: one DMA segment → one Data Block in the command
            case 2, 3 -> {                          // Linux: a Last Segment list of one Data Block per DMA segment
                List<Descriptor> list = pieces(bytes, 255, toHost && kind == 3);
                write(seg, list);
                c.sgl(Descriptor.lastSegment(seg, list.size()));
            }
            case 4 -> { // two segments: Segment → [blocks..., Last Segment] → [blocks...]
                List<Descriptor> list = pieces(bytes, 200, toHost && ch.coin());
                int first = list.isEmpty() ? 0 : ch.range(1, list.size());
                List<Descriptor> head = new ArrayList<>(list.subList(0, first));
                List<Descriptor> tail = list.subList(first, list.size());
                head.add(Descriptor.lastSegment(seg + 16L * (head.size() + 1), tail.size()));
                write(seg, head);
                write(seg + 16L * head.size(), tail);
                c.sgl(Descriptor.segment(seg, head.size()));
            }
            case 5 -> { // a valid list with one descriptor broken: type, sub type, length or address
                List<Descriptor> list = pieces(bytes, 255, toHost);
                if (!list.isEmpty()) {
                    int i = ch.range(0, list.size() - 1);
                    Descriptor d = list.get(i);
                    list.set(i, switch (ch.range(0, 4)) {
                        case 0 -> new Descriptor(d.address(), d.length(), ch.range(0, 255));
                        case 1 -> new Descriptor(d.address(), d.length() + ch.pick(1, -1, 16, 4096, Integer.MIN_VALUE), d.identifier());
                        case 2 -> new Descriptor(ch.pickLong(-1L, 1L << 40, -4096L, (1L << 40) - 8), d.length(), d.identifier());
                        case 3 -> Descriptor.segment(seg, 1); // a Segment before the last entry
                        default -> Descriptor.of(Sgl.KEYED_DATA_BLOCK, 0, d.address(), d.length());
                    });
                }
                write(seg, list);
                c.sgl(ch.coin() ? Descriptor.lastSegment(seg, list.size()) : Descriptor.segment(seg, list.size()));
            }
            case 6 -> { // a loop: a Segment whose last entry points back at itself (with or without data before it)
                int blocks = ch.range(0, 3);
                List<Descriptor> list = new ArrayList<>();
                for (int i = 0; i < blocks; i++) {
                    list.add(Descriptor.data(dataPage(), ch.pick(0, 512, 4096)));
                }
                list.add(Descriptor.segment(seg, blocks + 1));
                write(seg, list);
                c.sgl(Descriptor.segment(seg, blocks + 1));
            }
            case 7 -> { // a segment descriptor that is wrong itself: where it is, its length, its sub type
                long at = switch (ch.range(0, 3)) {
                    case 0 -> hostileLists.length == 0 ? -4096L : hostileLists[ch.range(0, hostileLists.length - 1)];
                    case 1 -> seg + ch.pick(1, 4, 8, 4095);
                    case 2 -> ch.pickLong(-16L, 1L << 40, (1L << 40) - 16, 1L << 62);
                    default -> seg;
                };
                int length = ch.pick(0, 8, 15, 16, 32, 4096, 1 << 20, -16, ch.range(0, 1 << 16));
                int type = ch.pick(Sgl.SEGMENT, Sgl.LAST_SEGMENT);
                write(seg, pieces(bytes, 16, false));
                c.sgl(new Descriptor(at, length, type << 4 | (ch.range(0, 3) == 0 ? ch.range(1, 15) : 0)));
            }
            case 8 -> c.sgl(ch.coin() ? Descriptor.bitBucket((int) bytes) // bit bucket as SGL1, any direction
                    : Descriptor.data(dataPage(), (int) bytes + ch.pick(-1, 1, -512, 4096)));
            default -> { // SGL1 of any type, with a length that cannot run past the data area if it is a Data Block
                int offset = ch.range(0, 4095);
                c.sgl(new Descriptor(dataPage() + offset, ch.range(0, 4096 - offset), ch.range(0, 255)));
            }
        }
        c.psdt(ch.range(0, 7) == 0 ? 3 : ch.pick(1, 1, 2));
    }

    /** One Data Block for the whole transfer, at an address where it fits the data area when it can. */
    private Descriptor inlineBlock(long bytes) {
        long room = 4096L * dataPages;
        long start = bytes >= room ? 0 : ch.range(0, (int) Math.min(room - bytes, 1 << 20));
        return Descriptor.data(data + start, (int) Math.min(bytes, room));
    }

    /**
     * Data Blocks covering {@code bytes} (at most {@code max} of them; fewer bytes then), each inside one page of
     * the data area as Linux's DMA segments are, the first at any byte offset; {@code buckets}: some are Bit
     * Buckets instead (read only).
     */
    private List<Descriptor> pieces(long bytes, int max, boolean buckets) {
        List<Descriptor> list = new ArrayList<>();
        long left = bytes;
        int offset = ch.coin() ? 0 : ch.range(0, 4095);
        while (left > 0 && list.size() < max) {
            int n = (int) Math.min(left, 4096 - offset);
            if (ch.range(0, 7) == 0) {
                n = Math.min(n, ch.range(0, n)); // a shorter block, even empty
            }
            list.add(buckets && ch.range(0, 3) == 0 ? Descriptor.bitBucket(n) : Descriptor.data(dataPage() + offset, n));
            left -= n;
            offset = 0;
        }
        return list;
    }

    private void write(long at, List<Descriptor> list) {
        Sgl.write(memory, at, list.toArray(Descriptor[]::new));
    }

    // ------------------------------------------------------------ admin

    /** Shapes the fields of admin command {@code c} (which has the target's generic fields) by its opcode. */
    Command admin(Command c) {
        switch (c.opcode()) {
            case Nvme.ADM_GET_LOG_PAGE -> {
                long lpo = ch.pickLong(LOG_OFFSETS);
                int numd = ch.pick(0, 1, 127, 255, 1023, 2047, 0xFFFF, ch.range(0, 0xFFFF));
                c.nsid(ch.pick(0, 1, 2, -1, c.cdw(1)))
                        .cdw(10, ch.pick(LOG_PAGES) | (ch.coin() ? 1 << 15 : 0) | ch.range(0, 3) << 8 | numd << 16)
                        .cdw(11, ch.range(0, 3) == 0 ? ch.range(0, 0xFFFF) : 0)
                        .cdw(12, (int) lpo).cdw(13, (int) (lpo >>> 32));
            }
            case Nvme.ADM_FORMAT_NVM -> {
                int lbaf = ch.coin() ? ch.range(0, 1) : ch.range(0, 15);
                boolean odd = ch.range(0, 3) == 0; // MSET, PI, PIL: settings of metadata no format has
                int ses = ch.pick(0, 1, 1, 2, ch.range(0, 7));
                c.nsid(ch.pick(1, 1, 2, -1, 0, 3, c.cdw(1)))
                        .cdw(10, lbaf | (odd ? ch.range(0, 1) << 4 | ch.range(0, 7) << 5 | ch.range(0, 1) << 8 : 0) | ses << 9);
            }
            case Nvme.ADM_GET_LBA_STATUS -> {
                int nsid = ch.pick(1, 1, 2, 0, -1, c.cdw(1));
                long slba = lba(nsid);
                c.nsid(nsid).cdw(10, (int) slba).cdw(11, (int) (slba >>> 32))
                        .cdw(12, ch.pick(0, 1, 3, 5, 2047, 2048, -1, ch.range(0, 4096)))
                        .cdw(13, ch.pick(0x10, 0x11, 0x11, ch.range(0, 255)) << 24 | ch.pick(0, 1, 8, 0xFFFF, ch.range(0, 0xFFFF)));
            }
            case Nvme.ADM_SET_FEATURES, Nvme.ADM_GET_FEATURES -> feature(c);
            default -> {
            }
        }
        return c;
    }

    /**
     * Timestamp / Host Behavior Support: Set with the structure in the slot (a random timestamp; ACRE 0/1, a
     * reserved bit sometimes), Get with any SEL; the data through PRP1 (the generic one, or the slot's page).
     */
    private void feature(Command c) {
        int fid = ch.pick(TIMESTAMP, HOST_BEHAVIOR);
        long page = payloadPage();
        if (c.opcode() == Nvme.ADM_SET_FEATURES) {
            c.cdw(10, fid | (ch.coin() ? 1 << 31 : 0));
            try {
                memory.fill(page, 4096, (byte) 0);
                if (fid == TIMESTAMP) {
                    memory.writeLong(page, ch.any());
                } else {
                    memory.write(page, new byte[] {(byte) ch.pick(0, 1, 1, 2, 0xFF)}, 0, 1);
                    if (ch.range(0, 3) == 0) {
                        memory.write(page + ch.range(1, 511), new byte[] {(byte) ch.range(1, 255)}, 0, 1);
                    }
                }
            } catch (GuestMemoryException e) {
                throw new IllegalStateException(e);
            }
            if (ch.coin()) {
                c.prp1(page + (ch.coin() ? 0 : ch.range(1, 4095))).prp2(ch.coin() ? 0 : page + 4096);
            }
        } else {
            c.cdw(10, fid | ch.range(0, 7) << 8);
            if (ch.coin()) {
                c.prp1(dataPage() + (ch.coin() ? 0 : ch.range(1, 4095))).prp2(dataPage());
            }
        }
        slot++;
    }
}
