package io.javadevices.nvme.backend;

import java.nio.file.Path;

/**
 * Exclusive use of a {@code file:} image against other writers, with the open-file-description (OFD) byte
 * locks QEMU's {@code block/file-posix.c} uses, so that a second server, or a QEMU with the same image
 * attached, is refused instead of both writing it.
 *
 * <p>QEMU's scheme ({@code raw_apply_lock_bytes} / {@code raw_check_lock_bytes}): for each block permission
 * bit {@code i} it holds, a shared lock on byte {@code 100 + i}; for each permission it does not share with
 * others, a shared lock on byte {@code 200 + i}; then it tests that nobody holds {@code 200 + i} for a
 * permission it wants, nor {@code 100 + i} for one it refuses to share. Write is bit 1
 * ({@code BLK_PERM_WRITE = 0x02}), consistent read bit 0. A namespace reads and writes and does not share
 * writing, so this lock holds 100 and 101 (consistent read, write) and 201 (write not shared), and refuses
 * when another holder is on 101 (a writer), 201 (someone who refuses writers) or 200 (someone who refuses
 * readers). A second server conflicts on 101/201, a QEMU writer on 201 (its "Failed to get "write" lock"),
 * and a QEMU reader that does not share writes ({@code qemu-img info} without {@code -U}) on 101; a
 * force-share reader ({@code -U}) holds only byte 100 and coexists, as it does with QEMU itself. Libvirt's
 * virtlockd uses byte 0, which stays free. Like QEMU, the locks are taken first and tested after, so two
 * servers racing both see each other and both refuse rather than both succeeding.
 *
 * <p>Why OFD locks, not {@link java.nio.channels.FileChannel#tryLock()}: Java's file locks are classic POSIX
 * record locks, owned by the process, not by the descriptor. The kernel never makes two of one process's
 * locks conflict (two servers in one JVM, or two namespaces on one image, would both "get" the lock; the JDK
 * only papers over that with its own in-JVM table), and closing any descriptor of the file anywhere in the
 * process silently drops all of them. OFD locks ({@code F_OFD_SETLK}, Linux 3.15) belong to the open file
 * description, conflict between two opens in one process, live exactly as long as this descriptor, and are
 * the kind QEMU takes, so the conflict rules above are the ones QEMU applies. The lock sits on a descriptor
 * of its own (FileBackend does the I/O on descriptors of its own); advisory locks bind only programs that ask, which
 * QEMU does by default ({@code locking=auto}).
 */
final class ImageLock implements AutoCloseable {
    static final int PERM_BASE = 100, SHARED_BASE = 200;
    static final int CONSISTENT_READ = 0, WRITE = 1;

    private final int fd;
    private boolean closed;

    private ImageLock(int fd) {
        this.fd = fd;
    }

    /** Locks {@code path} for exclusive writing or throws {@link IllegalArgumentException} saying why not. */
    static ImageLock acquire(Path path) {
        int fd;
        try {
            fd = Posix.openReadWrite(path.toString());
        } catch (Posix.Failure e) {
            throw new IllegalArgumentException("namespace file " + path + " cannot be opened for locking: " + e.getMessage());
        }
        try {
            Posix.ofdSetLock(fd, Posix.F_RDLCK, PERM_BASE + CONSISTENT_READ, 1);
            Posix.ofdSetLock(fd, Posix.F_RDLCK, PERM_BASE + WRITE, 1);
            Posix.ofdSetLock(fd, Posix.F_RDLCK, SHARED_BASE + WRITE, 1);
            int[] mustBeFree = {PERM_BASE + WRITE, SHARED_BASE + WRITE, SHARED_BASE + CONSISTENT_READ};
            for (int at : mustBeFree) {
                if (Posix.ofdConflicts(fd, Posix.F_WRLCK, at, 1)) {
                    throw new Posix.Failure("lock test of byte " + at, Posix.EAGAIN);
                }
            }
            return new ImageLock(fd);
        } catch (Posix.Failure e) {
            Posix.close(fd); // drops the bytes taken so far
            if (e.errno == Posix.EAGAIN || e.errno == Posix.EACCES) {
                throw new IllegalArgumentException("namespace file " + path + " is in use by another process or server"
                        + " (QEMU-style OFD lock on byte 101/201 held elsewhere: " + e.getMessage() + ")");
            }
            throw new IllegalArgumentException("namespace file " + path + " cannot be locked (OFD locks need Linux 3.15"
                    + " and a file system that supports them): " + e.getMessage());
        }
    }

    /** Idempotent: closing a descriptor number twice could close somebody else's. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            Posix.close(fd); // closing the open file description releases its OFD locks
        }
    }
}
