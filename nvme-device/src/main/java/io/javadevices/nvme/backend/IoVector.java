package io.javadevices.nvme.backend;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The buffers of one asynchronous operation, in transfer order: zero-copy slices of guest memory (and, for an
 * SGL Bit Bucket in a read, a discard buffer). One per in-flight slot, allocated when the queue starts and
 * reused for every command that slot carries: nothing is allocated per command but the slice views.
 *
 * <p>Alongside the segments it keeps a native {@code struct iovec} array ({@code <sys/uio.h>}: base, length;
 * 16 bytes each on LP64) for {@code readv}/{@code writev}-style submissions. Those need addresses the kernel
 * can use, which only native segments have ({@link #allNative()}); guest memory in unit tests is often a heap
 * array, and an engine then moves the data with the backend's synchronous methods instead.
 */
public final class IoVector {
    /** {@code struct iovec} size on LP64. */
    public static final int IOVEC_BYTES = 16;
    /** Where the bytes of a read's bit-bucket piece go: written by anyone, read by nobody. */
    private static final MemorySegment DISCARD = Arena.global().allocate(64 * 1024, 4096);

    private final MemorySegment[] segments;
    private final MemorySegment iovecs;
    private int count;
    private long bytes;
    private boolean allNative = true;

    /** @param capacity the most pieces one operation may have (a data pointer's pieces plus bit-bucket splits) */
    public IoVector(int capacity) {
        this.segments = new MemorySegment[capacity];
        this.iovecs = Arena.ofAuto().allocate((long) capacity * IOVEC_BYTES, 8);
    }

    public void clear() {
        for (int i = 0; i < count; i++) {
            segments[i] = null; // do not keep guest memory reachable from an idle slot
        }
        count = 0;
        bytes = 0;
        allNative = true;
    }

    /** Appends a buffer; false (nothing added) if the vector is full. */
    public boolean add(MemorySegment segment) {
        if (count == segments.length) {
            return false;
        }
        segments[count] = segment;
        if (segment.isNative()) {
            iovecs.set(JAVA_LONG, (long) count * IOVEC_BYTES, segment.address());
            iovecs.set(JAVA_LONG, (long) count * IOVEC_BYTES + 8, segment.byteSize());
        } else {
            allNative = false;
        }
        count++;
        bytes += segment.byteSize();
        return true;
    }

    /**
     * Appends {@code length} bytes that a read fetches from the backend and drops (an SGL Bit Bucket, NVMe 1.4
     * §4.4): pieces of the shared discard buffer. False if the vector is full.
     */
    public boolean addDiscard(long length) {
        while (length > 0) {
            long n = Math.min(length, DISCARD.byteSize());
            if (!add(DISCARD.asSlice(0, n))) {
                return false;
            }
            length -= n;
        }
        return true;
    }

    public int count() {
        return count;
    }

    public MemorySegment segment(int i) {
        return segments[i];
    }

    /** Total bytes of all buffers. */
    public long bytes() {
        return bytes;
    }

    /** True if every buffer is native memory, so {@link #iovecs()} describes all of them. */
    public boolean allNative() {
        return allNative;
    }

    /** The {@code struct iovec[count()]} of the buffers (meaningful only if {@link #allNative()}). */
    public MemorySegment iovecs() {
        return iovecs;
    }

    public int capacity() {
        return segments.length;
    }
}
