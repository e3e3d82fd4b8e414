package io.javadevices.nvme.dma;

import io.javadevices.nvme.model.GuestErrors;
import io.javadevices.nvme.spec.Status;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

import java.lang.foreign.MemorySegment;

import static io.javadevices.pci.LittleEndian.LONG;

/**
 * Turns PRP1/PRP2 of a command into a list of guest-physical (address, length) pieces (NVMe 1.4 §4.3,
 * Figures 108-109), honouring the host page size CC.MPS. One instance per worker: the piece arrays and
 * the PRP-list scratch page are preallocated and reused, so walking allocates nothing.
 *
 * <ul>
 * <li>PRP1 may start at any dword-aligned offset in a page; it covers up to the end of that page.</li>
 * <li>If the rest fits in one page, PRP2 is a data pointer with offset 0.</li>
 * <li>Otherwise PRP2 points to a PRP list. It is qword aligned and may start inside its page: that first
 *     list page then holds (page size - offset) / 8 entries. If a list page is full and more entries are
 *     needed, its last entry points to the next list page, which (being a PRP entry after the first)
 *     has offset 0. Every data entry after PRP1 has offset 0.</li>
 * </ul>
 * Errors, as QEMU's nvme_map_prp answers them: an entry or list pointer with a forbidden offset → PRP
 * Offset Invalid (13h); a list in unmapped memory → Data Transfer Error (04h); a list that chains without
 * making progress → Invalid Field. Each is counted in {@link GuestErrors}. Address 0 is an address like
 * any other (current QEMU dropped its "PRP2 missing" check; DBBUF accepts GPA 0 the same way). Contiguous pieces in one guest memory region are
 * merged so backends see large buffers.
 */
public final class PrpWalker {
    private static final int MAX_PAGE = 64 * 1024;

    private final GuestMemory memory;
    private final GuestErrors errors;
    private final Pieces pieces;
    private final MemorySegment scratch = MemorySegment.ofArray(new long[MAX_PAGE / 8]);

    /** @param maxPieces the most pieces a transfer can need: max transfer / page size + 1 */
    public PrpWalker(GuestMemory memory, int maxPieces, GuestErrors errors) {
        this(memory, new Pieces(memory, maxPieces), errors);
    }

    /** A walker that fills {@code pieces}, shared with an {@link SglWalker} by a {@link DataPointer}. */
    PrpWalker(GuestMemory memory, Pieces pieces, GuestErrors errors) {
        this.memory = memory;
        this.errors = errors;
        this.pieces = pieces;
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

    private int reject(int status, GuestErrors.Kind kind, long detail) {
        errors.record(kind, detail);
        return status;
    }

    /** Walks the PRPs for {@code length} bytes; returns {@link Status#SUCCESS} or an error status. */
    public int walk(long prp1, long prp2, long length, int pageSize) {
        pieces.clear();
        if (length <= 0) {
            return Status.SUCCESS;
        }
        long pageMask = pageSize - 1;
        if ((prp1 & 3) != 0) {
            return reject(Status.INVALID_PRP_OFFSET, GuestErrors.Kind.INVALID_PRP_OFFSET, prp1);
        }
        long first = Math.min(length, pageSize - (prp1 & pageMask));
        if (!add(prp1, first)) {
            return reject(Status.INVALID_FIELD, GuestErrors.Kind.INVALID_PRP_LIST, prp1);
        }
        long remaining = length - first;
        if (remaining == 0) {
            return Status.SUCCESS;
        }
        if (remaining <= pageSize) {
            if ((prp2 & pageMask) != 0) {
                return reject(Status.INVALID_PRP_OFFSET, GuestErrors.Kind.INVALID_PRP_OFFSET, prp2);
            }
            return add(prp2, remaining) ? Status.SUCCESS : reject(Status.INVALID_FIELD, GuestErrors.Kind.INVALID_PRP_LIST, prp2);
        }
        long list = prp2;
        if ((list & 7) != 0) {
            return reject(Status.INVALID_PRP_OFFSET, GuestErrors.Kind.INVALID_PRP_OFFSET, list);
        }
        int hops = 0;
        int maxHops = pieces.capacity() + 2;
        while (remaining > 0) {
            if (++hops > maxHops) {
                return reject(Status.INVALID_FIELD, GuestErrors.Kind.INVALID_PRP_LIST, list);
            }
            int entries = (int) ((pageSize - (list & pageMask)) >>> 3);
            long needed = (remaining + pageSize - 1) / pageSize;
            boolean chained = needed > entries;
            int read = chained ? entries : (int) needed;
            try {
                memory.read(list, scratch, 0, 8L * read);
            } catch (GuestMemoryException e) {
                return reject(Status.DATA_TRANSFER_ERROR, GuestErrors.Kind.DMA_OUTSIDE_MEMORY, list);
            }
            int data = chained ? entries - 1 : read;
            for (int i = 0; i < data; i++) {
                long entry = scratch.get(LONG, 8L * i);
                if ((entry & pageMask) != 0) {
                    return reject(Status.INVALID_PRP_OFFSET, GuestErrors.Kind.INVALID_PRP_OFFSET, entry);
                }
                long n = Math.min(remaining, pageSize);
                if (!add(entry, n)) {
                    return reject(Status.INVALID_FIELD, GuestErrors.Kind.INVALID_PRP_LIST, entry);
                }
                remaining -= n;
            }
            if (chained) {
                list = scratch.get(LONG, 8L * (entries - 1));
                if ((list & pageMask) != 0) {
                    // The pointer to the next list page is itself a PRP entry after the first: offset 0
                    // (QEMU nvme_map_prp checks it the same way, pci_nvme_err_invalid_prplist_ent).
                    return reject(Status.INVALID_PRP_OFFSET, GuestErrors.Kind.INVALID_PRP_OFFSET, list);
                }
            }
        }
        return Status.SUCCESS;
    }

    private boolean add(long address, long length) {
        return pieces.add(address, length);
    }

    /** Copies {@code length} bytes of {@code src} to the walked pieces (controller → host). */
    public void copyToGuest(MemorySegment src, long length) throws GuestMemoryException {
        pieces.copyToGuest(src, length);
    }

    /** Copies the walked pieces into {@code dst} (host → controller). */
    public void copyFromGuest(MemorySegment dst, long length) throws GuestMemoryException {
        pieces.copyFromGuest(dst, length);
    }
}
