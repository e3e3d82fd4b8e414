package io.javadevices.nvme.backend;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * The few libc calls the backends need (Linux, 64-bit), through the FFM API: the nvme-device module's only
 * native boundary. Open/lock/map calls run at namespace open and close, never per I/O; {@link #dontNeed} (a
 * whole-chunk deallocate of a {@code ram:} namespace) takes plain addresses so that it allocates nothing.
 * Failures carry the {@code errno} captured by the linker ({@link Linker.Option#captureCallState}).
 */
final class Posix {
    static final int O_RDWR = 02, O_CLOEXEC = 02000000;
    static final int F_OFD_GETLK = 36, F_OFD_SETLK = 37;
    static final short F_RDLCK = 0, F_WRLCK = 1, F_UNLCK = 2;
    static final int PROT_READ = 1, PROT_WRITE = 2;
    static final int MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;
    static final int MADV_DONTNEED = 4;
    static final int EAGAIN = 11, ENOMEM = 12, EACCES = 13, EINVAL = 22;

    /** {@code struct flock} of {@code <asm-generic/fcntl.h>} on LP64: l_type, l_whence, l_start, l_len, l_pid. */
    static final StructLayout FLOCK = MemoryLayout.structLayout(
            JAVA_SHORT.withName("l_type"), JAVA_SHORT.withName("l_whence"), MemoryLayout.paddingLayout(4),
            JAVA_LONG.withName("l_start"), JAVA_LONG.withName("l_len"), JAVA_INT.withName("l_pid"),
            MemoryLayout.paddingLayout(4));
    private static final long L_TYPE = 0, L_START = 8, L_LEN = 16;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    // open(2) and fcntl(2) are variadic in C: the mode / the struct flock pointer is the first variadic argument.
    private static final MethodHandle OPEN = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("open"),
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOSE = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("close"),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle FCNTL = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("fcntl"),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS), CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle MMAP = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("mmap"),
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle MUNMAP = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("munmap"),
            FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle MADVISE = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("madvise"),
            FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT));

    private Posix() {
    }

    /** A failed call: the function and its errno. */
    static final class Failure extends Exception {
        final int errno;

        Failure(String call, int errno) {
            super(call + " failed: errno " + errno + describe(errno));
            this.errno = errno;
        }

        private static String describe(int errno) {
            return switch (errno) {
                case EAGAIN -> " (EAGAIN)";
                case ENOMEM -> " (ENOMEM)";
                case EACCES -> " (EACCES)";
                case EINVAL -> " (EINVAL)";
                default -> "";
            };
        }
    }

    private static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    /** open(path, O_RDWR | O_CLOEXEC): a file descriptor of its own (an open file description of its own). */
    static int openReadWrite(String path) throws Failure {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int fd = (int) OPEN.invokeExact(state, arena.allocateFrom(path), O_RDWR | O_CLOEXEC, 0);
            if (fd < 0) {
                throw new Failure("open(" + path + ")", errno(state));
            }
            return fd;
        } catch (Failure e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("open downcall", t);
        }
    }

    static void close(int fd) {
        try {
            int ignored = (int) CLOSE.invokeExact(fd);
        } catch (Throwable t) {
            throw new IllegalStateException("close downcall", t);
        }
    }

    /**
     * fcntl(F_OFD_SETLK) of {@code type} (F_RDLCK / F_WRLCK / F_UNLCK) on {@code [start, start + length)};
     * never waits: a conflicting lock of another open file description fails with EAGAIN (or EACCES).
     */
    static void ofdSetLock(int fd, short type, long start, long length) throws Failure {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment lock = flock(arena, type, start, length);
            int rc = (int) FCNTL.invokeExact(state, fd, F_OFD_SETLK, lock);
            if (rc < 0) {
                throw new Failure("fcntl(F_OFD_SETLK, byte " + start + ")", errno(state));
            }
        } catch (Failure e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("fcntl downcall", t);
        }
    }

    /**
     * fcntl(F_OFD_GETLK): true if another open file description holds a lock that conflicts with a
     * {@code type} lock on {@code [start, start + length)} (the test QEMU's {@code qemu_lock_fd_test} makes).
     */
    static boolean ofdConflicts(int fd, short type, long start, long length) throws Failure {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment lock = flock(arena, type, start, length);
            int rc = (int) FCNTL.invokeExact(state, fd, F_OFD_GETLK, lock);
            if (rc < 0) {
                throw new Failure("fcntl(F_OFD_GETLK, byte " + start + ")", errno(state));
            }
            return lock.get(JAVA_SHORT, L_TYPE) != F_UNLCK;
        } catch (Failure e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("fcntl downcall", t);
        }
    }

    private static MemorySegment flock(Arena arena, short type, long start, long length) {
        MemorySegment lock = arena.allocate(FLOCK); // zeroed: l_whence = SEEK_SET, l_pid = 0 (required for OFD locks)
        lock.set(JAVA_SHORT, L_TYPE, type);
        lock.set(JAVA_LONG, L_START, start);
        lock.set(JAVA_LONG, L_LEN, length);
        return lock;
    }

    /** mmap(NULL, length, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0): its address. */
    static long mapAnonymous(long length) throws Failure {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            long address = (long) MMAP.invokeExact(state, 0L, length, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0L);
            if (address == -1L) { // MAP_FAILED
                throw new Failure("mmap(" + length + " bytes)", errno(state));
            }
            return address;
        } catch (Failure e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("mmap downcall", t);
        }
    }

    static void unmap(long address, long length) {
        try {
            int ignored = (int) MUNMAP.invokeExact(address, length);
        } catch (Throwable t) {
            throw new IllegalStateException("munmap downcall", t);
        }
    }

    /** madvise(address, length, MADV_DONTNEED): a private anonymous range gives its pages back and reads zero. */
    static void dontNeed(long address, long length) {
        try {
            int ignored = (int) MADVISE.invokeExact(address, length, MADV_DONTNEED);
        } catch (Throwable t) {
            throw new IllegalStateException("madvise downcall", t);
        }
    }
}
