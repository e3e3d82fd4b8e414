package io.javadevices.nvme.dma;

import io.javadevices.nvme.model.GuestErrors;
import io.javadevices.nvme.queue.Sqe;
import io.javadevices.nvme.spec.Status;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

import java.lang.foreign.MemorySegment;

/**
 * The data pointer (DPTR) of an I/O command, walked by what PSDT (CDW0 bits 15:14, NVMe 1.4 Figure 105) says it
 * is: 00b PRP1/PRP2 ({@link PrpWalker}), 01b or 10b SGL1 ({@link SglWalker}). 10b differs from 01b only in how the
 * Metadata Pointer is read, and MPTR "shall be ignored if the command has no metadata": no namespace here has
 * metadata, so both map the data the same way, as QEMU's nvme_map_dptr does; 11b is reserved → Invalid Field.
 * One instance per I/O worker; both walkers fill the same preallocated {@link Pieces}, read through the accessors
 * here. Admin commands stay PRP-only (their dispatcher rejects PSDT ≠ 0, see AdminCommandDispatcher).
 */
public final class DataPointer {
    /** PSDT values (Figure 105). */
    public static final int PSDT_PRP = 0, PSDT_SGL = 1, PSDT_SGL_MPTR_SGL = 2;
    /**
     * Identify Controller SGLS (Figure 247) for what is implemented: bits 1:0 = 01b SGLs supported, no alignment
     * or granularity requirement for Data Blocks; bit 16 Bit Bucket descriptors supported. Not set: Keyed SGL Data
     * Blocks (bit 2, fabrics), MPTR forms (bits 17, 19: no metadata), SGL longer than the data (bit 18), Address as
     * offset (bit 20) and Transport SGL Data Blocks (bit 21).
     */
    public static final int SGLS = 0x1 | 1 << 16;

    private final Pieces pieces;
    private final PrpWalker prp;
    private final SglWalker sgl;
    private final int pageSize;

    /**
     * @param pageSize         host memory page size (CC.MPS), for PRPs
     * @param maxTransferBytes MDTS in bytes: sizes the piece list
     */
    public DataPointer(GuestMemory memory, int pageSize, long maxTransferBytes, GuestErrors errors) {
        // PRPs need at most one piece per page plus a partial first page; SGLs the same for a Linux request
        // (nvme-pci sizes max_segments by pages), with headroom for hosts that describe smaller blocks.
        this.pieces = new Pieces(memory, Math.max((int) (maxTransferBytes / 4096) + 2, 256));
        this.prp = new PrpWalker(memory, pieces, errors);
        this.sgl = new SglWalker(memory, pieces, errors);
        this.pageSize = pageSize;
    }

    /**
     * Maps the data pointer of {@code cmd} for a transfer of {@code length} bytes; {@code toHost} is the direction
     * (controller → host, as a Read). Returns {@link Status#SUCCESS} or the error status to complete with.
     */
    public int map(Sqe cmd, long length, boolean toHost) {
        int psdt = cmd.psdt();
        if (psdt == PSDT_PRP) {
            return prp.walk(cmd.prp1(), cmd.prp2(), length, pageSize);
        }
        if (psdt == PSDT_SGL || psdt == PSDT_SGL_MPTR_SGL) {
            // SGL1 occupies DPTR (bytes 39:24): Address = PRP1's bytes, Length = PRP2's low dword, SGL Identifier =
            // PRP2's top byte (Figure 112).
            long dword89 = cmd.prp2();
            return sgl.walk(cmd.prp1(), (int) dword89, (int) (dword89 >>> 56), length, toHost);
        }
        return Status.INVALID_FIELD; // PSDT 11b is reserved
    }

    public int count() {
        return pieces.count();
    }

    public long address(int i) {
        return pieces.address(i);
    }

    public long length(int i) {
        return pieces.length(i);
    }

    /** True if piece {@code i} is an SGL Bit Bucket: a read skips its bytes of the backend data. */
    public boolean isBitBucket(int i) {
        return pieces.isBitBucket(i);
    }

    /** Copies {@code length} bytes of {@code src} to the mapped pieces (controller → host). */
    public void copyToGuest(MemorySegment src, long length) throws GuestMemoryException {
        pieces.copyToGuest(src, length);
    }

    /** Copies the mapped pieces into {@code dst} (host → controller). */
    public void copyFromGuest(MemorySegment dst, long length) throws GuestMemoryException {
        pieces.copyFromGuest(dst, length);
    }
}
