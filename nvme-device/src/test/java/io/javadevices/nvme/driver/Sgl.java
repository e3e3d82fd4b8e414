package io.javadevices.nvme.driver;

import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

/**
 * Scatter Gather Lists as a host builds them (NVMe 1.4 §4.4, Figures 112-118): 16-byte descriptors (Address,
 * Length, SGL Identifier = type in bits 7:4, sub type in bits 3:0), written to guest memory as segments.
 * {@link #linux} builds exactly what Linux nvme_pci_setup_data_sgl builds.
 */
public final class Sgl {
    public static final int DATA_BLOCK = 0x0, BIT_BUCKET = 0x1, SEGMENT = 0x2, LAST_SEGMENT = 0x3, KEYED_DATA_BLOCK = 0x4;
    public static final int BYTES = 16;

    private Sgl() {
    }

    /** One SGL descriptor. */
    public record Descriptor(long address, int length, int identifier) {
        public static Descriptor of(int type, int subType, long address, int length) {
            return new Descriptor(address, length, type << 4 | subType);
        }

        public static Descriptor data(long address, int length) {
            return of(DATA_BLOCK, 0, address, length);
        }

        public static Descriptor bitBucket(int length) {
            return of(BIT_BUCKET, 0, 0, length);
        }

        /** A Segment descriptor for a segment of {@code entries} descriptors at {@code address}. */
        public static Descriptor segment(long address, int entries) {
            return of(SEGMENT, 0, address, entries * BYTES);
        }

        /** A Last Segment descriptor (nvme_pci_sgl_set_seg: NVME_SGL_FMT_LAST_SEG_DESC, length = entries × 16). */
        public static Descriptor lastSegment(long address, int entries) {
            return of(LAST_SEGMENT, 0, address, entries * BYTES);
        }
    }

    /** Writes {@code descriptors} as a segment at {@code address}. */
    public static void write(GuestMemory memory, long address, Descriptor... descriptors) {
        try {
            for (int i = 0; i < descriptors.length; i++) {
                Descriptor d = descriptors[i];
                long at = address + (long) BYTES * i;
                memory.writeLong(at, d.address());
                memory.writeInt(at + 8, d.length());
                memory.writeInt(at + 12, d.identifier() << 24); // bytes 14:12 reserved, byte 15 the identifier
            }
        } catch (GuestMemoryException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Linux's sgl_threshold module parameter default (SZ_32K). */
    public static final int LINUX_SGL_THRESHOLD = 32 * 1024;

    /**
     * Linux nvme_pci_use_sgls: SGLs only if Identify SGLS bits 1:0 say they are supported (byte or dword aligned),
     * never on the admin queue, and only when the average DMA segment is at least sgl_threshold.
     */
    public static boolean linuxUsesSgls(int sgls, int qid, long bytes, int segments) {
        long averageSegment = (bytes + segments - 1) / segments;
        return (sgls & 0b11) != 0 && qid != 0 && averageSegment >= LINUX_SGL_THRESHOLD;
    }

    /**
     * Linux nvme_pci_setup_data_sgl: a request of one DMA segment gets an inline Data Block in the command;
     * otherwise the command holds a Last Segment descriptor pointing at one list (from the driver's descriptor
     * pool, at most NVME_MAX_SEGS entries, so never chained) of one Data Block per DMA segment.
     */
    public static Command linux(Command c, GuestMemory memory, long[] addresses, int[] lengths, long listArea) {
        if (addresses.length == 1) {
            return c.sgl(Descriptor.data(addresses[0], lengths[0]));
        }
        Descriptor[] list = new Descriptor[addresses.length];
        for (int i = 0; i < list.length; i++) {
            list[i] = Descriptor.data(addresses[i], lengths[i]);
        }
        write(memory, listArea, list);
        return c.sgl(Descriptor.lastSegment(listArea, list.length));
    }
}
