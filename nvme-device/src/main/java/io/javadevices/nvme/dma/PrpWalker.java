package io.javadevices.nvme.dma;

import io.javadevices.nvme.Status;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

import java.lang.foreign.MemorySegment;

import static io.javadevices.nvme.LittleEndian.LONG;

/**
 * Turns PRP1/PRP2 of a command into a list of guest-physical (address, length) pieces (NVMe 1.4 §4.3,
 * Figures 108-109), honouring the host page size CC.MPS. One instance per worker: the piece arrays and
 * the PRP-list scratch page are preallocated and reused, so walking allocates nothing.
 *
 * <ul>
 * <li>PRP1 may start at any dword-aligned offset in a page; it covers up to the end of that page.</li>
 * <li>If the rest fits in one page, PRP2 is a data pointer with offset 0.</li>
 * <li>Otherwise PRP2 points to a PRP list; if a list page is full and more entries are needed, its last
 *     entry points to the next list page (chaining). Data entries must have offset 0.</li>
 * </ul>
 * Errors: misaligned entries → Invalid PRP Offset (0x13); a list in unmapped memory → Data Transfer Error
 * (0x04); a list that chains without making progress (e.g. pointing to itself) → Invalid Field.
 * Contiguous pieces in one guest memory region are merged so backends see large buffers.
 */
public final class PrpWalker {
    private static final int MAX_PAGE = 64 * 1024;

    private final GuestMemory memory;
    private final long[] addresses;
    private final long[] lengths;
    private final MemorySegment scratch = MemorySegment.ofArray(new long[MAX_PAGE / 8]);
    private int count;

    /** @param maxPieces the most pieces a transfer can need: max transfer / page size + 1 */
    public PrpWalker(GuestMemory memory, int maxPieces) {
        this.memory = memory;
        this.addresses = new long[maxPieces];
        this.lengths = new long[maxPieces];
    }

    public int count() {
        return count;
    }

    public long address(int i) {
        return addresses[i];
    }

    public long length(int i) {
        return lengths[i];
    }

    /** Walks the PRPs for {@code length} bytes; returns {@link Status#SUCCESS} or an error status. */
    public int walk(long prp1, long prp2, long length, int pageSize) {
        count = 0;
        if (length <= 0) {
            return Status.SUCCESS;
        }
        long pageMask = pageSize - 1;
        if ((prp1 & 3) != 0) {
            return Status.INVALID_PRP_OFFSET;
        }
        long first = Math.min(length, pageSize - (prp1 & pageMask));
        if (!add(prp1, first)) {
            return Status.INVALID_FIELD;
        }
        long remaining = length - first;
        if (remaining == 0) {
            return Status.SUCCESS;
        }
        if (remaining <= pageSize) {
            if ((prp2 & pageMask) != 0) {
                return Status.INVALID_PRP_OFFSET;
            }
            return add(prp2, remaining) ? Status.SUCCESS : Status.INVALID_FIELD;
        }
        long list = prp2;
        int hops = 0;
        int maxHops = addresses.length + 2;
        while (remaining > 0) {
            if ((list & 7) != 0) {
                return Status.INVALID_PRP_OFFSET;
            }
            if (++hops > maxHops) {
                return Status.INVALID_FIELD;
            }
            int entries = (int) ((pageSize - (list & pageMask)) >>> 3);
            long needed = (remaining + pageSize - 1) / pageSize;
            boolean chained = needed > entries;
            int read = chained ? entries : (int) needed;
            try {
                memory.read(list, scratch, 0, 8L * read);
            } catch (GuestMemoryException e) {
                return Status.DATA_TRANSFER_ERROR;
            }
            int data = chained ? entries - 1 : read;
            for (int i = 0; i < data; i++) {
                long entry = scratch.get(LONG, 8L * i);
                if ((entry & pageMask) != 0) {
                    return Status.INVALID_PRP_OFFSET;
                }
                long n = Math.min(remaining, pageSize);
                if (!add(entry, n)) {
                    return Status.INVALID_FIELD;
                }
                remaining -= n;
            }
            if (chained) {
                list = scratch.get(LONG, 8L * (entries - 1));
            }
        }
        return Status.SUCCESS;
    }

    private boolean add(long address, long length) {
        if (count > 0) {
            int last = count - 1;
            if (addresses[last] + lengths[last] == address && memory.isContiguous(addresses[last], lengths[last] + length)) {
                lengths[last] += length;
                return true;
            }
        }
        if (count == addresses.length) {
            return false;
        }
        addresses[count] = address;
        lengths[count] = length;
        count++;
        return true;
    }

    /** Copies {@code length} bytes of {@code src} to the walked pieces (controller → host). */
    public void copyToGuest(MemorySegment src, long length) throws GuestMemoryException {
        long done = 0;
        for (int i = 0; i < count && done < length; i++) {
            long n = Math.min(lengths[i], length - done);
            memory.write(addresses[i], src, done, n);
            done += n;
        }
    }

    /** Copies the walked pieces into {@code dst} (host → controller). */
    public void copyFromGuest(MemorySegment dst, long length) throws GuestMemoryException {
        long done = 0;
        for (int i = 0; i < count && done < length; i++) {
            long n = Math.min(lengths[i], length - done);
            memory.read(addresses[i], dst, done, n);
            done += n;
        }
    }
}
