package io.javadevices.nvme.dma;

import io.javadevices.nvme.model.GuestErrors;
import io.javadevices.nvme.spec.Status;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.javadevices.pci.LittleEndian.INT;
import static io.javadevices.pci.LittleEndian.LONG;

/**
 * Turns the SGL of a command (SGL1 in DPTR) into guest-physical pieces (NVMe 1.4 §4.4, Figures 112-118), into the
 * same {@link Pieces} a {@link PrpWalker} fills. One instance per worker: the segment scratch buffer is
 * preallocated, so walking allocates nothing.
 *
 * <p>A descriptor is 16 bytes: Address (bytes 7:0), Length (11:8), SGL Identifier (byte 15: type in bits 7:4,
 * sub type in bits 3:0). SGL1 is the one-descriptor segment in the command; the last descriptor of any segment may
 * be a Segment (2h) or Last Segment (3h) descriptor pointing at the next segment, a qword aligned array of
 * descriptors in guest memory (§4.4: "An SGL segment is a Qword aligned data structure"). What is accepted:
 * <ul>
 * <li>Data Block (0h), sub type 0h (Address), any byte alignment and length (SGLS bits 1:0 = 01b); a length of 0
 *     transfers nothing.</li>
 * <li>Bit Bucket (1h), only for controller → host transfers (SGLS bit 16): the bytes it covers are read from the
 *     media and dropped; they count towards the transfer length.</li>
 * <li>Segment / Last Segment only as the last descriptor of a segment; a Last Segment's segment does not chain.</li>
 * </ul>
 * The total length must equal the transfer length (SGLS bit 18, "SGL longer than the data", is not advertised).
 *
 * <p>Errors, as QEMU's nvme_map_sgl answers them where it checks the same thing: another type (Keyed and Transport
 * Data Blocks are for fabrics) → SGL Descriptor Type Invalid; a sub type other than Address → SGL Sub Type Invalid;
 * a Segment descriptor before the last entry → Invalid Number of SGL Descriptors; a segment length of 0 or not a
 * multiple of 16, a segment not qword aligned, a Last Segment that chains, or a segment that adds no data (QEMU's
 * forward-progress rule, which also ends any loop) → Invalid SGL Segment Descriptor; fewer or more bytes than the
 * transfer, or an address range that wraps → Data SGL Length Invalid; a segment or data block outside guest memory
 * → Data Transfer Error. The controller walks at most {@link #maxDescriptors} descriptors and keeps at most
 * {@link Pieces#capacity()} pieces per command; an SGL beyond that (Linux never builds one: its requests have at
 * most as many segments as a PRP list has pages) gets Invalid Number of SGL Descriptors.
 */
public final class SglWalker {
    /** SGL descriptor types (SGL Identifier bits 7:4, Figure 112). */
    public static final int DATA_BLOCK = 0x0, BIT_BUCKET = 0x1, SEGMENT = 0x2, LAST_SEGMENT = 0x3;
    /** The one sub type a PCIe controller takes: the Address field is a guest address (Figure 112). */
    public static final int SUBTYPE_ADDRESS = 0x0;
    /** Size of one SGL descriptor. */
    public static final int DESCRIPTOR_BYTES = 16;
    /** Descriptors read from guest memory at a time: one 4 KiB page (QEMU nvme_map_sgl reads the same chunks). */
    private static final int CHUNK = 256;

    private final GuestMemory memory;
    private final GuestErrors errors;
    private final Pieces pieces;
    private final int maxDescriptors;
    private final MemorySegment scratch = MemorySegment.ofArray(new long[CHUNK * DESCRIPTOR_BYTES / 8]);
    /** During a walk: bytes of the transfer not yet described, and its direction. */
    private long remaining;
    private boolean toHost;
    /** Set by {@link #segment}: whether the segment ended with a Segment / Last Segment descriptor, and that one. */
    private boolean chained;
    private long nextAddress;
    private int nextLength, nextIdentifier;

    SglWalker(GuestMemory memory, Pieces pieces, GuestErrors errors) {
        this.memory = memory;
        this.errors = errors;
        this.pieces = pieces;
        this.maxDescriptors = Math.max(4 * pieces.capacity(), 4 * CHUNK);
    }

    /** The most descriptors (all segments together) one command's SGL may have. */
    int maxDescriptors() {
        return maxDescriptors;
    }

    private int reject(int status, GuestErrors.Kind kind, long detail) {
        errors.record(kind, detail);
        return status;
    }

    private int invalid(int status, long detail) {
        return reject(status, GuestErrors.Kind.INVALID_SGL, detail);
    }

