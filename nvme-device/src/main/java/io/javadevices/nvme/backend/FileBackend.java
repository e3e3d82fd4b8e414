package io.javadevices.nvme.backend;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.LongAdder;

/**
 * A regular file or block device through a {@link FileChannel} with positional reads and writes (safe
 * from many threads at once). Deallocate is a no-op (Java has no portable hole punching), so DLFEAT
 * advertises nothing.
 *
 * <p><b>Durability.</b> Writes land in the host's page cache: that is the volatile write cache the
 * controller advertises (Identify VWC). Flush, a FUA write and any write while the guest has the cache
 * disabled call {@link #sync}: {@code FileChannel.force(false)}, i.e. {@code fdatasync(2)}, which writes back
 * the file's dirty pages and the metadata needed to read them (its size) and flushes the device cache, as
 * QEMU's {@code handle_aiocb_flush} does. There is no per-range variant: {@code sync_file_range(2)} writes
 * back without flushing the disk cache or metadata, so it is not a durability point. The first failed
 * {@code fdatasync} is sticky: Linux marks the pages it could not write clean (the errseq error is reported
 * once per descriptor), so a later {@code fdatasync} would succeed while the data is gone (PostgreSQL's
 * "fsyncgate"). Every later sync therefore fails with that first error until the namespace is opened again
 * (server restart), exactly as QEMU's file-posix keeps {@code page_cache_inconsistent}.
 *
 * <p><b>Exclusive use.</b> A regular file or block device is locked at open with QEMU's OFD lock bytes
 * ({@link ImageLock}): a second server, or a QEMU writer, on the same image is refused. A block device must
 * be at least the namespace size ({@code FileChannel.size()} is {@code BLKGETSIZE64} for a block device on
 * Linux).
 *
 * <p>Never interrupt a thread that uses it: an interrupt closes a FileChannel.
 */
