package io.javadevices.nvme.backend;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A regular file or block device on a raw file descriptor ({@link Posix}: {@code pread}/{@code pwrite} loops,
 * safe from many threads at once), buffered by default or with {@code O_DIRECT} ({@code ?direct=on}).
 *
 * <p><b>Durability.</b> Buffered writes land in the host's page cache, and with O_DIRECT still in the device's
 * own cache: that is the volatile write cache the controller advertises (Identify VWC). Flush (and Read FUA, a
 * durable zeroing) calls {@link #sync}: {@code fdatasync(2)}, which writes back
 * the file's dirty pages and the metadata needed to read them (its size, newly allocated extents) and flushes
 * the device cache, as QEMU's {@code handle_aiocb_flush} does. There is no per-range fdatasync:
 * {@code sync_file_range(2)} writes back without flushing the disk cache or metadata, so it is not a durability
 * point; a FUA or write-through write is therefore written with {@code RWF_DSYNC}, the per-write equivalent, on
 * every engine ({@link #writeDurable}, {@link DurableWrites}; io_uring sets the flag on its own writes), and is
 * write + fdatasync only where the kernel refuses the flag. {@link SyncState} counts and keeps all of it.
 * The first failed {@code fdatasync} is sticky: Linux marks the pages it could not write clean (the errseq
 * error is reported once per open file), so a later {@code fdatasync} would succeed while the data is gone
 * (PostgreSQL's "fsyncgate"). Every later sync therefore fails with that first error until the namespace is
 * opened again (server restart), exactly as QEMU's file-posix keeps {@code page_cache_inconsistent}. A failed
 * {@code RWF_DSYNC} write counts as such a failure too: its implicit sync consumed the same errseq report.
 *
 * <p><b>O_DIRECT.</b> The guest's data moves between its memory and the media without the host page cache. The
 * kernel wants the file range and the memory address aligned to {@link #directAlignment()}. NVMe offsets are
 * LBA multiples, so file ranges are aligned whenever the LBA is at least that alignment (the usual case: 512 on
 * a 512e device); guest buffers from PRPs and SGLs may not be. Each piece is therefore treated on its own: an
 * aligned piece goes straight to the kernel; a piece whose only fault is its memory address is bounced through
 * a per-thread aligned buffer; a piece whose file range is unaligned (a 512-byte-LBA namespace on 4 KiB-sector
 * storage) goes through a second, buffered descriptor of the same file, which Linux keeps coherent with direct
 * I/O (a direct read writes back dirty cached pages of its range first, a direct write invalidates them), so no
 * read-modify-write, and no lock between concurrent writers of neighbouring LBAs, is needed.
 *
 * <p><b>Deallocate and Write Zeroes.</b> On a regular file Deallocate punches a hole
 * ({@code FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE}: the blocks are given back, reads return zeroes) and Write
 * Zeroes is {@code FALLOC_FL_ZERO_RANGE}; whether the file system can punch holes is probed at open (a punch past
 * the end of the file, which changes nothing) and decides {@link #deallocatedReadsZero()} (DLFEAT). On a block
 * device Deallocate is {@code BLKDISCARD} and Write Zeroes {@code BLKZEROOUT} (the kernel offloads it to the
 * device's Write Zeroes / unmap where it can and writes zeroes itself where not). Whether a discarded block reads
 * back zeroes is up to the device, and the kernel no longer tells ({@code BLKDISCARDZEROES} returns 0 since Linux
 * 4.12), so a block device reports DLFEAT 000b and the guest's Write Zeroes, Deallocate bit or not, gets
 * {@code BLKZEROOUT}. A file system without either fallocate mode falls back to writing zeroes.
 *
 * <p><b>Exclusive use.</b> A regular file or block device is locked at open, before anything writes, with QEMU's
 * OFD lock bytes ({@link ImageLock}): a second server, or a QEMU writer, on the same image is refused. A block
 * device (size: {@code BLKGETSIZE64}) must be at least the namespace size. Character devices such as
 * {@code /dev/full} are not locked (see {@link Kind}). Unlike a {@code FileChannel}, which an interrupt closes,
 * the descriptors are indifferent to thread interrupts.
 */
public final class FileBackend implements BlockBackend {
    private static final System.Logger LOG = System.getLogger(FileBackend.class.getName());
    /** Bounce buffers are aligned to this; a larger O_DIRECT alignment is refused at open. */
    static final int MAX_ALIGNMENT = 64 << 10;
    /** Used when the kernel does not report the O_DIRECT alignment (see {@link #directAlignment(int, Kind)}). */
    static final int DEFAULT_ALIGNMENT = 4096;
    private static final long BOUNCE_SIZE = 1 << 20;
    /** Per-thread (per queue worker) aligned buffer for heap memory and unaligned guest addresses. */
    private static final ThreadLocal<MemorySegment> BOUNCE = ThreadLocal.withInitial(
            () -> Arena.ofAuto().allocate(BOUNCE_SIZE, MAX_ALIGNMENT));
    private static final MemorySegment ZEROES = Arena.global().allocate(BOUNCE_SIZE, MAX_ALIGNMENT);

    /** The fallocate(2) call: {@link Posix#fallocate}, or a test's stand-in for a file system without it. */
    @FunctionalInterface
    interface Fallocate {
        /** 0 or a negated errno. */
        int call(int fd, int mode, long offset, long length);
    }

    private final Path path;
    private final Kind kind;
    private final boolean direct;
    /** The descriptor of all I/O (with O_DIRECT if {@link #direct}); {@link #bufferedFd} for unaligned ranges. */
    private final int fd;
    private final int bufferedFd;
    /** O_DIRECT alignment (a power of two), 0 when buffered. */
    private final int alignment;
    private final ImageLock lock;
    private volatile long size; // changed only by resize
    private final Fallocate fallocate;
    /** The file system punched the probe hole at open: deallocated blocks read zero (DLFEAT 001b). */
    private final boolean punchHoles;
    /** Cleared at the first EOPNOTSUPP of FALLOC_FL_ZERO_RANGE: zeroes are written from then on. */
    private volatile boolean zeroRange;
    /** Set if a punch fails with EOPNOTSUPP after the probe succeeded: DLFEAT stays true, zeroes are written. */
    private volatile boolean punchRefused;
    private final SyncState sync;
    private final DurableWrites durableWrites;
    private boolean closed;
    /** Read without a lock on every call: a closed descriptor number may already be somebody else's. */
    private volatile boolean open = true;

    /** A buffered backend; see {@link #FileBackend(Path, long, boolean)}. */
    public FileBackend(Path path, long size) {
        this(path, size, false);
    }

    /**
     * Opens (creating it if {@code size > 0} and it does not exist) and locks the file; {@code direct}: with
     * O_DIRECT. {@code size <= 0}: use the file's size. Failures are {@link IllegalArgumentException}s naming the
     * path (a bad option value from the plugin's point of view, {@code PciDevicePlugin.create} contract).
     */
    public FileBackend(Path path, long size, boolean direct) {
        this(path, size, direct, Posix::fallocate);
    }

    FileBackend(Path path, long size, boolean direct, Fallocate fallocate) {
        this.path = path;
        this.direct = direct;
        this.fallocate = fallocate;
        this.sync = new SyncState(path);
        this.durableWrites = new DurableWrites(path, sync);
        boolean exists = Files.exists(path);
        if (!exists && size <= 0) {
            throw new IllegalArgumentException("file " + path + " does not exist and no size given");
        }
        int data = -1, buffered = -1;
        ImageLock locked = null;
        boolean created = false;
        try {
            if (!exists) {
                created = create(path);
            }
            this.kind = kind(path);
            if (kind != Kind.OTHER) {
                locked = ImageLock.acquire(path); // before anything writes: a second opener must not even grow it
            }
            data = openData(path, direct);
            long actual = switch (kind) {
                case REGULAR -> Files.size(path);
                case BLOCK_DEVICE -> Posix.ioctlRead(data, Posix.BLKGETSIZE64);
                case OTHER -> 0;
            };
            this.size = namespaceSize(path, size, actual, kind);
            if (kind == Kind.REGULAR && actual < this.size) {
                Posix.ftruncate(data, this.size); // grows sparse: the new range is a hole that reads zero
            }
            this.alignment = direct ? checkedAlignment(path, directAlignment(data, kind)) : 0;
            buffered = direct ? Posix.openReadWrite(path.toString()) : data;
            this.punchHoles = kind == Kind.REGULAR && probePunchHole(data, Math.max(actual, this.size));
            this.zeroRange = kind == Kind.REGULAR;
            this.fd = data;
            this.bufferedFd = buffered;
            this.lock = locked;
        } catch (Posix.Failure | IOException | RuntimeException e) {
            if (created && locked != null) {
                deleteQuietly(path); // ours alone (created here, still locked): leave nothing behind
            }
            closeAll(data, buffered, locked);
            if (e instanceof IllegalArgumentException iae) {
                throw iae;
            }
            throw new IllegalArgumentException("namespace file " + path + " cannot be opened: " + e.getMessage(), e);
        }
    }

    /** Creates the file (O_EXCL): true if this call created it, false if someone else just did. */
    private static boolean create(Path path) throws Posix.Failure {
        try {
            Posix.close(Posix.open(path.toString(), Posix.O_RDWR | Posix.O_CLOEXEC | Posix.O_CREAT | Posix.O_EXCL, 0666));
            return true;
        } catch (Posix.Failure e) {
            if (e.errno == Posix.EEXIST) {
                return false;
            }
            throw e;
        }
    }

    private static int openData(Path path, boolean direct) throws Posix.Failure {
        try {
            return Posix.open(path.toString(), Posix.O_RDWR | Posix.O_CLOEXEC | (direct ? Posix.O_DIRECT : 0), 0);
        } catch (Posix.Failure e) {
            if (direct && e.errno == Posix.EINVAL) {
                throw new IllegalArgumentException("namespace file " + path + ": its file system refuses O_DIRECT"
                        + " (open failed with EINVAL); use it without ?direct=on");
            }
            throw e;
        }
    }

    /**
     * The O_DIRECT alignment: what the kernel reports ({@code statx} STATX_DIOALIGN, Linux 6.1: ext4, XFS, btrfs,
     * block devices), else for a block device its logical block size ({@code BLKSSZGET}), else 4096. Without a
     * report the requirement is the logical block size of the device under the file system, which is 512 or 4096
     * on every common device, so 4096 is always enough; {@code st_blksize} is the preferred I/O size, not the
     * requirement (it can be far larger on network and striped file systems) and would only bounce more pieces.
     * 0: the file reports that it cannot do direct I/O.
     */
    static int directAlignment(int fd, Kind kind) throws Posix.Failure {
        int reported = Posix.directIoAlignment(fd);
        if (reported >= 0) {
            return reported;
        }
        return kind == Kind.BLOCK_DEVICE ? (int) Posix.ioctlRead(fd, Posix.BLKSSZGET) : DEFAULT_ALIGNMENT;
    }

    private static int checkedAlignment(Path path, int alignment) {
        if (alignment == 0) {
            throw new IllegalArgumentException("namespace file " + path + ": its file system reports no direct I/O"
                    + " support for it (statx DIOALIGN 0); use it without ?direct=on");
        }
        if (Integer.bitCount(alignment) != 1 || alignment > MAX_ALIGNMENT) {
            throw new IllegalArgumentException("namespace file " + path + ": O_DIRECT alignment " + alignment
                    + " is not a power of two up to " + MAX_ALIGNMENT + "; use it without ?direct=on");
        }
        return alignment;
    }

    /** A punch past the end of the file (nothing there to lose): does the file system support hole punching? */
    private boolean probePunchHole(int data, long end) throws IOException {
        long beyond = (end + MAX_ALIGNMENT - 1) & -MAX_ALIGNMENT;
        int rc = fallocate.call(data, Posix.FALLOC_FL_PUNCH_HOLE | Posix.FALLOC_FL_KEEP_SIZE, beyond, MAX_ALIGNMENT);
        if (rc == 0) {
            return true;
        }
        if (rc == -Posix.EOPNOTSUPP) {
            return false;
        }
        throw Posix.ioError("fallocate(FALLOC_FL_PUNCH_HOLE) probe", rc);
    }

    /**
     * What the path is. Regular files and block devices hold data another opener could corrupt, so they are
     * locked; anything else (a character device such as {@code /dev/full}, used to test write errors) has no
     * content to protect, and locking it would make unrelated users of the same device conflict.
     */
    enum Kind { REGULAR, BLOCK_DEVICE, OTHER }

    /** {@code st_mode} file type bits ({@code <sys/stat.h>}). */
    private static final int S_IFMT = 0170000, S_IFBLK = 0060000;

    private static Kind kind(Path path) throws IOException {
        if (Files.isRegularFile(path)) {
            return Kind.REGULAR;
        }
        try {
            int mode = (Integer) Files.getAttribute(path, "unix:mode");
            return (mode & S_IFMT) == S_IFBLK ? Kind.BLOCK_DEVICE : Kind.OTHER;
        } catch (UnsupportedOperationException | IllegalArgumentException noUnixView) {
            return Kind.OTHER;
        }
    }

    /**
     * The namespace size for a file of {@code actual} bytes ({@code st_size}, or {@code BLKGETSIZE64} for a block
     * device). {@code requested <= 0}: the whole file. A regular file grows to a larger request; a block device
     * cannot, so it must already hold the namespace (else the guest would see I/O errors past its end); any
     * other file reports no size and is taken at its word.
     */
    static long namespaceSize(Path path, long requested, long actual, Kind kind) {
        if (requested <= 0) {
            if (actual <= 0) {
                throw new IllegalArgumentException("file " + path + " is empty; give a size");
            }
            return actual;
        }
        if (kind == Kind.BLOCK_DEVICE && actual < requested) {
            throw new IllegalArgumentException("namespace file " + path + " is a block device of " + actual
                    + " bytes, smaller than the namespace size " + requested + " (a device cannot grow)");
        }
        return requested;
    }

    private static void closeAll(int data, int buffered, ImageLock lock) {
        if (buffered >= 0 && buffered != data) {
            Posix.close(buffered);
        }
        if (data >= 0) {
            Posix.close(data);
        }
        if (lock != null) {
            lock.close();
        }
    }

    private static void deleteQuietly(Path path) {
        try {
            Files.deleteIfExists(path);
        } catch (IOException ignored) {
            // already failing with a better message
        }
    }

    @Override
    public long size() {
        return size;
    }

    /** The descriptor of this namespace's I/O (O_DIRECT if {@link #directAlignment()} is not 0), for io_uring. */
    int fd() {
        return fd;
    }

    /** The alignment O_DIRECT needs of file offsets, lengths and memory addresses; 0 when buffered. */
    int directAlignment() {
        return alignment;
    }

    /** True for a block device (BLKDISCARD / BLKZEROOUT instead of fallocate). */
    boolean blockDevice() {
        return kind == Kind.BLOCK_DEVICE;
    }

    private void checkOpen() throws IOException {
        if (!open) {
            throw new IOException("namespace file " + path + " is closed");
        }
    }

    /** The descriptor for the file range {@code [offset, offset + length)}: the buffered one if O_DIRECT cannot take it. */
    private int fdFor(long offset, long length) {
        return ((offset | length) & (alignment - 1)) == 0 ? fd : bufferedFd; // alignment 0: mask -1, fd == bufferedFd
    }

    /** True if {@code segment} must go through the bounce buffer: heap memory, or O_DIRECT with an unaligned address. */
    private boolean bounce(long offset, MemorySegment segment) {
        return !segment.isNative() || alignment != 0 && (segment.address() & (alignment - 1)) != 0
                && fdFor(offset, segment.byteSize()) == fd;
    }

    @Override
    public void read(long offset, MemorySegment dst) throws IOException {
        checkOpen();
        long length = dst.byteSize();
        if (!bounce(offset, dst)) {
            readFully(fdFor(offset, length), dst.address(), length, offset);
            return;
        }
        MemorySegment buffer = BOUNCE.get();
        for (long done = 0; done < length; ) {
            long n = Math.min(BOUNCE_SIZE, length - done); // the whole range is aligned, so is every chunk
            readFully(fdFor(offset + done, n), buffer.address(), n, offset + done);
            MemorySegment.copy(buffer, 0, dst, done, n);
            done += n;
        }
    }

    private void readFully(int from, long address, long length, long position) throws IOException {
        long done = 0;
        while (done < length) {
            long n = Posix.pread(from, address + done, length - done, position + done);
            if (n > 0) {
                done += n;
            } else if (n == 0) {
                // Past the end of a short file (or a character device): the rest reads as zeroes.
                MemorySegment.ofAddress(address + done).reinterpret(length - done).fill((byte) 0);
                return;
            } else if (n != -Posix.EINTR) {
                throw Posix.ioError("pread of " + path + " at " + (position + done), n);
            }
        }
    }

    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        checkOpen();
        long length = src.byteSize();
        if (!bounce(offset, src)) {
            writeFully(fdFor(offset, length), src.address(), length, offset);
            return;
        }
        MemorySegment buffer = BOUNCE.get();
        for (long done = 0; done < length; ) {
            long n = Math.min(BOUNCE_SIZE, length - done);
            MemorySegment.copy(src, done, buffer, 0, n);
            writeFully(fdFor(offset + done, n), buffer.address(), n, offset + done);
            done += n;
        }
    }

    private void writeFully(int to, long address, long length, long position) throws IOException {
        long done = 0;
        while (done < length) {
            long n = Posix.pwrite(to, address + done, length - done, position + done);
            if (n > 0) {
                done += n;
            } else if (n == 0) {
                throw new IOException("pwrite of " + path + " at " + (position + done) + " wrote nothing");
            } else if (n != -Posix.EINTR) {
                throw Posix.ioError("pwrite of " + path + " at " + (position + done), n);
            }
        }
    }

    /**
     * One {@code pwritev2(RWF_DSYNC)} of the whole vector where the kernel takes it, else (and for what a short
     * write left) plain writes then fdatasync ({@link DurableWrites}). Refused once a sync has failed. A failed
     * write is a failed sync, sticky (see the class comment): conservatively, since an RWF_DSYNC write's implicit
     * sync may have taken the only report of a lost write-back.
     */
    @Override
    public void writeDurable(long offset, IoVector data) throws IOException {
        checkOpen();
        sync.beforeDurableWrite();
        try {
            long done = durableWrites.write(fd, alignment, offset, data);
            if (done == data.bytes()) {
                return;
            }
            DurableWrites.writePlainly(this, offset, data, done);
        } catch (IOException e) {
            sync.failed(e);
            throw e;
        }
        sync();
    }

    /** False once the kernel refused RWF_DSYNC on this file: durable writes are then write + fdatasync. */
    boolean rwfDsync() {
        return durableWrites.dsyncSupported();
    }

    /** The durability state every path of this backend shares (counts, the sticky failure, fault injection). */
    SyncState durability() {
        return sync;
    }

    @Override
    public void flush() throws IOException {
        sync();
    }

    /**
     * fdatasync covers the whole file; a FUA write's range is durable with it (see the class comment: there is
     * no durable per-range sync; a durable write is one RWF_DSYNC write instead, {@link #writeDurable}).
     */
    @Override
    public void sync(long offset, long length) throws IOException {
        sync();
    }

    private void sync() throws IOException {
        checkOpen();
        sync.sync(fd);
    }

    @Override
    public boolean volatileWriteCache() {
        return true;
    }

    @Override
    public long syncs() {
        return sync.syncs();
    }

    @Override
    public long syncErrors() {
        return sync.errors();
    }

    @Override
    public boolean syncFailed() {
        return sync.failed();
    }

    /** FALLOC_FL_ZERO_RANGE on a file, BLKZEROOUT on a block device, written zeroes where neither works. */
    @Override
    public void writeZeroes(long offset, long length) throws IOException {
        checkOpen();
        if (kind == Kind.BLOCK_DEVICE) {
            int rc = Posix.blockRange(fd, Posix.BLKZEROOUT, offset, length);
            if (rc == 0) {
                return;
            }
            if (rc != -Posix.EOPNOTSUPP) {
                throw Posix.ioError("ioctl(BLKZEROOUT) of " + path + " at " + offset, rc);
            }
        } else if (kind == Kind.REGULAR && zeroRange) {
            int rc = fallocate.call(fd, Posix.FALLOC_FL_ZERO_RANGE | Posix.FALLOC_FL_KEEP_SIZE, offset, length);
            if (rc == 0) {
                return;
            }
            if (rc != -Posix.EOPNOTSUPP) {
                throw Posix.ioError("fallocate(FALLOC_FL_ZERO_RANGE) of " + path + " at " + offset, rc);
            }
            zeroRange = false; // e.g. tmpfs: not asked again
        }
        writeZeroesByWriting(offset, length);
    }

    private void writeZeroesByWriting(long offset, long length) throws IOException {
        for (long done = 0; done < length; ) {
            long n = Math.min(BOUNCE_SIZE, length - done);
            writeFully(fdFor(offset + done, n), ZEROES.address(), n, offset + done);
            done += n;
        }
    }

    /**
     * A hole punched in a file (reads zero: DLFEAT), BLKDISCARD on a block device (a hint whose result the device
     * decides, DLFEAT 000b); nothing on a file system without hole punching or a character device (NVMe 1.4 §6.7:
     * deallocate is a hint).
     */
    @Override
    public void deallocate(long offset, long length) throws IOException {
        checkOpen();
        if (kind == Kind.REGULAR && punchHoles) {
            if (!punchRefused) {
                int rc = fallocate.call(fd, Posix.FALLOC_FL_PUNCH_HOLE | Posix.FALLOC_FL_KEEP_SIZE, offset, length);
                if (rc == 0) {
                    return;
                }
                if (rc != -Posix.EOPNOTSUPP) {
                    throw Posix.ioError("fallocate(FALLOC_FL_PUNCH_HOLE) of " + path + " at " + offset, rc);
                }
                punchRefused = true;
            }
            writeZeroesByWriting(offset, length); // DLFEAT already promised zeroes: keep the promise
        } else if (kind == Kind.BLOCK_DEVICE) {
            int rc = Posix.blockRange(fd, Posix.BLKDISCARD, offset, length);
            if (rc != 0 && rc != -Posix.EOPNOTSUPP) { // EOPNOTSUPP: no discard on this device, the hint is dropped
                throw Posix.ioError("ioctl(BLKDISCARD) of " + path + " at " + offset, rc);
            }
        }
    }

    @Override
    public boolean deallocatedReadsZero() {
        return punchHoles;
    }

    @Override
    public String notResizable() {
        return kind == Kind.REGULAR ? null : "the size of " + path + " is the device's (not a regular file)";
    }

    /** ftruncate(2) of a regular file: a grow is a hole (reads zero), a shrink drops the data past the new end. */
    @Override
    public synchronized void resize(long newSize) throws IOException {
        checkOpen();
        try {
            Posix.ftruncate(kind == Kind.REGULAR ? fd : -1, newSize); // not regular (see notResizable): -1 fails, EBADF
        } catch (Posix.Failure e) {
            throw new IOException("namespace file " + path + " not resized to " + newSize + " bytes: " + e.getMessage());
        }
        size = newSize;
    }

    @Override
    public String describe() {
        return "file:" + path + ":" + size + (direct ? "?direct=on" : "");
    }

    /**
     * Idempotent: closing a descriptor number twice could close somebody else's. Later calls fail with an
     * {@link IOException}; the controller closes a backend only once its queue workers have stopped using it.
     */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            open = false;
            rings.closeAll();
            closeAll(fd, bufferedFd, lock);
        }
    }

    /** The descriptors of the queues' io_uring rings (guarded by this). */
    private final RingDescriptors rings = new RingDescriptors();

    /**
     * The asynchronous path for one queue worker. On the thread-pool engine the pool runs this backend's blocking
     * calls. On io_uring each worker gets a descriptor of its own, a new open file description of the same file
     * (opened through {@code /proc/self/fd}, so it is this inode even if the path was renamed or replaced since), with
     * the same O_DIRECT flag ({@link RingDescriptors}): Linux reports a write-back error once per open file description
     * ({@code file_check_and_advance_wb_err}), so with one shared description two queues' concurrent fsyncs could
     * see one EIO and one success for the same lost pages; with a description per worker each fsync that covers
     * lost pages fails, and the first failure is made sticky for the namespace ({@link SyncState}). Unaligned
     * O_DIRECT pieces, zeroing on block devices and heap memory in tests take this backend's synchronous path
     * ({@link UringFileIo}).
     */
    @Override
    public synchronized AsyncIo openAsync(IoEngine engine) {
        if (engine instanceof ThreadPoolEngine pool) {
            return pool.syncIo(this);
        }
        if (!(engine instanceof UringEngine ring) || closed) {
            return null;
        }
        try {
            return rings.open(ring, fd, alignment > 0, alignment, this, kind == Kind.BLOCK_DEVICE);
        } catch (Posix.Failure e) {
            LOG.log(System.Logger.Level.WARNING, "namespace file " + path + ": no descriptor for an io_uring queue ("
                    + e.getMessage() + "); that queue runs this namespace synchronously");
            return null;
        }
    }
}
