package io.javadevices.pci;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Guest-physical memory as a device sees it for DMA: a set of disjoint regions, each backed by a
 * {@link MemorySegment} (a VMM's own guest RAM, an mmap of a memfd received over vfio-user, or a heap
 * segment in tests).
 *
 * <p><b>Who calls it.</b> The host (VMM or transport) owns the region table and calls {@link #map} and
 * {@link #unmap} from its own thread; devices call the access methods from any of their worker threads,
 * concurrently. Lookups read an immutable, volatile array, so accesses take no lock.
 *
 * <p><b>Safety.</b> Every access is bounds-checked against the mapped regions: an address that is not
 * mapped, a range that runs past the end of guest RAM, a negative length or an address that overflows
 * gives a {@link GuestMemoryException}, never a JVM crash and never a write to the wrong place.
 * Addresses are unsigned 64-bit guest-physical addresses; values with the top bit set are never mapped.
 * A range may span several adjacent regions (byte copies are split); {@link #slice} only succeeds within
 * one region. If the host unmaps a region whose segment belongs to a shared {@code Arena} and closes that
 * arena while a device is copying, the JDK fails the concurrent access with an
 * {@link IllegalStateException}, which these methods turn into a {@link GuestMemoryException}.
 *
 * <p><b>Truncated files.</b> Guest RAM received from a client is a mapping of the client's file; if the
 * client shrinks the file (ftruncate) the pages past its new end raise SIGBUS when touched, which
 * HotSpot turns into an {@link InternalError} ("a fault occurred in an unsafe memory access"). The
 * access methods turn it into a {@link GuestMemoryException} too, so the device answers with its
 * DMA-error status. HotSpot raises that error asynchronously, at the thread's next safepoint check,
 * which in JIT-compiled code can lie after the access method has returned: devices that run guest
 * work on their own threads therefore also keep a catch-all at the thread's top (the NVMe queue
 * worker reports a controller fatal status), and zero-copy users of {@link #slice} catch it around
 * their own accesses. The catches cost nothing on the hot path.
 *
 * <p><b>Ordering.</b> Plain accesses give no ordering. {@link #loadIntAcquire}, {@link #storeIntRelease}
 * and {@link #fullFence} are for shared-memory protocols with the guest such as NVMe shadow doorbells
 * and EventIdx (a store-then-load pattern needs the full fence: release + acquire is not enough).
 * All multi-byte values are little-endian, as PCI devices see them.
 */
public final class GuestMemory {
    /** Source of {@link #fill} with zero (never written). */
    private static final MemorySegment ZERO_PAGE = java.lang.foreign.Arena.global().allocate(64 * 1024, 4096);


    /** One mapped range of guest-physical memory. {@code segment.byteSize()} is its length. */
    public record Region(long address, MemorySegment segment) {
        public Region {
            if (address < 0 || segment.byteSize() <= 0 || address + segment.byteSize() < 0) {
                throw new IllegalArgumentException(String.format(
                        "bad region: gpa 0x%x size %d", address, segment.byteSize()));
            }
        }

        /** Guest-physical address one past the last byte. */
        public long end() {
            return address + segment.byteSize();
        }

        public long size() {
            return segment.byteSize();
        }
    }

    /**
     * A device part that hands guest addresses to something that keeps using them after the call returns, such
     * as the kernel for an io_uring read or write. The JDK protects a segment only while a Java access or a
     * native call that received it is running; an operation queued with a raw address is invisible to it, so a
     * host that released guest RAM while such an operation is in flight would let the kernel write into memory
     * that is no longer the guest's (and may already be the JVM's). Hosts therefore call
     * {@link GuestMemory#awaitQuiescent} after removing a region from the table and before releasing it, the
     * way libvfio-user makes a device quiesce before a DMA region goes away ({@code vfu_setup_device_quiesce_cb}).
     */
    public interface DmaQuiescer {
        /**
         * Waits up to {@code timeoutNanos} until every asynchronous operation this part had started, or was about
         * to start, with a guest address at the time of the call has finished; true if so, false on timeout.
         * New operations cannot reach a region that has left the table ({@link #slice} fails), so the wait
         * ends even under continuous I/O.
         */
        boolean awaitQuiescent(long timeoutNanos);
    }

    private static final VarHandle INT_ATOMIC = LittleEndian.INT_ALIGNED.varHandle();

    private volatile Region[] regions = new Region[0];
    private volatile long generation;
    private final java.util.concurrent.CopyOnWriteArrayList<DmaQuiescer> quiescers = new java.util.concurrent.CopyOnWriteArrayList<>();

    /** Creates an empty guest memory; the host adds regions with {@link #map}. */
    public GuestMemory() {
    }

    /** Creates a guest memory with one region (convenience for VMMs and tests). */
    public static GuestMemory of(long address, MemorySegment segment) {
        GuestMemory memory = new GuestMemory();
        memory.map(address, segment);
        return memory;
    }

    // ------------------------------------------------------------------ region table (host side)

    /**
     * Adds a region. Called by the host only.
     *
     * @throws IllegalArgumentException if the range is invalid or overlaps an existing region
     */
    public synchronized void map(long address, MemorySegment segment) {
        Region added = new Region(address, segment);
        Region[] current = regions;
        for (Region r : current) {
            if (added.address() < r.end() && r.address() < added.end()) {
                throw new IllegalArgumentException(String.format(
                        "region [0x%x, 0x%x) overlaps [0x%x, 0x%x)", added.address(), added.end(), r.address(), r.end()));
            }
        }
        Region[] next = Arrays.copyOf(current, current.length + 1);
        next[current.length] = added;
        Arrays.sort(next, (a, b) -> Long.compare(a.address(), b.address()));
        regions = next;
        generation++;
    }

    /**
     * Removes the region that starts at {@code address} with exactly {@code size} bytes and returns it,
     * or returns {@code null} if there is none. The caller may then release the segment (e.g. close its
     * arena); concurrent device accesses fail cleanly.
     */
    public synchronized Region unmap(long address, long size) {
        Region[] current = regions;
        for (int i = 0; i < current.length; i++) {
            if (current[i].address() == address && current[i].size() == size) {
                Region removed = current[i];
                Region[] next = new Region[current.length - 1];
                System.arraycopy(current, 0, next, 0, i);
                System.arraycopy(current, i + 1, next, i, current.length - i - 1);
                regions = next;
                generation++;
                return removed;
            }
        }
        return null;
    }

    /** Removes every region and returns them, for the caller to release. */
    public synchronized List<Region> unmapAll() {
        List<Region> removed = List.of(regions);
        regions = new Region[0];
        generation++;
        return removed;
    }

    /** Registers a device part that starts asynchronous DMA ({@link DmaQuiescer}); the device calls it. */
    public void addQuiescer(DmaQuiescer quiescer) {
        quiescers.add(quiescer);
    }

    public void removeQuiescer(DmaQuiescer quiescer) {
        quiescers.remove(quiescer);
    }

    /**
     * Host side, after {@link #unmap} or {@link #unmapAll} and before releasing the removed memory: waits up to
     * {@code timeoutNanos} until no asynchronous DMA started before the unmap can still touch it. True at once
     * when no device part registered a {@link DmaQuiescer}; false on timeout (keep the memory and wait longer).
     * Must not be called while holding a lock a device worker may need.
     */
    public boolean awaitQuiescent(long timeoutNanos) {
        long deadline = System.nanoTime() + timeoutNanos;
        for (DmaQuiescer q : quiescers) {
            if (!q.awaitQuiescent(Math.max(0, deadline - System.nanoTime()))) {
                return false;
            }
        }
        return true;
    }

    /** A snapshot of the mapped regions, sorted by address. */
    public List<Region> regions() {
        return List.of(regions);
    }

    /**
     * A number that changes whenever the region table changes. A device that caches a {@link #slice}
     * (for example the NVMe shadow-doorbell page) re-resolves it when this value moves.
     */
    public long generation() {
        return generation;
    }

    /** Total mapped bytes. */
    public long mappedBytes() {
        long total = 0;
        for (Region r : regions) {
            total += r.size();
        }
        return total;
    }

    // ------------------------------------------------------------------ lookups

    private static Region find(Region[] table, long address) {
        int lo = 0;
        int hi = table.length - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            Region r = table[mid];
            if (address < r.address()) {
                hi = mid - 1;
            } else if (address >= r.end()) {
                lo = mid + 1;
            } else {
                return r;
            }
        }
        return null;
    }

    /** The SIGBUS of a mapping whose file was shrunk under it (class comment, "Truncated files"). */
    private static GuestMemoryException truncated(long address, long length) {
        return new GuestMemoryException("guest memory fault (its file was truncated?)", address, length);
    }

    private static void checkRange(long address, long length) throws GuestMemoryException {
        if (address < 0 || length < 0 || address + length < 0) {
            throw new GuestMemoryException("guest address out of range", address, length);
        }
    }

    /** The region holding all of {@code [address, address+length)}, or an exception. */
    private Region within(long address, long length) throws GuestMemoryException {
        checkRange(address, length);
        Region r = find(regions, address);
        if (r == null || address + length > r.end()) {
            throw new GuestMemoryException(r == null ? "guest address not mapped" : "range crosses the end of a mapped region",
                    address, length);
        }
        return r;
    }

    private static void requireMapped(Region[] table, long address, long length) throws GuestMemoryException {
        if (!covered(table, address, length)) {
            throw new GuestMemoryException("guest range not fully mapped", address, length);
        }
    }

    /** True if {@code [address, address+length)} is fully mapped (possibly across adjacent regions). */
    public boolean isMapped(long address, long length) {
        if (address < 0 || length < 0 || address + length < 0) {
            return false;
        }
        return covered(regions, address, length);
    }

    private static boolean covered(Region[] table, long address, long length) {
        if (length == 0) {
            return true;
        }
        long at = address;
        long end = address + length;
        do {
            Region r = find(table, at);
            if (r == null) {
                return false;
            }
            at = r.end();
        } while (at < end);
        return true;
    }

    /** True if the range lies inside a single region, so that {@link #slice} gives zero-copy access. */
    public boolean isContiguous(long address, long length) {
        if (address < 0 || length < 0 || address + length < 0) {
            return false;
        }
        Region r = find(regions, address);
        return r != null && address + length <= r.end();
    }

    /**
     * Zero-copy view of {@code [address, address+length)}.
     *
     * @throws GuestMemoryException if the range is not inside one mapped region
     */
    public MemorySegment slice(long address, long length) throws GuestMemoryException {
        Region r = within(address, length);
        return r.segment().asSlice(address - r.address(), length);
    }

    // ------------------------------------------------------------------ bulk copies

    /** Copies guest memory at {@code address} into {@code dst[dstOffset, dstOffset+length)}. */
    public void read(long address, MemorySegment dst, long dstOffset, long length) throws GuestMemoryException {
        copy(address, dst, dstOffset, length, false);
    }

    /** Copies {@code src[srcOffset, srcOffset+length)} into guest memory at {@code address}. */
    public void write(long address, MemorySegment src, long srcOffset, long length) throws GuestMemoryException {
        copy(address, src, srcOffset, length, true);
    }

    /** Copies guest memory into a byte array. */
    public void read(long address, byte[] dst, int offset, int length) throws GuestMemoryException {
        read(address, MemorySegment.ofArray(dst), offset, length);
    }

    /** Copies a byte array into guest memory. */
    public void write(long address, byte[] src, int offset, int length) throws GuestMemoryException {
        write(address, MemorySegment.ofArray(src), offset, length);
    }

    private void copy(long address, MemorySegment other, long otherOffset, long length, boolean toGuest)
            throws GuestMemoryException {
        checkRange(address, length);
        if (otherOffset < 0 || otherOffset + length > other.byteSize() || otherOffset + length < 0) {
            throw new IllegalArgumentException("local buffer too small");
        }
        Region[] table = regions;
        // Validate the whole range before touching anything: a DMA that fails half-way must not have
        // written part of its data.
        requireMapped(table, address, length);
        long done = 0;
        try {
            while (done < length) {
                long at = address + done;
                Region r = find(table, at);
                long chunk = Math.min(length - done, r.end() - at);
                if (toGuest) {
                    MemorySegment.copy(other, otherOffset + done, r.segment(), at - r.address(), chunk);
                } else {
                    MemorySegment.copy(r.segment(), at - r.address(), other, otherOffset + done, chunk);
                }
                done += chunk;
            }
        } catch (IllegalStateException closedWhileInUse) {
            throw new GuestMemoryException("guest memory was unmapped during the access", address, length);
        } catch (InternalError fault) {
            throw truncated(address, length);
        }
    }

    /** Sets {@code length} bytes of guest memory at {@code address} to {@code value}. */
    public void fill(long address, long length, byte value) throws GuestMemoryException {
        checkRange(address, length);
        Region[] table = regions;
        requireMapped(table, address, length);
        long done = 0;
        try {
            while (done < length) {
                long at = address + done;
                Region r = find(table, at);
                long chunk = Math.min(length - done, r.end() - at);
                if (value == 0) {
                    // Zeroes are copied from a constant page with the static copy, which needs no slice
                    // object: a device's zero-fill (e.g. a read from a null disk) then allocates nothing.
                    chunk = Math.min(chunk, ZERO_PAGE.byteSize());
                    MemorySegment.copy(ZERO_PAGE, 0, r.segment(), at - r.address(), chunk);
                } else {
                    r.segment().asSlice(at - r.address(), chunk).fill(value);
                }
                done += chunk;
            }
        } catch (IllegalStateException closedWhileInUse) {
            throw new GuestMemoryException("guest memory was unmapped during the access", address, length);
        } catch (InternalError fault) {
            throw truncated(address, length);
        }
    }

    // ------------------------------------------------------------------ scalar accesses (little-endian)

    /** Plain little-endian 32-bit read. */
    public int readInt(long address) throws GuestMemoryException {
        Region r = within(address, 4);
        try {
            return r.segment().get(LittleEndian.INT, address - r.address());
        } catch (IllegalStateException closed) {
            throw new GuestMemoryException("guest memory was unmapped during the access", address, 4);
        } catch (InternalError fault) {
            throw truncated(address, 4);
        }
    }

    /** Plain little-endian 64-bit read. */
    public long readLong(long address) throws GuestMemoryException {
        Region r = within(address, 8);
        try {
            return r.segment().get(LittleEndian.LONG, address - r.address());
        } catch (IllegalStateException closed) {
            throw new GuestMemoryException("guest memory was unmapped during the access", address, 8);
        } catch (InternalError fault) {
            throw truncated(address, 8);
        }
    }

    /** Plain little-endian 32-bit write. */
    public void writeInt(long address, int value) throws GuestMemoryException {
        Region r = within(address, 4);
        try {
            r.segment().set(LittleEndian.INT, address - r.address(), value);
        } catch (IllegalStateException closed) {
            throw new GuestMemoryException("guest memory was unmapped during the access", address, 4);
        } catch (InternalError fault) {
            throw truncated(address, 4);
        }
    }

    /** Plain little-endian 64-bit write. */
    public void writeLong(long address, long value) throws GuestMemoryException {
        Region r = within(address, 8);
        try {
            r.segment().set(LittleEndian.LONG, address - r.address(), value);
        } catch (IllegalStateException closed) {
            throw new GuestMemoryException("guest memory was unmapped during the access", address, 8);
        } catch (InternalError fault) {
            throw truncated(address, 8);
        }
    }

    /**
     * 32-bit little-endian load with acquire semantics: later loads of this thread are not reordered
     * before it. The address must be 4-byte aligned.
     */
    public int loadIntAcquire(long address) throws GuestMemoryException {
        Region r = alignedInt(address);
        try {
            return (int) INT_ATOMIC.getAcquire(r.segment(), address - r.address());
        } catch (IllegalStateException | IllegalArgumentException e) {
            throw new GuestMemoryException("atomic access failed: " + e.getMessage(), address, 4);
        } catch (InternalError fault) {
            throw truncated(address, 4);
        }
    }

    /**
     * 32-bit little-endian store with release semantics: earlier loads and stores of this thread are
     * visible before it. The address must be 4-byte aligned.
     */
    public void storeIntRelease(long address, int value) throws GuestMemoryException {
        Region r = alignedInt(address);
        try {
            INT_ATOMIC.setRelease(r.segment(), address - r.address(), value);
        } catch (IllegalStateException | IllegalArgumentException e) {
            throw new GuestMemoryException("atomic access failed: " + e.getMessage(), address, 4);
        } catch (InternalError fault) {
            throw truncated(address, 4);
        }
    }

    private Region alignedInt(long address) throws GuestMemoryException {
        if ((address & 3) != 0) {
            throw new GuestMemoryException("unaligned 32-bit atomic access", address, 4);
        }
        return within(address, 4);
    }

    /**
     * A full (StoreLoad) fence: stores before it are globally visible before loads after it. Needed for
     * the NVMe EventIdx re-arm (store EventIdx, fence, re-read the shadow tail) — Linux pairs it with the
     * {@code mb()} in {@code nvme_dbbuf_update_and_check_event}.
     */
    public static void fullFence() {
        VarHandle.fullFence();
    }

    // ------------------------------------------------------------------ helpers for cached slices

    /** Acquire-load of a little-endian int from a segment previously obtained with {@link #slice}. */
    public static int loadIntAcquire(MemorySegment segment, long offset) {
        return (int) INT_ATOMIC.getAcquire(segment, offset);
    }

    /** Release-store of a little-endian int into a segment previously obtained with {@link #slice}. */
    public static void storeIntRelease(MemorySegment segment, long offset, int value) {
        INT_ATOMIC.setRelease(segment, offset, value);
    }

    @Override
    public String toString() {
        List<String> parts = new ArrayList<>();
        for (Region r : regions) {
            parts.add(String.format("[0x%x+0x%x)", r.address(), r.size()));
        }
        return "GuestMemory" + parts;
    }
}