public final class FileBackend implements BlockBackend {
    private static final System.Logger LOG = System.getLogger(FileBackend.class.getName());
    private static final ThreadLocal<ByteBuffer> BOUNCE = ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(1 << 20));
    private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(1 << 20).asReadOnlyBuffer();

    private final Path path;
    private final FileChannel channel;
    private final ImageLock lock;
    private final long size;
    private final LongAdder syncs = new LongAdder();
    private final LongAdder syncErrors = new LongAdder();
    private final Object syncLock = new Object();
    /** The first fdatasync failure; once set, every sync fails with it (sticky, see the class comment). */
    private volatile IOException syncFailure;
    /** Fault injection for tests: the next sync fails with this instead of calling fdatasync. */
    private volatile IOException injectedSyncFailure;

    /**
     * Opens (creating it if {@code size > 0} and it does not exist) and locks the file. {@code size <= 0}: use
     * the file's size. Failures are {@link IllegalArgumentException}s naming the path.
     */
    public FileBackend(Path path, long size) {
        this.path = path;
        FileChannel opened = null;
        ImageLock locked = null;
        try {
            boolean exists = Files.exists(path);
            if (!exists && size <= 0) {
                throw new IllegalArgumentException("file " + path + " does not exist and no size given");
            }
            opened = exists
                    ? FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)
                    : FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE, StandardOpenOption.CREATE);
            Kind kind = kind(path);
            if (kind != Kind.OTHER) {
                locked = ImageLock.acquire(path); // before anything writes: a second opener must not even grow it
            }
            this.size = namespaceSize(path, size, opened.size(), kind);
            if (kind == Kind.REGULAR && opened.size() < this.size) {
                // Grow sparse: write one byte at the end.
                opened.write(ByteBuffer.wrap(new byte[1]), this.size - 1);
            }
            this.channel = opened;
            this.lock = locked;
        } catch (IOException | RuntimeException e) {
            closeQuietly(opened, locked);
            if (e instanceof IllegalArgumentException iae) {
                throw iae;
            }
            // A bad option value from the plugin's point of view (PciDevicePlugin.create contract).
            throw new IllegalArgumentException("namespace file " + path + " cannot be opened: " + e, e);
        }
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
     * The namespace size for a file of {@code actual} bytes ({@code FileChannel.size()}: {@code st_size}, or
     * {@code BLKGETSIZE64} for a block device: the JDK's {@code size0} asks the ioctl when {@code S_ISBLK}).
     * {@code requested <= 0}: the whole file. A regular file grows to a larger request; a block device
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

    private static void closeQuietly(FileChannel channel, ImageLock lock) {
        try {
            if (channel != null) {
                channel.close();
            }
        } catch (IOException ignored) {
            // already failing
        }
        if (lock != null) {
            lock.close();
        }
    }

    @Override
    public long size() {
        return size;
    }

    private static ByteBuffer direct(MemorySegment segment) {
        try {
            return segment.asByteBuffer();
        } catch (UnsupportedOperationException notByteArrayBacked) {
            return null;
        }
    }

    @Override
    public void read(long offset, MemorySegment dst) throws IOException {
        ByteBuffer buffer = direct(dst);
        if (buffer != null) {
            readFully(buffer, offset);
            return;
        }
        ByteBuffer bounce = BOUNCE.get();
        long done = 0;
        while (done < dst.byteSize()) {
            int n = (int) Math.min(bounce.capacity(), dst.byteSize() - done);
            bounce.clear().limit(n);
            readFully(bounce, offset + done);
            MemorySegment.copy(MemorySegment.ofBuffer(bounce.flip()), 0, dst, done, n);
            done += n;
        }
    }

    private void readFully(ByteBuffer buffer, long position) throws IOException {
        while (buffer.hasRemaining()) {
            int n = channel.read(buffer, position);
            if (n < 0) {
                // Past the end of a short file: the rest reads as zeroes.
                while (buffer.hasRemaining()) {
                    buffer.put((byte) 0);
                }
                return;
            }
            position += n;
        }
    }

    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        ByteBuffer buffer = direct(src);
        if (buffer != null) {
            writeFully(buffer, offset);
            return;
        }
        ByteBuffer bounce = BOUNCE.get();
        long done = 0;
        while (done < src.byteSize()) {
            int n = (int) Math.min(bounce.capacity(), src.byteSize() - done);
            bounce.clear();
            MemorySegment.copy(src, done, MemorySegment.ofBuffer(bounce), 0, n);
            bounce.limit(n);
            writeFully(bounce, offset + done);
            done += n;
        }
    }

    private void writeFully(ByteBuffer buffer, long position) throws IOException {
        while (buffer.hasRemaining()) {
            position += channel.write(buffer, position);
        }
    }

    @Override
    public void flush() throws IOException {
        sync();
    }

    /** fdatasync covers the whole file; a FUA write's range is durable with it (see the class comment). */
    @Override
    public void sync(long offset, long length) throws IOException {
        sync();
    }

    /**
     * One fdatasync at a time per namespace, like QEMU's {@code bdrv_co_flush} queue: Linux reports a write-back
     * error once per open file, so a sync overlapping a failing one could return success for pages that were
     * just lost. Only Flush, FUA and write-through writes come here; cached writes never take this lock.
     */
    private void sync() throws IOException {
        synchronized (syncLock) {
            if (syncFailure == null) {
                try {
                    IOException injected = injectedSyncFailure;
                    if (injected != null) {
                        injectedSyncFailure = null;
                        throw injected;
                    }
                    channel.force(false);
                    syncs.increment();
                    return;
                } catch (IOException e) {
                    syncFailure = e;
                    // Logged once: every later sync fails with this same error, silently.
                    LOG.log(System.Logger.Level.ERROR, "fdatasync of " + path + " failed: " + e
                            + "; writes since the last good sync may be lost, so every Flush and FUA write on this"
                            + " namespace fails from now on until it is opened again");
                }
            }
            syncErrors.increment();
            throw syncFailure;
        }
    }

    /** Test hook: the next sync fails with {@code failure} as if fdatasync had returned it (e.g. EIO). */
    void failNextSync(IOException failure) {
        injectedSyncFailure = failure;
    }

    @Override
    public boolean volatileWriteCache() {
        return true;
    }

    @Override
    public long syncs() {
        return syncs.sum();
    }

    @Override
    public long syncErrors() {
        return syncErrors.sum();
    }

    @Override
    public boolean syncFailed() {
        return syncFailure != null;
    }

    @Override
    public void writeZeroes(long offset, long length) throws IOException {
        long done = 0;
        while (done < length) {
            int n = (int) Math.min(ZEROES.capacity(), length - done);
            writeFully(ZEROES.duplicate().limit(n), offset + done);
            done += n;
        }
    }

    @Override
    public void deallocate(long offset, long length) {
        // Advisory only (NVMe 1.4 §6.7: deallocate is a hint); no data change.
    }

    @Override
    public boolean deallocatedReadsZero() {
        return false;
    }

    @Override
    public String describe() {
        return "file:" + path + ":" + size;
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing: nothing useful to do
        }
        if (lock != null) {
            lock.close();
        }
    }
}
