package io.javadevices.nvme.backend;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A regular file or block device through a {@link FileChannel} with positional reads and writes (safe
 * from many threads at once). Flush is {@code force(true)}. The size comes from the option or the file;
 * for block devices (whose {@code st_size} is 0) from {@code /sys/class/block/NAME/size}.
 * Deallocate is a no-op (Java has no portable hole punching), so DLFEAT advertises nothing.
 *
 * <p>Never interrupt a thread that uses it: an interrupt closes a FileChannel.
 */
public final class FileBackend implements BlockBackend {
    private static final ThreadLocal<ByteBuffer> BOUNCE = ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(1 << 20));
    private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(1 << 20).asReadOnlyBuffer();

    private final Path path;
    private final FileChannel channel;
    private final long size;

    /**
     * Opens (creating it if {@code size > 0} and it does not exist) the file. {@code size <= 0}: use the
     * file's size. Failures are {@link IllegalArgumentException}s naming the path.
     */
    public FileBackend(Path path, long size) {
        this.path = path;
        try {
            boolean exists = Files.exists(path);
            if (!exists && size <= 0) {
                throw new IllegalArgumentException("file " + path + " does not exist and no size given");
            }
            channel = exists
                    ? FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)
                    : FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE, StandardOpenOption.CREATE);
            long actual = channel.size();
            if (actual == 0 && path.toString().startsWith("/dev/")) {
                actual = blockDeviceSize(path);
            }
            if (size <= 0) {
                size = actual;
            } else if (actual < size && Files.isRegularFile(path)) {
                // Grow sparse: write one byte at the end.
                channel.write(ByteBuffer.wrap(new byte[1]), size - 1);
            }
            if (size <= 0) {
                channel.close();
                throw new IllegalArgumentException("file " + path + " is empty; give a size");
            }
            this.size = size;
        } catch (IOException e) {
            // A bad option value from the plugin's point of view (PciDevicePlugin.create contract).
            throw new IllegalArgumentException("namespace file " + path + " cannot be opened: " + e, e);
        }
    }

    private static long blockDeviceSize(Path device) {
        try {
            Path sys = Path.of("/sys/class/block", device.getFileName().toString(), "size");
            return Long.parseLong(Files.readString(sys).trim()) * 512;
        } catch (IOException | NumberFormatException e) {
            return 0;
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
        channel.force(true);
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
    }
}
