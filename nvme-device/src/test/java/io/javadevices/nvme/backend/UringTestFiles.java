package io.javadevices.nvme.backend;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/** Raw file descriptors and odd memory for the io_uring tests and the benchmark (test code only). */
public final class UringTestFiles {
    public static final int O_RDWR = 02, O_CREAT = 0100, O_DIRECT = 040000, O_CLOEXEC = 02000000;
    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle PREAD = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("pread"),
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle MMAP = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("mmap"),
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));

    private UringTestFiles() {
    }

    /** A directory on the build's file system (not a tmpfs /tmp: O_DIRECT needs a real one). */
    public static Path directory() throws IOException {
        Path dir = Path.of("target", "uring-tests").toAbsolutePath();
        Files.createDirectories(dir);
        return Files.createTempDirectory(dir, "t");
    }

    /** open(path, O_RDWR|O_CLOEXEC [|O_DIRECT]): the fd, or a negated errno. */
    public static int open(Path path, boolean direct) {
        return UringSyscalls.open(path.toString(), O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0));
    }

    public static void close(int fd) {
        UringSyscalls.close(fd);
    }

    /** pread(2) into native memory: bytes read or -1. */
    public static long pread(int fd, MemorySegment dst, long offset) {
        try {
            return (long) PREAD.invokeExact(fd, dst.address(), dst.byteSize(), offset);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** A private anonymous page mapped PROT_READ only: the kernel cannot write a read into it. Never unmapped. */
    public static MemorySegment readOnlyPage() {
        try {
            long address = (long) MMAP.invokeExact(0L, 4096L, UringSyscalls.PROT_READ, 0x02 | 0x20, -1, 0L);
            if (address == -1L) {
                throw new IllegalStateException("mmap failed");
            }
            return MemorySegment.ofAddress(address).reinterpret(4096);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** {@code st_blocks} (512-byte units) of a file, by stat(1). */
    public static long allocatedBlocks(Path path) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("stat", "-c", "%b", path.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim();
        if (p.waitFor() != 0) {
            throw new IOException("stat: " + out);
        }
        return Long.parseLong(out);
    }
}
