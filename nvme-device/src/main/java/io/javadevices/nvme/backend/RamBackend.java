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
 *
 * <p><b>Resize</b> (the control plane's {@code namespace_resize}): the disk is a list of {@link Extent}s, each one
 * mapping (rounded up to whole chunks) with its own chunk table. A grow past the mapped end maps one more extent
 * and publishes a new, longer list (the old extents, their mappings and chunk tables are shared, never copied, so
 * a first write racing the grow is never lost); a shrink zeroes and gives back the dropped range (a later grow
 * reads zero there) and keeps the mapping. The one-extent case, every disk that was never grown, costs one
 * comparison per chunk.
 */
public final class RamBackend implements BlockBackend {
    public static final int CHUNK_SHIFT = 20;
    public static final long CHUNK = 1L << CHUNK_SHIFT;

    /** One mapping: bytes {@code [start, end)} of the disk, chunk-aligned, and the table of its written chunks. */
    private static final class Extent {
        final long start, end;
        final Arena arena = Arena.ofShared();
        final MemorySegment region;
        final AtomicReferenceArray<MemorySegment> chunks;

        Extent(long start, long length) {
            if (length <= 0 || (length >>> CHUNK_SHIFT) >= Integer.MAX_VALUE) {
                throw new IllegalArgumentException("ram size " + length);
            }
            long mapped = (length + CHUNK - 1) & -CHUNK;
            long address;
            try {
                address = Posix.mapAnonymous(mapped);
            } catch (Posix.Failure e) {
                arena.close();
                throw new IllegalArgumentException("ram namespace of " + length + " bytes cannot be mapped: " + e.getMessage()
                        + (e.errno == Posix.ENOMEM ? " (vm.overcommit_memory=2 counts MAP_NORESERVE mappings in full)" : ""));
            }
            this.start = start;
            this.end = start + mapped;
            this.chunks = new AtomicReferenceArray<>((int) (mapped >>> CHUNK_SHIFT));
            this.region = MemorySegment.ofAddress(address).reinterpret(mapped, arena, unmapped -> Posix.unmap(address, mapped));
        }

        /** The chunk holding disk offset {@code at} (inside this extent), or null if never written. */
        MemorySegment chunk(long at) {
            return chunks.get((int) ((at - start) >>> CHUNK_SHIFT));
        }

        MemorySegment chunkForWrite(long at) {
            int index = (int) ((at - start) >>> CHUNK_SHIFT);
            MemorySegment c = chunks.get(index);
            if (c == null) {
                MemorySegment fresh = region.asSlice((long) index << CHUNK_SHIFT, CHUNK);
                c = chunks.compareAndExchange(index, null, fresh);
                if (c == null) {
                    c = fresh;
                }
            }
            return c;
        }

        /** Drops the whole chunk at {@code at}, giving its pages back. */
        void dropChunk(long at) {
            int index = (int) ((at - start) >>> CHUNK_SHIFT);
            if (chunks.getAndSet(index, null) != null) {
                Posix.dontNeed(region.address() + ((long) index << CHUNK_SHIFT), CHUNK);
            }
        }

        int allocated() {
            int n = 0;
            for (int i = 0; i < chunks.length(); i++) {
                if (chunks.get(i) != null) {
                    n++;
                }
            }
            return n;
        }

        void close() {
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

    private volatile long size;
    /** Contiguous from 0, ascending; replaced by a longer list on a grow (guarded by this for writers). */
    private volatile Extent[] extents;

    public RamBackend(long size) {
        this.extents = new Extent[] {new Extent(0, size)};
        this.size = size;
    }

    @Override
    public long size() {
        return size;
    }

    /** The extent holding offset {@code at}: the first one unless the disk was grown. */
    private Extent extent(long at) {
        Extent[] xs = extents;
        Extent e = xs[0];
        for (int i = 1; at >= e.end && i < xs.length; i++) {
            e = xs[i];
        }
        return e;
    }

    @Override
    public void read(long offset, MemorySegment dst) {
        long done = 0;
        long length = dst.byteSize();
        while (done < length) {
            long at = offset + done;
            long within = at & (CHUNK - 1);
            long n = Math.min(length - done, CHUNK - within);
            MemorySegment c = extent(at).chunk(at);
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
            long within = at & (CHUNK - 1);
            long n = Math.min(length - done, CHUNK - within);
            MemorySegment.copy(src, done, extent(at).chunkForWrite(at), within, n);
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
            long within = at & (CHUNK - 1);
            long n = Math.min(length - done, CHUNK - within);
            Extent e = extent(at);
            if (within == 0 && n == CHUNK) {
                e.dropChunk(at);
            } else {
                MemorySegment c = e.chunk(at);
                if (c != null) {
                    c.asSlice(within, n).fill((byte) 0);
                }
            }
            done += n;
        }
    }

    /** Memory speed: runs on the polling thread, never offloaded. */
    @Override
    public boolean mayBlock() {
        return false;
    }

    @Override
    public boolean deallocatedReadsZero() {
        return true;
    }

    @Override
    public String notResizable() {
        return null;
    }

    /**
     * A grow maps what lies past the mapped end (sparse: nothing is touched); a shrink zeroes
     * {@code [newSize, size)} and gives its whole chunks back, so a later grow reads zero there.
     */
    @Override
    public synchronized void resize(long newSize) {
        if (newSize <= 0) {
            throw new IllegalArgumentException("ram size " + newSize);
        }
        long old = size;
        Extent[] xs = extents;
        long mappedEnd = xs[xs.length - 1].end;
        if (newSize > mappedEnd) {
            Extent[] grown = java.util.Arrays.copyOf(xs, xs.length + 1);
            grown[xs.length] = new Extent(mappedEnd, newSize - mappedEnd);
            extents = grown;
        } else if (newSize < old) {
            deallocate(newSize, old - newSize);
        }
        size = newSize;
    }

    /** Number of allocated 1 MiB chunks (for tests). */
    public int allocatedChunks() {
        int n = 0;
        for (Extent e : extents) {
            n += e.allocated();
        }
        return n;
    }

    @Override
    public String describe() {
        return "ram:" + size;
    }

    @Override
    public void close() {
        for (Extent e : extents) {
            e.close();
        }
    }
}
