package io.javadevices.vfiouser.device;

import io.javadevices.pci.DirectBarMemory;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.FileIdentity;
import io.javadevices.vfiouser.sys.LibC;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.REGION_FLAG_MMAP;

/**
 * The vfio-user server's {@link DirectBarMemory}: each BAR that has windows gets one memfd (the spec's
 * VFIO_USER_DEVICE_GET_REGION_INFO reply carries at most one fd per region) whose file offsets equal BAR offsets; each window
 * is mapped {@code MAP_SHARED} here and reported to the client as a sparse-mmap area of the region, so
 * QEMU maps the same pages into the guest ({@code mmap(fd, region.offset + area.offset)}, region.offset 0).
 *
 * <p><b>Sealed.</b> The client receives the memfd itself, so it could {@code ftruncate} it: the device's
 * next access to the page would raise SIGBUS (an InternalError in the JVM) on a device thread, or in the
 * reset that ends every later session. So each memfd is created with {@code MFD_ALLOW_SEALING}, sized,
 * then sealed {@code F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL} (memfd_create(2)): its size can never
 * change again, while both sides may still write its pages.
 *
 * <p><b>One memfd per session.</b> A client that disconnects keeps whatever it mapped, and nothing
 * revokes a mapping in another process. If the next client got the same pages, the former one could
 * keep writing the new VM's doorbells (SQ tails, CQ heads) and replay stale commands on its disk. So
 * {@link #renew()}, called when a session ends, gives every window a new sealed memfd and a new mapping,
 * under the {@link DirectBarMemory} rule: the caller resets the device next, then closes the
 * {@link Retired} memory (unmapping the old pages, after the device has re-read its windows). The fd the
 * server reports keeps its number (the new memfd is {@code dup3}ed onto it), so the region layout never
 * changes; the former client's pages become an orphan file that only it still maps.
 *
 * <p><b>Threads.</b> Windows are created while the device is constructed, on the thread that starts the
 * server; {@link #renew()} runs on the session thread that is ending, before the next session starts.
 * The methods are synchronized so that any thread sees the current fds.
 */
public final class MemfdBarWindows implements DirectBarMemory, AutoCloseable {
    private static final System.Logger LOG = System.getLogger(MemfdBarWindows.class.getName());
    private static final int SEALS = FileIdentity.F_SEAL_SHRINK | FileIdentity.F_SEAL_GROW | FileIdentity.F_SEAL_SEAL;

    private final int[] fds = {-1, -1, -1, -1, -1, -1};
    private final long[] fileSizes = new long[6];
    private final List<List<Granted>> windows = new ArrayList<>();
    private boolean sealed;

    /** One window: its place in the BAR and its current mapping (replaced by {@link #renew()}). */
    private static final class Granted implements DirectBarMemory.Window {
        final int bar;
        final long offset;
        final long size;
        volatile MemorySegment memory;

        Granted(int bar, long offset, long size) {
            this.bar = bar;
            this.offset = offset;
            this.size = size;
        }

        @Override
        public MemorySegment memory() {
            return memory;
        }
    }

    /** The memory {@link #renew()} replaced: close it once the device has been reset. */
    public static final class Retired implements AutoCloseable {
        private final List<MemorySegment> mappings;

        private Retired(List<MemorySegment> mappings) {
            this.mappings = mappings;
        }

        /** Unmaps the former windows (the former client may still map the pages; they are its alone now). */
        @Override
        public void close() {
            for (MemorySegment m : mappings) {
                unmapQuietly(m);
            }
            mappings.clear();
        }
    }

    public MemfdBarWindows() {
        for (int i = 0; i < 6; i++) {
            windows.add(new ArrayList<>());
        }
    }

    @Override
    public synchronized Optional<DirectBarMemory.Window> share(int bar, long offset, long size) {
        DirectBarMemory.checkWindow(bar, offset, size);
        if (sealed) {
            throw new IllegalStateException("BAR windows must be asked for while the device is constructed");
        }
        if (LibC.PAGE_SIZE != PAGE) {
            return Optional.empty(); // host pages larger than 4 KiB: windows could not be mapped alone
        }
        for (Granted w : windows.get(bar)) {
            if (offset < w.offset + w.size && w.offset < offset + size) {
                throw new IllegalArgumentException("BAR" + bar + " window at " + offset + " overlaps another");
            }
        }
        try {
            if (fds[bar] < 0) {
                fds[bar] = LibC.memfdCreate("javadevices-bar" + bar, LibC.MFD_CLOEXEC | LibC.MFD_ALLOW_SEALING);
            }
            if (offset + size > fileSizes[bar]) {
                LibC.ftruncate(fds[bar], offset + size); // new pages read as zeros
                fileSizes[bar] = offset + size;
            }
            Granted w = new Granted(bar, offset, size);
            w.memory = map(fds[bar], offset, size);
            windows.get(bar).add(w);
            return Optional.of(w);
        } catch (ErrnoException e) {
            throw new IllegalStateException("cannot create a shared BAR" + bar + " window: " + e.getMessage(), e);
        }
    }

