package io.javadevices.nvme.backend;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The io_uring path of one file or block device for one queue worker ({@link AsyncIo} on a {@link UringEngine}).
 *
 * <ul>
 * <li>Read/Write: {@code IORING_OP_READV}/{@code WRITEV} straight from the {@link IoVector}'s {@code struct iovec}
 *     array, or {@code IORING_OP_READ}/{@code WRITE} for a single buffer (zero copy into guest memory); a durable write carries {@code RWF_DSYNC} (per-write
 *     {@code O_DSYNC}: it completes once data and the metadata to reach it are stable, like QEMU's FUA on
 *     file-posix).</li>
 * <li>Flush: {@code IORING_OP_FSYNC} with {@code IORING_FSYNC_DATASYNC}, i.e. {@code fdatasync}.</li>
 * <li>Write Zeroes: {@code IORING_OP_FALLOCATE} {@code FALLOC_FL_ZERO_RANGE}; deallocate:
 *     {@code FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE}, on regular files (QEMU's {@code handle_aiocb_write_zeroes}
 *     and {@code handle_aiocb_discard} make the same calls). A durable zeroing is followed by an fsync of the same
 *     tag once the fallocate succeeded.</li>
 * </ul>
 *
 * <p><b>The synchronous path.</b> Some operations run the backend's blocking methods ({@code syncFallback}) on
 * the engine's thread for them ({@link UringEngine#blockingCalls}), never on the worker's (a shared polling thread),
 * and complete through {@link IoEngine#complete}: guest memory that is not native
 * (heap arrays in unit tests, {@link IoVector#allNative()} false); an O_DIRECT operation
 * ({@code directAlignment > 1}) whose offset, any buffer address or any buffer length is not a multiple of
 * {@code directAlignment}, which the kernel would refuse with EINVAL: the backend's synchronous path bounces
 * exactly those through an aligned buffer; zeroing and deallocating a block device (the backend issues
 * {@code BLKZEROOUT}/{@code BLKDISCARD}), and a file system that answers EOPNOTSUPP to the fallocate.
 *
 * <p><b>Partial transfers.</b> A short read or write resubmits the rest for the same tag (progress per tag, the
 * iovec entry where it resumes advanced in place: the operation owns its IoVector until it completes); a read
 * that reaches end of file (0 bytes) zero-fills what is left, as the synchronous path does; a write that moves 0
 * bytes fails with EIO. Success is only ever reported for the whole transfer.
 *
 * <p><b>Durability points and failed syncs.</b> Every fsync and durable write of this path reports its outcome
 * to the backend's {@link SyncState}, which every path of the namespace shares: it counts the syncs, consults
 * the fault-injection seam as the operation completes (a test's injected failure then fails the ring's fsync or
 * RWF_DSYNC write just as it fails the synchronous path's fdatasync) and keeps the first failure. Linux reports a
 * write-back error once per open file description (errseq), so after a failed sync every later Flush and durable
 * write of the namespace fails until it is opened again, whichever path or queue saw the failure. For the same
 * reason {@code fd} should be an open file description of its own per worker (the path opened again, not
 * {@code dup}ed), so that each worker's fdatasync sees an error that happened while it was open, whichever
 * worker's sync runs first. A durable write that failed is such a failure too (its implicit sync may have taken
 * the error report), but for {@code EFAULT} and {@code EAGAIN} ({@link #mayHaveTakenWriteBackError}).
 *
 * <p>Worker thread only; per-tag state is in arrays sized at construction, nothing allocates per operation.
 */
public final class UringFileIo implements AsyncIo {
    private static final int READ = 1, WRITE = 2, FLUSH = 3, ZEROES = 4, DEALLOCATE = 5;
    /** Phase of an SQE within its operation: the operation itself, or the fsync that makes it durable. */
    private static final int MAIN = 0, SYNC = 1;
    /** {@code IOV_MAX}: readv/writev refuse more iovecs. */
    private static final int IOV_MAX = 1024;
    private static final int RETRIES = 4;

    private final UringEngine engine;
    private final int fd;
    private final int directAlignment;
    private final FileBackend syncFallback;
    private final SyncState durability;
    private final boolean blockDevice;

    private final byte[] kind;
    private final boolean[] durable;
    private final long[] offset;
    private final long[] length;
    private final long[] done;
    private final int[] retries;
    private final IoVector[] vectors;
    /** Sees this path's CQEs first (short transfers, the fsync after a durable zeroing, EOPNOTSUPP). */
    private final UringEngine.Step step = this::completed;

    private long synchronous;
    /** {@link #syncFallback}'s blocking methods on the engine's thread for them ({@link UringEngine#blockingCalls}). */
    private AsyncIo blockingPath;

    /**
     * @param fd              the file or block device, open read-write (O_DIRECT if {@code directAlignment > 1})
     * @param directAlignment the O_DIRECT alignment of offsets, buffer addresses and lengths; 0 or 1 without O_DIRECT
     * @param syncFallback    the file whose blocking methods run what io_uring cannot (see the class comment), and
     *                        whose {@link SyncState} this path reports to
     * @param blockDevice     true for a block device: zeroing and deallocating go through {@code syncFallback}
     */
    public UringFileIo(UringEngine engine, int fd, int directAlignment, FileBackend syncFallback, boolean blockDevice) {
        if (directAlignment > 1 && Integer.bitCount(directAlignment) != 1) {
            throw new IllegalArgumentException("O_DIRECT alignment " + directAlignment + " is not a power of two");
        }
        this.engine = engine;
        this.fd = fd;
        this.directAlignment = Math.max(1, directAlignment);
        this.syncFallback = syncFallback;
        this.durability = syncFallback.durability();
        this.blockDevice = blockDevice;
        int tags = engine.capacity();
        this.kind = new byte[tags];
        this.durable = new boolean[tags];
        this.offset = new long[tags];
        this.length = new long[tags];
        this.done = new long[tags];
        this.retries = new int[tags];
        this.vectors = new IoVector[tags];
    }

    /** The backend's blocking methods off the worker's thread (made on the first use: once per worker). */
    private AsyncIo blocking() {
        AsyncIo b = blockingPath;
        if (b == null) {
            b = blockingPath = engine.blockingCalls().syncIo(syncFallback);
        }
        synchronous++;
        return b;
    }

    @Override
    public void read(int tag, long at, IoVector data) {
        if (!startTransfer(tag, READ, at, data, false)) {
            blocking().read(tag, at, data);
        }
    }

    @Override
    public void write(int tag, long at, IoVector data, boolean durableWrite) {
        if (durableWrite && syncHasFailed()) {
            engine.complete(tag, refusedSync());
            return;
        }
        if (!startTransfer(tag, WRITE, at, data, durableWrite)) {
            blocking().write(tag, at, data, durableWrite);
        }
    }

    @Override
    public void flush(int tag) {
        if (syncHasFailed()) {
            engine.complete(tag, refusedSync());
            return;
        }
        start(tag, FLUSH, 0, 0, false);
        fsync(tag, MAIN, true);
    }

    @Override
    public void writeZeroes(int tag, long at, long bytes, boolean durableWrite) {
        if (durableWrite && syncHasFailed()) {
            engine.complete(tag, refusedSync());
        } else if (bytes <= 0) {
            engine.complete(tag, 0);
        } else if (blockDevice) {
            blocking().writeZeroes(tag, at, bytes, durableWrite); // BLKZEROOUT can take seconds
        } else {
            start(tag, ZEROES, at, bytes, durableWrite);
            fallocate(tag, UringRing.FALLOC_FL_ZERO_RANGE, true);
        }
    }

    @Override
    public void deallocate(int tag, long at, long bytes) {
        if (bytes <= 0) {
            engine.complete(tag, 0);
        } else if (blockDevice || !syncFallback.deallocatedReadsZero()) {
            // BLKDISCARD, or a file whose file system cannot punch holes: the backend decided at open what a
            // deallocation is there (a hint that changes nothing), and DLFEAT says so; the ring must not differ.
            blocking().deallocate(tag, at, bytes);
        } else {
            start(tag, DEALLOCATE, at, bytes, false);
            fallocate(tag, UringRing.FALLOC_FL_PUNCH_HOLE | UringRing.FALLOC_FL_KEEP_SIZE, true);
        }
    }

    /** Operations that took the synchronous path (heap memory, unaligned O_DIRECT, EOPNOTSUPP, block device zeroing). */
    public long synchronousOperations() {
        return synchronous;
    }

    // ---- io_uring path

    private void start(int tag, int what, long at, long bytes, boolean durableOp) {
        kind[tag] = (byte) what;
        offset[tag] = at;
        length[tag] = bytes;
        durable[tag] = durableOp;
        done[tag] = 0;
        retries[tag] = 0;
    }

    /** Starts a readv/writev of {@code data}; false if it must take the synchronous path instead. */
    private boolean startTransfer(int tag, int what, long at, IoVector data, boolean durableOp) {
        if (!data.allNative() || data.count() > IOV_MAX || !aligned(at, data)) {
            return false;
        }
        if (data.bytes() == 0) {
            engine.complete(tag, 0);
            return true;
        }
        start(tag, what, at, data.bytes(), durableOp);
        vectors[tag] = data;
        if (!transfer(tag)) {
            vectors[tag] = null;
            engine.complete(tag, -UringSyscalls.EBUSY);
        }
        return true;
    }

    /** O_DIRECT needs the offset and every buffer's address and length aligned (open(2), "O_DIRECT"). */
    private boolean aligned(long at, IoVector data) {
        long mask = directAlignment - 1;
        if (mask == 0) {
            return true;
        }
        if ((at & mask) != 0) {
            return false;
        }
        for (int i = 0; i < data.count(); i++) {
            MemorySegment s = data.segment(i);
            if (((s.address() | s.byteSize()) & mask) != 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * Prepares the transfer of what is left of {@code tag}'s operation: {@code IORING_OP_READ}/{@code WRITE} when
     * it is one buffer (the kernel then imports no iovec array), {@code READV}/{@code WRITEV} otherwise.
     */
    private boolean transfer(int tag) {
        IoVector data = vectors[tag];
        long skip = done[tag];
        int first = 0;
        while (skip > 0 && skip >= data.segment(first).byteSize()) {
            skip -= data.segment(first).byteSize();
            first++;
        }
        boolean write = kind[tag] == WRITE;
        int rwFlags = write && durable[tag] ? UringRing.RWF_DSYNC : 0;
        long at = offset[tag] + done[tag];
        if (first == data.count() - 1) {
            MemorySegment s = data.segment(first);
            return engine.prepare(step, tag, MAIN, write ? UringRing.IORING_OP_WRITE : UringRing.IORING_OP_READ, 0, fd,
                    at, s.address() + skip, (int) Math.min(s.byteSize() - skip, 1 << 30), rwFlags); // the rest: a short transfer
        }
        MemorySegment iovecs = data.iovecs();
        if (skip > 0) { // resume inside a buffer: advance its iovec entry (base, length) in place
            MemorySegment s = data.segment(first);
            iovecs.set(JAVA_LONG, (long) first * IoVector.IOVEC_BYTES, s.address() + skip);
            iovecs.set(JAVA_LONG, (long) first * IoVector.IOVEC_BYTES + 8, s.byteSize() - skip);
        }
        return engine.prepare(step, tag, MAIN, write ? UringRing.IORING_OP_WRITEV : UringRing.IORING_OP_READV, 0, fd,
                at, iovecs.address() + (long) first * IoVector.IOVEC_BYTES, data.count() - first, rwFlags);
    }

    private boolean fsync(int tag, int phase, boolean startsOperation) {
        boolean prepared = engine.prepare(step, tag, phase, UringRing.IORING_OP_FSYNC, 0, fd, 0L, 0L, 0,
                UringRing.IORING_FSYNC_DATASYNC);
        if (!prepared && startsOperation) {
            engine.complete(tag, -UringSyscalls.EBUSY);
        }
        return prepared;
    }

    /** {@code fallocate(fd, mode, offset, length)}: IORING_OP_FALLOCATE takes the length in addr, the mode in len. */
    private boolean fallocate(int tag, int mode, boolean startsOperation) {
        boolean prepared = engine.prepare(step, tag, MAIN, UringRing.IORING_OP_FALLOCATE, 0, fd, offset[tag],
                length[tag], mode, 0);
        if (!prepared && startsOperation) {
            engine.complete(tag, -UringSyscalls.EBUSY);
        }
        return prepared;
    }

    private int completed(int tag, int phase, int result) {
        return switch (kind[tag]) {
            case READ, WRITE -> transferred(tag, result);
            case FLUSH -> synced(result);
            case ZEROES -> phase == SYNC ? synced(result) : zeroed(tag, result);
            case DEALLOCATE -> deallocated(tag, result);
            default -> result;
        };
    }

    private int transferred(int tag, int result) {
        boolean write = kind[tag] == WRITE;
        if (result == -UringSyscalls.EAGAIN || result == -UringSyscalls.EINTR) {
            if (++retries[tag] <= RETRIES && transfer(tag)) {
                return UringEngine.CONTINUES;
            }
        }
        if (result < 0) {
            vectors[tag] = null;
            return write && durable[tag] && mayHaveTakenWriteBackError(result) ? syncFailure(result, null) : result;
        }
        if (result == 0) {
            if (!write) {
                zeroRest(tag); // end of file: the rest reads as zeroes
            }
            vectors[tag] = null;
            return write ? -UringSyscalls.EIO : total(tag); // a write without progress fails rather than spins
        }
        done[tag] += result;
        if (done[tag] < length[tag] && transfer(tag)) {
            return UringEngine.CONTINUES;
        }
        vectors[tag] = null;
        if (done[tag] < length[tag]) {
            return -UringSyscalls.EBUSY;
        }
        if (write && durable[tag]) { // an RWF_DSYNC write is a sync point of its own
            IOException injected = durability.takeInjected();
            if (injected != null) {
                return syncFailure(-UringSyscalls.EIO, injected);
            }
            durability.dsyncWritten();
        }
        return total(tag);
    }

    private static int total(long bytes) {
        return (int) Math.min(bytes, Integer.MAX_VALUE);
    }

    private int total(int tag) {
        return total(length[tag]);
    }

    private void zeroRest(int tag) {
        IoVector data = vectors[tag];
        long skip = done[tag];
        for (int i = 0; i < data.count(); i++) {
            MemorySegment s = data.segment(i);
            if (skip >= s.byteSize()) {
                skip -= s.byteSize();
                continue;
            }
            s.asSlice(skip).fill((byte) 0);
            skip = 0;
        }
    }

    private int zeroed(int tag, int result) {
        if (result == -UringSyscalls.EOPNOTSUPP) { // the file system zeroes no range: the backend writes zeroes
            blocking().writeZeroes(tag, offset[tag], length[tag], durable[tag]);
            return UringEngine.CONTINUES;
        }
        if (result < 0 || !durable[tag]) {
            return result;
        }
        if (syncHasFailed()) {
            return refusedSync();
        }
        return fsync(tag, SYNC, false) ? UringEngine.CONTINUES : -UringSyscalls.EBUSY;
    }

    private int deallocated(int tag, int result) {
        if (result == -UringSyscalls.EOPNOTSUPP) {
            blocking().deallocate(tag, offset[tag], length[tag]);
            return UringEngine.CONTINUES;
        }
        return result;
    }

    private int synced(int result) {
        if (result < 0) {
            return syncFailure(result, null);
        }
        IOException injected = durability.takeInjected();
        if (injected != null) {
            return syncFailure(-UringSyscalls.EIO, injected);
        }
        durability.ringSynced();
        return 0;
    }

    // ---- sticky sync failures

    private boolean syncHasFailed() {
        return durability.failed();
    }

    /**
     * False for the failures of a durable write that never reached the file's write-back: guest memory the kernel
     * could not read ({@code EFAULT}, not the storage's fault) and a write still refused after the retries
     * ({@code EAGAIN}, {@code EINTR}). Any other error may have consumed the write-back error report.
     */
    private static boolean mayHaveTakenWriteBackError(int result) {
        return result != -UringSyscalls.EFAULT && result != -UringSyscalls.EAGAIN && result != -UringSyscalls.EINTR;
    }

    private int refusedSync() {
        durability.refused();
        return -UringSyscalls.EIO;
    }

    /**
     * A failed fsync or durable write ({@code cause}: the injected failure, or null for the kernel's
     * {@code result}): counted, and sticky for the whole namespace at once, whatever this descriptor's next
     * fdatasync would say (see the class comment).
     */
    private int syncFailure(int result, IOException cause) {
        durability.failed(cause != null ? cause : new IOException("fdatasync or RWF_DSYNC write on an io_uring"
                + " queue's descriptor failed: errno " + -result));
        return result;
    }
}
