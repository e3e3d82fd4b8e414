package io.javadevices.nvme.backend;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Sparse RAM disk in one anonymous private mapping ({@code mmap(MAP_PRIVATE | MAP_ANONYMOUS |
 * MAP_NORESERVE)}): memory the kernel hands out page by page on first write and the JVM does not count, so
 * a namespace is not capped by {@code -XX:MaxDirectMemorySize} (about a quarter of RAM by default, which
 * {@code Arena} allocations are charged against) and costs nothing until written. {@code MAP_NORESERVE}
 * skips swap accounting for the mapping: a guest that fills more than the host can hold meets the OOM
 * killer rather than an error, which is why {@link RamBudget} refuses, at start-up, RAM namespaces larger
 * than RAM + swap. The mapping is unmapped when the backend is closed (its shared arena is closed: later
 * accesses throw instead of touching unmapped memory).
 *
 * <p>A 1 MiB chunk table records which chunks were written (compare-and-set on the first write, so two
 * queues agree); unwritten chunks read as zeroes without touching the mapping. No global lock: queues only
 * contend on a table slot when a chunk is first written. A deallocated whole chunk is dropped and its pages
 * are given back ({@code madvise(MADV_DONTNEED)}: a private anonymous range then reads zero).
 */
public final class RamBackend implements BlockBackend {
    public static final int CHUNK_SHIFT = 20;
    public static final long CHUNK = 1L << CHUNK_SHIFT;

    private final long size;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment region;
    private final AtomicReferenceArray<MemorySegment> chunks;

    public RamBackend(long size) {
        if (size <= 0 || (size >>> CHUNK_SHIFT) >= Integer.MAX_VALUE) {
            throw new IllegalArgumentException("ram size " + size);
        }
        this.size = size;
        this.chunks = new AtomicReferenceArray<>((int) ((size + CHUNK - 1) >>> CHUNK_SHIFT));
        long address;
        try {
            address = Posix.mapAnonymous(size);
        } catch (Posix.Failure e) {
            arena.close();
            throw new IllegalArgumentException("ram namespace of " + size + " bytes cannot be mapped: " + e.getMessage()
                    + (e.errno == Posix.ENOMEM ? " (vm.overcommit_memory=2 counts MAP_NORESERVE mappings in full)" : ""));
        }
        this.region = MemorySegment.ofAddress(address).reinterpret(size, arena, unmapped -> Posix.unmap(address, size));
    }

    @Override
    public long size() {
        return size;
    }

    private MemorySegment chunkForWrite(int index) {
        MemorySegment c = chunks.get(index);
        if (c == null) {
            long start = (long) index << CHUNK_SHIFT;
            MemorySegment fresh = region.asSlice(start, Math.min(CHUNK, size - start));
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
                if (chunks.getAndSet(index, null) != null) {
                    Posix.dontNeed(region.address() + at, CHUNK);
                }
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
        try {
            arena.close(); // munmap
        } catch (IllegalStateException alreadyClosed) {
            // closed twice: the mapping is gone already
        }
    }
}
