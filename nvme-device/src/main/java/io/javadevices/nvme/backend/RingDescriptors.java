package io.javadevices.nvme.backend;

import java.util.ArrayList;
import java.util.List;

/**
 * The descriptors one {@link FileBackend} opened for queue workers' io_uring rings, one per live ring: each is
 * a new open file description of the same inode (see {@link FileBackend#openAsync} for why). A descriptor is
 * closed when its ring closes (the queue's worker ended: a reset, a Delete I/O SQ, a client gone), so the
 * server's descriptors are the same after every guest session, or with the backend, whichever comes first;
 * each is closed exactly once. Their syncs are counted in the backend's {@link SyncState}. Guarded by the
 * backend's monitor.
 */
final class RingDescriptors {
    private record Entry(UringEngine engine, int fd, UringFileIo io) {
    }

    private final List<Entry> live = new ArrayList<>();

    /** Opens a descriptor of the file behind {@code fd} for {@code ring}; -1 (logged by the caller) if it fails. */
    UringFileIo open(UringEngine ring, int fd, boolean direct, int alignment, FileBackend backend, boolean blockDevice)
            throws Posix.Failure {
        // Through /proc/self/fd: this inode even if the path was renamed or replaced since the backend opened it.
        int own = Posix.open("/proc/self/fd/" + fd, Posix.O_RDWR | Posix.O_CLOEXEC | (direct ? Posix.O_DIRECT : 0), 0);
        UringFileIo io = new UringFileIo(ring, own, alignment, backend, blockDevice);
        Entry entry = new Entry(ring, own, io);
        live.add(entry);
        ring.onClose(() -> {
            synchronized (backend) {
                if (live.remove(entry)) { // not already closed with the backend
                    retire(entry);
                }
            }
        });
        return io;
    }

    private void retire(Entry e) {
        Posix.close(e.fd());
    }

    void closeAll() {
        live.forEach(this::retire);
        live.clear();
    }
}
