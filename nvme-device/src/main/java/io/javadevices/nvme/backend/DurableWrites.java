package io.javadevices.nvme.backend;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * The durable write of one {@link FileBackend} ({@link BlockBackend#writeDurable}): a FUA write, or any write while
 * the guest has the volatile write cache disabled. One {@code pwritev2(RWF_DSYNC)} of the command's whole vector
 * where the kernel takes it: the per-write {@code O_DSYNC}, durable when it returns with the metadata to read it
 * back and, unlike {@code fdatasync}, only for this range (the io_uring path sets the same flag on its
 * {@code WRITEV}). Otherwise the caller writes plainly and calls {@code fdatasync}, which is as durable:
 * <ul>
 * <li>a file whose kernel or driver refuses {@code RWF_DSYNC} ({@code EOPNOTSUPP}: a file without
 *     {@code write_iter} such as a character device; {@code ENOSYS}: a kernel before 4.7). Decided at the first
 *     refusal, once for the backend, and logged then;</li>
 * <li>a vector the kernel cannot take from here: heap memory, more than {@code IOV_MAX} pieces, or on an O_DIRECT
 *     descriptor an offset, address or length that is not aligned (those go through the bounce buffer or the
 *     buffered descriptor, see FileBackend's class comment);</li>
 * <li>the rest after a short {@code RWF_DSYNC} write (what it wrote is durable already).</li>
 * </ul>
 * Every outcome is counted and made sticky in the backend's {@link SyncState}.
 */
final class DurableWrites {
    private static final System.Logger LOG = System.getLogger(FileBackend.class.getName());
    /** {@code IOV_MAX}: pwritev2 refuses more iovecs. */
    private static final int IOV_MAX = 1024;

    private final Path path;
    private final SyncState state;
    /** Cleared at the first refusal of RWF_DSYNC: every durable write is then write + fdatasync. */
    private volatile boolean dsync = true;

    DurableWrites(Path path, SyncState state) {
        this.path = path;
        this.state = state;
    }

    /** False once the kernel refused RWF_DSYNC for this file. */
    boolean dsyncSupported() {
        return dsync;
    }

    /**
     * Writes what it can of {@code data} at {@code offset} on {@code fd} with RWF_DSYNC: the bytes written durably
     * (all of them counts as one sync), or 0 if nothing was (refused, or a vector it cannot take:
     * {@code alignment} is the O_DIRECT alignment of {@code fd}, 0 if buffered). The caller writes the rest
     * plainly and syncs. A failure of the write itself throws.
     */
    long write(int fd, int alignment, long offset, IoVector data) throws IOException {
        if (!dsync || !data.allNative() || data.count() > IOV_MAX || data.bytes() == 0 || !aligned(alignment, offset, data)) {
            return 0;
        }
        long n;
        do {
            n = Posix.pwritevDsync(fd, data.iovecs().address(), data.count(), offset);
        } while (n == -Posix.EINTR);
        if (n == -Posix.EOPNOTSUPP || n == -Posix.ENOSYS) {
            refused(n);
            return 0;
        }
        if (n < 0) {
            throw Posix.ioError("pwritev2(RWF_DSYNC) of " + path + " at " + offset, n);
        }
        if (n == data.bytes()) {
            state.dsyncWritten();
        }
        return n;
    }

    private void refused(long errno) {
        if (dsync) {
            dsync = false;
            LOG.log(System.Logger.Level.INFO, "namespace file " + path + ": the kernel refuses RWF_DSYNC writes ("
                    + Posix.Failure.name((int) -errno) + "); FUA and write-through writes are write + fdatasync");
        }
    }

    /** O_DIRECT wants the file offset and every buffer's address and length aligned (open(2), "O_DIRECT"). */
    private static boolean aligned(int alignment, long offset, IoVector data) {
        long mask = alignment - 1L;
        if (alignment == 0 || (offset & mask) != 0) {
            return alignment == 0;
        }
        for (int i = 0; i < data.count(); i++) {
            MemorySegment s = data.segment(i);
            if (((s.address() | s.byteSize()) & mask) != 0) {
                return false;
            }
        }
        return true;
    }

    /** Writes {@code data} from byte {@code skip} on at {@code offset + skip} with {@code backend}'s plain writes. */
    static void writePlainly(BlockBackend backend, long offset, IoVector data, long skip) throws IOException {
        long at = offset;
        for (int i = 0; i < data.count(); i++) {
            MemorySegment s = data.segment(i);
            long size = s.byteSize();
            if (skip < size) {
                backend.write(at + skip, skip == 0 ? s : s.asSlice(skip)); // a slice only after a short write
                skip = 0;
            } else {
                skip -= size;
            }
            at += size;
        }
    }
}
