package io.javadevices.vfiouser.dma;

import io.javadevices.pci.GuestMemory;
import io.javadevices.vfiouser.sys.Errno;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.DMA_FLAG_READ;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.DMA_FLAG_WRITE;

/**
 * The client's DMA mappings (DMA_MAP / DMA_UNMAP) and their effect on the device's {@link GuestMemory}.
 *
 * <p>An fd-backed mapping is {@code mmap}ed {@code MAP_SHARED} at the given file offset (rounded down to
 * a page, then sliced), wrapped in a segment whose own shared {@link Arena} {@code munmap}s it on close,
 * and added to guest memory; the received fd is closed right away (the mapping keeps the file alive).
 * A read-only mapping is mapped {@code MAP_PRIVATE} and writable, so that a device write to it cannot
 * crash the JVM: it lands in private pages the guest never sees, like a write to ROM. fd-less mappings
 * (QEMU's ROM and {@code ram_device} sections) are acknowledged and recorded but are not usable for DMA —
 * QEMU's DMA_READ/WRITE messages are not supported (vfio-user.md §1.13).
 *
 * <p>Rules (spec "VFIO_USER_DMA_MAP/UNMAP", libvfio-user {@code dma_controller_add_region}): a map that
 * overlaps an existing one fails with EEXIST, except an identical re-map, which is accepted as a no-op
 * because QEMU treats any failed map as fatal ({@code hw_error("vfio: DMA mapping failed")}); unmaps must
 * match a map exactly, or use the ALL flag. Every mapping counts against {@code maxMappings}; fd-backed
 * bytes count against {@code maxMappedBytes}. The file must be long enough for the range (checked with
 * {@code lseek}), because touching a mapping past end of file raises SIGBUS.
 *
 * <p><b>Threads.</b> Only the connection's socket thread calls the mutating methods; the counters may be
 * read from any thread. Unmapping removes the region from guest memory first, then closes its arena; if a
 * device thread holds the segment in a native call at that moment the close is retried for a short while
 * and otherwise deferred (counted by {@link #deferredCloses()}) and retried on later calls.
 */
public final class DmaMappings {
    private static final System.Logger LOG = System.getLogger(DmaMappings.class.getName());
    private static final long CLOSE_RETRY_NANOS = 2_000_000_000L;

    private final GuestMemory memory;
    private final int maxMappings;
    private final long maxMappedBytes;
    private final TreeMap<Long, Mapping> byAddress = new TreeMap<>();
    private final List<Arena> deferred = new ArrayList<>();
    private volatile int count;
    private volatile long mappedBytes;
    private volatile int deferredCount;

    /** One DMA_MAP. {@code arena} is null for fd-less mappings. */
    private record Mapping(long address, long size, long fileOffset, int flags, Arena arena) {
        boolean fdBacked() {
            return arena != null;
        }
    }

    public DmaMappings(GuestMemory memory, int maxMappings, long maxMappedBytes) {
        this.memory = memory;
        this.maxMappings = maxMappings;
        this.maxMappedBytes = maxMappedBytes;
    }

    /**
     * Handles one DMA_MAP. Always takes ownership of {@code fd} (-1 for none) and closes it.
     *
     * @return 0 on success, else a positive errno for the error reply
     */
    public synchronized int map(long address, long size, long fileOffset, int flags, int fd) {
        try {
            retryDeferred();
            if ((flags & ~(DMA_FLAG_READ | DMA_FLAG_WRITE)) != 0 || size <= 0 || address < 0
                    || address + size < 0 || fileOffset < 0 || fileOffset + size < 0) {
                return Errno.EINVAL;
            }
            Mapping same = byAddress.get(address);
            if (same != null && same.size == size) {
                return 0; // identical re-map: accept (see class comment)
            }
            if (overlaps(address, size)) {
                return Errno.EEXIST;
            }
            if (count >= maxMappings) {
                return Errno.ENOSPC;
            }
            if (fd < 0) {
                add(new Mapping(address, size, fileOffset, flags, null));
                return 0;
            }
            if (size > maxMappedBytes - mappedBytes) {
                return Errno.ENOMEM;
            }
            return mapFile(address, size, fileOffset, flags, fd);
        } finally {
            LibC.closeQuietly(fd);
        }
    }