    /**
     * Walks the SGL whose first descriptor is SGL1 ({@code address}, {@code lengthField}, {@code identifier}) for
     * {@code length} bytes; {@code toHost} is the direction (controller → host allows bit buckets). Returns
     * {@link Status#SUCCESS} or an error status.
     */
    public int walk(long address, int lengthField, int identifier, long length, boolean toHost) {
        pieces.clear();
        this.remaining = length;
        this.toHost = toHost;
        int type = identifier >>> 4 & 0xF;
        if (type != SEGMENT && type != LAST_SEGMENT) {
            int status = dataDescriptor(type, identifier & 0xF, address, lengthField & 0xFFFF_FFFFL);
            return status != Status.SUCCESS ? status : finish();
        }
        int descriptors = 1;
        while (true) {
            // (address, lengthField, identifier) is a Segment or Last Segment descriptor: check it, then walk its segment.
            if ((identifier & 0xF) != SUBTYPE_ADDRESS) {
                return invalid(Status.SGL_SUBTYPE_INVALID, identifier);
            }
            long segmentBytes = lengthField & 0xFFFF_FFFFL;
            if (segmentBytes == 0 || segmentBytes % DESCRIPTOR_BYTES != 0 || (address & 7) != 0) {
                return invalid(Status.INVALID_SGL_SEGMENT_DESCRIPTOR, address);
            }
            long entries = segmentBytes / DESCRIPTOR_BYTES;
            if (descriptors + entries > maxDescriptors) {
                return invalid(Status.INVALID_NUMBER_OF_SGL_DESCRIPTORS, entries);
            }
            descriptors += (int) entries;
            long before = remaining;
            int status = segment(address, entries);
            if (status != Status.SUCCESS) {
                return status;
            }
            if (!chained) {
                return finish();
            }
            if (type == LAST_SEGMENT) {
                return invalid(Status.INVALID_SGL_SEGMENT_DESCRIPTOR, address); // the last segment must not chain
            }
            if (remaining == before) {
                // As QEMU's nvme_map_sgl: a segment that describes no data is refused, so that every hop consumes
                // part of the transfer and a chain that loops back on itself ends.
                return invalid(Status.INVALID_SGL_SEGMENT_DESCRIPTOR, address);
            }
            address = nextAddress;
            lengthField = nextLength;
            identifier = nextIdentifier;
            type = identifier >>> 4;
        }
    }

    /**
     * Walks the {@code entries} descriptors of the segment at {@code address}, read a chunk at a time: data
     * descriptors become pieces; a last descriptor of type Segment or Last Segment is kept in {@code next*} with
     * {@link #chained} set.
     */
    private int segment(long address, long entries) {
        chained = false;
        for (long first = 0; first < entries; first += CHUNK) {
            int n = (int) Math.min(CHUNK, entries - first);
            long at = address + first * DESCRIPTOR_BYTES;
            try {
                memory.read(at, scratch, 0, (long) n * DESCRIPTOR_BYTES);
            } catch (GuestMemoryException e) {
                return reject(Status.DATA_TRANSFER_ERROR, GuestErrors.Kind.DMA_OUTSIDE_MEMORY, at);
            }
            for (int i = 0; i < n; i++) {
                long offset = (long) i * DESCRIPTOR_BYTES;
                long dAddress = scratch.get(LONG, offset);
                int dLength = scratch.get(INT, offset + 8);
                int dIdentifier = scratch.get(ValueLayout.JAVA_BYTE, offset + 15) & 0xFF;
                int dType = dIdentifier >>> 4;
                if (dType == SEGMENT || dType == LAST_SEGMENT) {
                    if (first + i != entries - 1) {
                        // Only the last descriptor of a segment may point at another (§4.4).
                        return invalid(Status.INVALID_NUMBER_OF_SGL_DESCRIPTORS, at + offset);
                    }
                    nextAddress = dAddress;
                    nextLength = dLength;
                    nextIdentifier = dIdentifier;
                    chained = true;
                } else {
                    int status = dataDescriptor(dType, dIdentifier & 0xF, dAddress, dLength & 0xFFFF_FFFFL);
                    if (status != Status.SUCCESS) {
                        return status;
                    }
                }
            }
        }
        return Status.SUCCESS;
    }

    /** The SGL ended: it must have described exactly the transfer. */
    private int finish() {
        return remaining == 0 ? Status.SUCCESS : invalid(Status.DATA_SGL_LENGTH_INVALID, remaining);
    }

    /** A descriptor that describes data: a Data Block or a Bit Bucket (anything else is invalid here). */
    private int dataDescriptor(int type, int subType, long address, long length) {
        if (type != DATA_BLOCK && !(type == BIT_BUCKET && toHost)) {
            // Bit Buckets discard data the controller sends; a host → controller transfer has nothing to discard.
            return invalid(Status.SGL_DESCRIPTOR_TYPE_INVALID, type);
        }
        if (subType != SUBTYPE_ADDRESS) {
            return invalid(Status.SGL_SUBTYPE_INVALID, subType);
        }
        if (length == 0) {
            return Status.SUCCESS; // "A Length of 0h indicates no data is transferred"
        }
        if (length > remaining) {
            return invalid(Status.DATA_SGL_LENGTH_INVALID, length); // longer than the transfer: SGLS bit 18 is clear
        }
        remaining -= length;
        if (type == BIT_BUCKET) {
            return pieces.addBitBucket(length) ? Status.SUCCESS : tooManyPieces();
        }
        if (Long.compareUnsigned(-1L - address, length) < 0) {
            return invalid(Status.DATA_SGL_LENGTH_INVALID, address); // runs past 2^64 (QEMU nvme_map_sgl_data, same check)
        }
        if (!memory.isMapped(address, length)) {
            return reject(Status.DATA_TRANSFER_ERROR, GuestErrors.Kind.DMA_OUTSIDE_MEMORY, address);
        }
        return addMapped(address, length);
    }

    /** Adds a mapped data block, split where it crosses from one guest memory region into an adjacent one. */
    private int addMapped(long address, long length) {
        while (length > 0) {
            long n = memory.isContiguous(address, length) ? length : contiguousPrefix(address, length);
            if (!pieces.add(address, n)) {
                return tooManyPieces();
            }
            address += n;
            length -= n;
        }
        return Status.SUCCESS;
    }

    /** The longest {@code n < length} with {@code [address, address + n)} in one region (≥ 1: address is mapped). */
    private long contiguousPrefix(long address, long length) {
        long lo = 1, hi = length - 1;
        while (lo < hi) {
            long mid = lo + (hi - lo + 1) / 2;
            if (memory.isContiguous(address, mid)) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        return lo;
    }

    private int tooManyPieces() {
        return invalid(Status.INVALID_NUMBER_OF_SGL_DESCRIPTORS, pieces.count());
    }
}