    /**
     * Seals every memfd: from now on no window can be added and no file can change size. Called once the
     * device is constructed (its windows are known), before any client gets an fd.
     */
    public synchronized void seal() {
        if (sealed) {
            return;
        }
        sealed = true;
        for (int bar = 0; bar < 6; bar++) {
            if (fds[bar] >= 0) {
                try {
                    FileIdentity.addSeals(fds[bar], SEALS);
                } catch (ErrnoException e) {
                    throw new IllegalStateException("cannot seal the BAR" + bar + " memfd: " + e.getMessage(), e);
                }
            }
        }
    }

    /**
     * Gives every window new zeroed memory in a new sealed memfd (class comment, "One memfd per session").
     * Never throws: if the new memory cannot be created (out of memory or fds) the windows keep their
     * current memory and a warning is logged; the returned object then releases nothing.
     */
    public synchronized Retired renew() {
        List<MemorySegment> old = new ArrayList<>();
        for (int bar = 0; bar < 6; bar++) {
            List<Granted> list = windows.get(bar);
            if (list.isEmpty()) {
                continue;
            }
            int fresh = -1;
            List<MemorySegment> created = new ArrayList<>();
            try {
                fresh = LibC.memfdCreate("javadevices-bar" + bar, LibC.MFD_CLOEXEC | LibC.MFD_ALLOW_SEALING);
                LibC.ftruncate(fresh, fileSizes[bar]);
                FileIdentity.addSeals(fresh, SEALS);
                for (Granted w : list) {
                    created.add(map(fresh, w.offset, w.size));
                }
                LibC.dup3CloseOnExec(fresh, fds[bar]); // the reported fd number now names the new file
            } catch (ErrnoException e) {
                LOG.log(System.Logger.Level.WARNING, "cannot give BAR" + bar + " windows fresh memory ("
                        + e.getMessage() + "); the next client gets the same pages");
                created.forEach(MemfdBarWindows::unmapQuietly);
                continue;
            } finally {
                LibC.closeQuietly(fresh);
            }
            for (int i = 0; i < list.size(); i++) {
                old.add(list.get(i).memory);
                list.get(i).memory = created.get(i);
            }
        }
        return new Retired(old);
    }

    private static MemorySegment map(int fd, long offset, long size) throws ErrnoException {
        return LibC.mmap(size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, offset).reinterpret(size);
    }

    private static void unmapQuietly(MemorySegment m) {
        try {
            LibC.munmap(m.address(), m.byteSize());
        } catch (ErrnoException ignored) {
            // nothing left to do
        }
    }

    /** {@code trapped} (a BAR's region) with this object's windows as sparse areas, or unchanged if it has none. */
    public synchronized RegionInfo regionInfo(RegionInfo trapped) {
        int bar = trapped.index();
        List<Granted> list = bar < 6 ? windows.get(bar) : List.of();
        if (list.isEmpty()) {
            return trapped;
        }
        List<RegionInfo.SparseArea> areas = new ArrayList<>();
        for (Granted w : list) {
            if (w.offset + w.size > trapped.size()) {
                throw new IllegalStateException("BAR" + bar + " window ends beyond the BAR (" + trapped.size() + " bytes)");
            }
            areas.add(new RegionInfo.SparseArea(w.offset, w.size));
        }
        return new RegionInfo(bar, trapped.flags() | REGION_FLAG_MMAP, trapped.size(), 0, areas, fds[bar]);
    }

    /** Unmaps every window and closes the memfds (after the device is closed). */
    @Override
    public synchronized void close() {
        for (List<Granted> list : windows) {
            for (Granted w : list) {
                if (w.memory != null) {
                    unmapQuietly(w.memory);
                    w.memory = null;
                }
            }
            list.clear();
        }
        for (int i = 0; i < 6; i++) {
            if (fds[i] >= 0) {
                LibC.closeQuietly(fds[i]);
                fds[i] = -1;
            }
        }
    }
}
