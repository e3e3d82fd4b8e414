package io.javadevices.nvme.dma;

import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

import java.lang.foreign.MemorySegment;

/**
 * The result of a data pointer walk: the guest-physical (address, length) pieces of one transfer, in transfer
 * order, preallocated and reused (one instance per worker, nothing allocated per command). Pieces that follow
 * each other in one guest memory region are merged, so backends see large buffers. A piece whose address is
 * {@link #BIT_BUCKET} stands for bytes the controller reads but the host discards (an SGL Bit Bucket, NVMe 1.4
 * §4.4 Figure 114): a transfer skips those bytes of the backend data instead of copying them.
 */
public final class Pieces {
    /** The address of a bit-bucket piece: never a guest address (addresses with the top bit set are never mapped). */
    public static final long BIT_BUCKET = -1L;

    private final GuestMemory memory;
    private final long[] addresses;
    private final long[] lengths;
    private int count;

    /** @param capacity the most pieces one transfer may need */
    Pieces(GuestMemory memory, int capacity) {
        this.memory = memory;
        this.addresses = new long[capacity];
        this.lengths = new long[capacity];
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

    /** True if piece {@code i} is a bit bucket: its bytes are not transferred. */
    public boolean isBitBucket(int i) {
        return addresses[i] == BIT_BUCKET;
    }

    int capacity() {
        return addresses.length;
    }

    void clear() {
        count = 0;
    }

    /** Appends a guest data piece, merged with the previous one when contiguous in one region; false if full. */
    boolean add(long address, long length) {
        if (count > 0) {
            int last = count - 1;
            if (addresses[last] + lengths[last] == address && addresses[last] != BIT_BUCKET
                    && memory.isContiguous(addresses[last], lengths[last] + length)) {
                lengths[last] += length;
                return true;
            }
        }
        return append(address, length);
    }

    /** Appends {@code length} discarded bytes, merged with a preceding bit bucket; false if full. */
    boolean addBitBucket(long length) {
        if (count > 0 && addresses[count - 1] == BIT_BUCKET) {
            lengths[count - 1] += length;
            return true;
        }
        return append(BIT_BUCKET, length);
    }

    private boolean append(long address, long length) {
        if (count == addresses.length) {
            return false;
        }
        addresses[count] = address;
        lengths[count] = length;
        count++;
        return true;
    }

    /** Copies {@code length} bytes of {@code src} to the pieces (controller → host); bit buckets skip their bytes. */
    public void copyToGuest(MemorySegment src, long length) throws GuestMemoryException {
        long done = 0;
        for (int i = 0; i < count && done < length; i++) {
            long n = Math.min(lengths[i], length - done);
            if (addresses[i] != BIT_BUCKET) {
                memory.write(addresses[i], src, done, n);
            }
            done += n;
        }
    }

    /**
     * Copies the pieces into {@code dst} (host → controller). A walk never yields a bit bucket for this
     * direction ({@link SglWalker} rejects it); should one be there, its bytes of {@code dst} are left as they are.
     */
    public void copyFromGuest(MemorySegment dst, long length) throws GuestMemoryException {
        long done = 0;
        for (int i = 0; i < count && done < length; i++) {
            long n = Math.min(lengths[i], length - done);
            if (addresses[i] != BIT_BUCKET) {
                memory.read(addresses[i], dst, done, n);
            }
            done += n;
        }
    }
}
