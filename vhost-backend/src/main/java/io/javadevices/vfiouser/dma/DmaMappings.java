package io.javadevices.vfiouser.dma;

import io.javadevices.pci.GuestMemory;
import io.javadevices.vfiouser.sys.Errno;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.FileIdentity;
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
 * the spec's VFIO_USER_DMA_READ / VFIO_USER_DMA_WRITE messages are not supported.
 *
 * <p>Rules (spec "VFIO_USER_DMA_MAP/UNMAP", libvfio-user {@code dma_controller_add_region}): a map that
 * overlaps an existing one fails with EEXIST; unmaps must match a map exactly, or use the ALL flag. Every
 * mapping counts against {@code maxMappings}; fd-backed bytes count against {@code maxMappedBytes}.
 *
 * <p><b>Re-maps.</b> A map of exactly the range of an existing one is accepted as a no-op only if it is
 * the same mapping again: the same file (st_dev and st_ino, whatever the fd number), file offset and
 * flags, or again fd-less with the same offset and flags. QEMU treats any failed map as fatal
 * ({@code hw_error("vfio: DMA mapping failed")}), which is why the identical re-map stays accepted. Any
 * other re-map fails with EEXIST; it is not applied as a replacement. Decision: replacing would need
 * an unmap the client did not ask for while device workers may be copying into the old pages, and
 * acknowledging-and-ignoring (the old behaviour) is worse: a read-only mapping stays private, so device
 * writes would land where the guest never looks. QEMU's listener always unmaps a section before it maps a
 * changed one, so only a confused or hostile client sends a differing re-map; libvfio-user refuses it
 * too (EINVAL, by its {@code fds_are_same_file} check).
 *
 * <p><b>Which files.</b> Only files whose pages are memory are accepted: tmpfs (memfd, /dev/shm) and
 * hugetlbfs, checked with {@code fstatfs}. A device worker touching a page of a FUSE or NFS file can
 * block in the page fault for as long as that filesystem likes, and a thread stuck in a fault also stalls
 * every JVM safepoint, i.e. the whole server. A regular file on a disk filesystem (ext4, xfs, overlay) is
 * refused as well: its faults wait for disk I/O and its dirty pages are written back to the file, which
 * is not what guest RAM is (QEMU's memory backends are memfd, /dev/shm or hugetlbfs). Refused with EINVAL.
 * The file must be long enough for the range (checked with {@code fstat}), because touching a mapping
 * past end of file raises SIGBUS. If the client later shrinks a file it did not seal with F_SEAL_SHRINK
 * (QEMU's memory-backend-memfd seals by default), the device's accesses fail as guest-memory errors
 * (see {@link GuestMemory}).
 *
 * <p><b>Threads.</b> Only the connection's socket thread calls the mutating methods; the counters may be
 * read from any thread. Unmapping removes the region from guest memory first, then closes its arena; if a
 * device thread holds the segment in a native call at that moment the close is retried for a short while
 * and otherwise deferred (counted by {@link #deferredCloses()}): a daemon timer then retries it every
 * {@link #DEFERRED_RETRY_MILLIS} ms until the device has let go, so the memory is released promptly and
 * not only at the client's next map. Before that, the device is asked to quiesce
 * ({@link GuestMemory#awaitQuiescent}): asynchronous I/O such as io_uring holds raw guest addresses that the
 * JDK's segment protection cannot see, so the region is released only once every such operation started before
 * the unmap has completed (waited for on a daemon thread when it takes longer than a moment).
 */
public final class DmaMappings {
    private static final System.Logger LOG = System.getLogger(DmaMappings.class.getName());
    private static final long CLOSE_RETRY_NANOS = 100_000_000L;
    /** Period of the deferred-release timer (class comment, "Threads"). */
    static final long DEFERRED_RETRY_MILLIS = 5;

    private final GuestMemory memory;
    private final int maxMappings;
    private final long maxMappedBytes;
    private final TreeMap<Long, Mapping> byAddress = new TreeMap<>();
    private final List<Arena> deferred = new ArrayList<>();
    private volatile int count;
    private volatile long mappedBytes;
    private volatile int deferredCount;
    /** Unmapped regions waiting for the device's in-flight asynchronous DMA (guarded by this). */
    private int quiescing;
    /** How long a deferred release waits for in-flight device I/O before it gives up and keeps the memory. */
    private static final long QUIESCE_WAIT_NANOS = 600_000_000_000L;
    /** Maps refused for their file or as a differing re-map (guarded by this; for rate-limited logging). */
    private long refusals;
    /** The deferred-release timer thread while one runs, else null (guarded by this). */
    private Thread releaser;

    /** One DMA_MAP. {@code arena} and {@code file} are null for fd-less mappings. */
    private record Mapping(long address, long size, long fileOffset, int flags, FileIdentity.FileStat file, Arena arena) {
        boolean fdBacked() {
            return arena != null;
        }

        /** True if a map of the same range with these arguments is this mapping again (class comment). */
        boolean sameAs(long otherOffset, int otherFlags, FileIdentity.FileStat otherFile) {
            return fileOffset == otherOffset && flags == otherFlags
                    && (file == null ? otherFile == null : otherFile != null && file.sameFile(otherFile));
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
            FileIdentity.FileStat file = null;
            if (fd >= 0) {
                try {
                    file = FileIdentity.fstat(fd);
                    long type = FileIdentity.filesystemType(fd);
                    if (!file.isRegularFile() || !memoryFilesystem(type)) {
                        // Not guest RAM (class comment, "Which files"). Logged: QEMU stops at the first failed
                        // map, and the operator needs to know why (e.g. memory-backend-file on a disk).
                        warnRefused(String.format("DMA_MAP of [0x%x, +0x%x): the fd is not a file on tmpfs or hugetlbfs"
                                + " (f_type 0x%x); QEMU: memory-backend-memfd, or memory-backend-file on /dev/shm or"
                                + " hugetlbfs", address, size, type));
                        return Errno.EINVAL;
                    }
                } catch (ErrnoException e) {
                    return Errno.EINVAL;
                }
            }
            Mapping same = byAddress.get(address);
            if (same != null && same.size == size) {
                if (same.sameAs(fileOffset, flags, file)) {
                    return 0; // see class comment, "Re-maps"
                }
                warnRefused(String.format("DMA_MAP of [0x%x, +0x%x) with another file, offset or flags than the"
                        + " mapping already there", address, size));
                return Errno.EEXIST;
            }
            if (overlaps(address, size)) {
                return Errno.EEXIST;
            }
            if (count >= maxMappings) {
                return Errno.ENOSPC;
            }
            if (fd < 0) {
                add(new Mapping(address, size, fileOffset, flags, null, null));
                return 0;
            }
            if (size > maxMappedBytes - mappedBytes) {
                return Errno.ENOMEM;
            }
            if (fileOffset + size > file.size()) {
                return Errno.EINVAL; // would SIGBUS on access past end of file
            }
            return mapFile(address, size, fileOffset, flags, fd, file);
        } finally {
            LibC.closeQuietly(fd);
        }
    }

    /** Logs a refused map, rate-limited: the 1st, 2nd, 4th, 8th... refusal (a hostile client may send many). */
    private void warnRefused(String what) {
        refusals++;
        if (Long.bitCount(refusals) == 1) {
            LOG.log(System.Logger.Level.WARNING, "refused " + what + " (refusal #" + refusals + ")");
        }
    }

    private static boolean memoryFilesystem(long type) {
        return type == FileIdentity.TMPFS_MAGIC || type == FileIdentity.HUGETLBFS_MAGIC;
    }

    private int mapFile(long address, long size, long fileOffset, int flags, int fd, FileIdentity.FileStat file) {
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
        add(new Mapping(address, size, fileOffset, flags, file, arena));
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
            releaseWhenQuiescent(m.arena);
        }
    }

    /**
     * Closes the arena of an unmapped region once the device has no asynchronous DMA into it in flight
     * ({@link GuestMemory#awaitQuiescent}: io_uring operations hold raw addresses the JDK cannot see). Waits a
     * short while on the socket thread; if the device needs longer (a slow disk under a deep queue), a daemon
     * thread waits for it and releases the memory afterwards, counted by {@link #deferredCloses()} meanwhile.
     */
    private void releaseWhenQuiescent(Arena arena) {
        if (memory.awaitQuiescent(CLOSE_RETRY_NANOS)) {
            closeArena(arena);
            return;
        }
        LOG.log(System.Logger.Level.WARNING, "DMA mapping still in use by in-flight device I/O after unmap; releasing it when that completes");
        quiescing++;
        deferredCount = deferred.size() + quiescing;
        Thread.ofPlatform().daemon().name("vfio-user-dma-quiesce").start(() -> {
            boolean quiet = memory.awaitQuiescent(QUIESCE_WAIT_NANOS);
            synchronized (this) {
                quiescing--;
                if (quiet) {
                    closeArena(arena);
                } else {
                    // Releasing now could let the kernel write into memory the JVM reuses: keep it mapped (a leak
                    // of one region) rather than risk that.
                    LOG.log(System.Logger.Level.ERROR, "device I/O into an unmapped DMA region did not finish in "
                            + QUIESCE_WAIT_NANOS / 1_000_000_000L + " s; the region stays mapped");
                }
                deferredCount = deferred.size() + quiescing;
            }
        });
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
                    deferredCount = deferred.size() + quiescing;
                    startReleaser();
                    return;
                }
                Thread.onSpinWait();
                Thread.yield();
            }
        }
    }

    /** Starts the deferred-release timer unless it runs; it ends by itself once nothing is deferred. */
    private void startReleaser() {
        if (releaser != null) {
            return;
        }
        releaser = Thread.ofPlatform().daemon().name("vfio-user-dma-release").start(() -> {
            while (true) {
                try {
                    Thread.sleep(DEFERRED_RETRY_MILLIS);
                } catch (InterruptedException e) {
                    // keep going: the arenas must still be released
                }
                synchronized (this) {
                    retryDeferred();
                    if (deferred.isEmpty()) {
                        releaser = null;
                        return;
                    }
                }
            }
        });
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
        deferredCount = deferred.size() + quiescing;
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
