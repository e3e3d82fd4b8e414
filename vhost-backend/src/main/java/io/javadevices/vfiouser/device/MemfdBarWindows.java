package io.javadevices.vfiouser.device;

import io.javadevices.pci.DirectBarMemory;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.LibC;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.REGION_FLAG_MMAP;

/**
 * The vfio-user server's {@link DirectBarMemory}: each BAR that has windows gets one memfd (the spec
 * allows exactly one fd per region, vfio-user.md §1.7) whose file offsets equal BAR offsets; each window
 * is mapped {@code MAP_SHARED} here and reported to the client as a sparse-mmap area of the region, so
 * QEMU maps the same pages into the guest ({@code mmap(fd, region.offset + area.offset)}, region.offset 0).
 *
 * <p>Windows live as long as the server: the mapping outlives every client (a new client maps the same
 * pages), and the device resets their contents on reset. Not thread-safe: windows are created while the
 * device is constructed, on the thread that starts the server.
 */
public final class MemfdBarWindows implements DirectBarMemory, AutoCloseable {
    private final int[] fds = {-1, -1, -1, -1, -1, -1};
    private final long[] fileSizes = new long[6];
    private final List<List<RegionInfo.SparseArea>> areas = new ArrayList<>();
    private final List<long[]> mappings = new ArrayList<>(); // {address, length}

    public MemfdBarWindows() {
        for (int i = 0; i < 6; i++) {
            areas.add(new ArrayList<>());
        }
    }

    @Override
    public Optional<MemorySegment> share(int bar, long offset, long size) {
        DirectBarMemory.checkWindow(bar, offset, size);
        if (LibC.PAGE_SIZE != PAGE) {
            return Optional.empty(); // host pages larger than 4 KiB: windows could not be mapped alone
        }
        for (RegionInfo.SparseArea a : areas.get(bar)) {
            if (offset < a.offset() + a.size() && a.offset() < offset + size) {
                throw new IllegalArgumentException("BAR" + bar + " window at " + offset + " overlaps another");
            }
        }
        try {
            if (fds[bar] < 0) {
                fds[bar] = LibC.memfdCreate("javadevices-bar" + bar, LibC.MFD_CLOEXEC);
            }
            if (offset + size > fileSizes[bar]) {
                LibC.ftruncate(fds[bar], offset + size); // new pages read as zeros
                fileSizes[bar] = offset + size;
            }
            MemorySegment at = LibC.mmap(size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fds[bar], offset);
            mappings.add(new long[] {at.address(), size});
            areas.get(bar).add(new RegionInfo.SparseArea(offset, size));
            return Optional.of(at.reinterpret(size));
        } catch (ErrnoException e) {
            throw new IllegalStateException("cannot create a shared BAR" + bar + " window: " + e.getMessage(), e);
        }
    }

    /** {@code trapped} (a BAR's region) with this object's windows as sparse areas, or unchanged if it has none. */
    public RegionInfo regionInfo(RegionInfo trapped) {
        int bar = trapped.index();
        List<RegionInfo.SparseArea> list = bar < 6 ? areas.get(bar) : List.of();
        if (list.isEmpty()) {
            return trapped;
        }
        for (RegionInfo.SparseArea a : list) {
            if (a.offset() + a.size() > trapped.size()) {
                throw new IllegalStateException("BAR" + bar + " window ends beyond the BAR (" + trapped.size() + " bytes)");
            }
        }
        return new RegionInfo(bar, trapped.flags() | REGION_FLAG_MMAP,
                trapped.size(), 0, list, fds[bar]);
    }

    /** Unmaps every window and closes the memfds (after the device is closed). */
    @Override
    public void close() {
        for (long[] m : mappings) {
            try {
                LibC.munmap(m[0], m[1]);
            } catch (ErrnoException ignored) {
                // nothing left to do on close
            }
        }
        mappings.clear();
        for (int i = 0; i < 6; i++) {
            if (fds[i] >= 0) {
                LibC.closeQuietly(fds[i]);
                fds[i] = -1;
            }
        }
    }
}
