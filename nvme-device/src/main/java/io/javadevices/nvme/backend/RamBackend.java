package io.javadevices.nvme.backend;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Sparse RAM disk: 1 MiB chunks of native memory allocated on first write (compare-and-set, so
 * concurrent first writes from two queues agree on one chunk); unwritten chunks read as zeroes. No
 * global lock: queues only contend on the chunk table slot when a chunk is first created. A
 * deallocated whole chunk is dropped (its memory is freed by the GC through {@link Arena#ofAuto()}).
 */
public final class RamBackend implements BlockBackend {
    public static final int CHUNK_SHIFT = 20;
    public static final long CHUNK = 1L << CHUNK_SHIFT;

    private final long size;
    private final AtomicReferenceArray<MemorySegment> chunks;

    public RamBackend(long size) {
        if (size <= 0 || (size >>> CHUNK_SHIFT) >= Integer.MAX_VALUE) {
            throw new IllegalArgumentException("ram size " + size);
        }
        this.size = size;
        this.chunks = new AtomicReferenceArray<>((int) ((size + CHUNK - 1) >>> CHUNK_SHIFT));
    }

    @Override
    public long size() {
        return size;
    }

    private MemorySegment chunkForWrite(int index) {
        MemorySegment c = chunks.get(index);
        if (c == null) {
            MemorySegment fresh = Arena.ofAuto().allocate(CHUNK, 4096);
            c = chunks.compareAndExchange(index, null, fresh);
            if (c == null) {
                c = fresh;
            }
        }
        return c;
    }

    @Override
    public void read(long offset, MemorySegment dst) {
        long done = 0;
        long length = dst.byteSize();
        while (done < length) {
            long at = offset + done;
            int index = (int) (at >>> CHUNK_SHIFT);
            long within = at & (CHUNK - 1);
            long n = Math.min(length - done, CHUNK - within);
            MemorySegment c = chunks.get(index);
            if (c == null) {
                dst.asSlice(done, n).fill((byte) 0);
            } else {
                MemorySegment.copy(c, within, dst, done, n);
            }
            done += n;
        }
    }

    @Override
    public void write(long offset, MemorySegment src) {
        long done = 0;
        long length = src.byteSize();
        while (done < length) {
            long at = offset + done;
            int index = (int) (at >>> CHUNK_SHIFT);
            long within = at & (CHUNK - 1);
            long n = Math.min(length - done, CHUNK - within);
            MemorySegment.copy(src, done, chunkForWrite(index), within, n);
            done += n;
        }
    }

    @Override
    public void flush() {
    }

    @Override
    public void writeZeroes(long offset, long length) {
        deallocate(offset, length);
    }

    @Override
    public void deallocate(long offset, long length) {
        long done = 0;
        while (done < length) {
            long at = offset + done;
            int index = (int) (at >>> CHUNK_SHIFT);
            long within = at & (CHUNK - 1);
            long n = Math.min(length - done, CHUNK - within);
            if (within == 0 && n == CHUNK) {
                chunks.set(index, null);
            } else {
                MemorySegment c = chunks.get(index);
                if (c != null) {
                    c.asSlice(within, n).fill((byte) 0);
                }
            }
            done += n;
        }
    }

    @Override
    public boolean deallocatedReadsZero() {
        return true;
    }

    /** Number of allocated 1 MiB chunks (for tests). */
    public int allocatedChunks() {
        int n = 0;
        for (int i = 0; i < chunks.length(); i++) {
            if (chunks.get(i) != null) {
                n++;
            }
        }
        return n;
    }

    @Override
    public String describe() {
        return "ram:" + size;
    }

    @Override
    public void close() {
        for (int i = 0; i < chunks.length(); i++) {
            chunks.set(i, null);
        }
    }
}