    private int mapFile(long address, long size, long fileOffset, int flags, int fd) {
        long fileSize;
        try {
            long position = LibC.lseek(fd, 0, LibC.SEEK_CUR);
            fileSize = LibC.lseek(fd, 0, LibC.SEEK_END);
            LibC.lseek(fd, position, LibC.SEEK_SET);
        } catch (ErrnoException e) {
            return Errno.EINVAL; // not a seekable file (pipe, socket...): cannot be guest RAM
        }
        if (fileOffset + size > fileSize) {
            return Errno.EINVAL; // would SIGBUS on access past end of file
        }
        long pageOffset = fileOffset & -LibC.PAGE_SIZE;
        long delta = fileOffset - pageOffset;
        long length = size + delta;
        boolean writable = (flags & DMA_FLAG_WRITE) != 0;
        MemorySegment raw;
        try {
            raw = LibC.mmap(length, LibC.PROT_READ | LibC.PROT_WRITE,
                    writable ? LibC.MAP_SHARED : LibC.MAP_PRIVATE, fd, pageOffset);
        } catch (ErrnoException e) {
            return e.errno();
        }
        long base = raw.address();
        Arena arena = Arena.ofShared();
        MemorySegment whole = raw.reinterpret(length, arena, ignored -> unmapQuietly(base, length));
        MemorySegment segment = whole.asSlice(delta, size);
        try {
            memory.map(address, segment);
        } catch (IllegalArgumentException e) {
            arena.close();
            return Errno.EEXIST; // guest memory already has this range (cannot happen: checked above)
        }
        add(new Mapping(address, size, fileOffset, flags, arena));
        return 0;
    }

    private static void unmapQuietly(long base, long length) {
        try {
            LibC.munmap(base, length);
        } catch (ErrnoException e) {
            LOG.log(System.Logger.Level.WARNING, "munmap failed", e);
        }
    }

    private boolean overlaps(long address, long size) {
        long end = address + size;
        Map.Entry<Long, Mapping> below = byAddress.floorEntry(address);
        if (below != null && below.getValue().address + below.getValue().size > address) {
            return true;
        }
        Map.Entry<Long, Mapping> above = byAddress.ceilingEntry(address);
        return above != null && above.getKey() < end;
    }

    private void add(Mapping m) {
        byAddress.put(m.address, m);
        count = byAddress.size();
        if (m.fdBacked()) {
            mappedBytes += m.size;
        }
    }

    /**
     * Handles one DMA_UNMAP of exactly {@code [address, address+size)}.
     *
     * @return 0, or ENOENT if no mapping matches exactly
     */
    public synchronized int unmap(long address, long size) {
        retryDeferred();
        Mapping m = byAddress.get(address);
        if (m == null || m.size != size) {
            return Errno.ENOENT;
        }
        remove(m);
        return 0;
    }

    /** Removes every mapping (DMA_UNMAP with the ALL flag, client disconnect, server stop). */
    public synchronized int unmapAll() {
        int n = byAddress.size();
        for (Mapping m : List.copyOf(byAddress.values())) {
            remove(m);
        }
        // Anything else in guest memory belongs to us too (nothing else maps into it).
        memory.unmapAll();
        retryDeferred();
        return n;
    }

    private void remove(Mapping m) {
        byAddress.remove(m.address);
        count = byAddress.size();
        if (m.fdBacked()) {
            // Spec: drop every reference before replying. Remove from the lookup table first, so new
            // device accesses fail cleanly, then close the arena (which unmaps).
            memory.unmap(m.address, m.size);
            mappedBytes -= m.size;
            closeArena(m.arena);
        }
    }

    private void closeArena(Arena arena) {
        long deadline = System.nanoTime() + CLOSE_RETRY_NANOS;
        while (true) {
            try {
                arena.close();
                return;
            } catch (IllegalStateException inUse) {
                // A device thread is in a native call with a segment of this mapping (e.g. file I/O
                // straight from guest memory). It will finish soon; try again.
                if (System.nanoTime() > deadline) {
                    LOG.log(System.Logger.Level.WARNING, "DMA mapping still in use by the device after unmap; deferring its release");
                    deferred.add(arena);
                    deferredCount = deferred.size();
                    return;
                }
                Thread.onSpinWait();
                Thread.yield();
            }
        }
    }

    private void retryDeferred() {
        if (deferred.isEmpty()) {
            return;
        }
        deferred.removeIf(arena -> {
            try {
                arena.close();
                return true;
            } catch (IllegalStateException stillInUse) {
                return false;
            }
        });
        deferredCount = deferred.size();
    }

    /** Current number of mappings (fd-backed and fd-less). */
    public int count() {
        return count;
    }

    /** Bytes currently mmapped from clients' fds. */
    public long mappedBytes() {
        return mappedBytes;
    }

    /** Unmapped regions whose memory could not be released yet because the device still used it. */
    public int deferredCloses() {
        return deferredCount;
    }

    /** Number of mappings without an fd (acknowledged, not usable for DMA). */
    public synchronized int fdLessCount() {
        int n = 0;
        for (Mapping m : byAddress.values()) {
            if (!m.fdBacked()) {
                n++;
            }
        }
        return n;
    }
}
