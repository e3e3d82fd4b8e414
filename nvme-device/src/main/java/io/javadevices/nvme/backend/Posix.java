package io.javadevices.nvme.backend;

import java.io.IOException;
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
 * The few libc calls the backends need (Linux, 64-bit: x86-64 and AArch64), through the FFM API: the nvme-device
 * module's only native boundary. Open/lock/map/size calls run at namespace open and close and throw a
 * {@link Failure}; the per-I/O calls ({@link #pread}, {@link #pwrite}, {@link #pwritevDsync}, {@link #fdatasync},
 * {@link #fallocate}, {@link #blockRange}, {@link #dontNeed}) take plain addresses and a per-thread scratch
 * segment, allocate nothing and return the result or a negated {@code errno}, as the kernel does. The
 * {@code errno} is captured by the linker ({@link Linker.Option#captureCallState}).
 */
final class Posix {
    static final int O_RDWR = 02, O_CLOEXEC = 02000000;
    static final int F_OFD_GETLK = 36, F_OFD_SETLK = 37;
    static final short F_RDLCK = 0, F_WRLCK = 1, F_UNLCK = 2;
    static final int PROT_READ = 1, PROT_WRITE = 2;
    static final int MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;
    static final int MADV_DONTNEED = 4;
    static final int EINTR = 4, EIO = 5, EAGAIN = 11, ENOMEM = 12, EACCES = 13, EINVAL = 22, EEXIST = 17, ENOSPC = 28, ENOSYS = 38, EOPNOTSUPP = 95;
    static final int O_CREAT = 0100, O_EXCL = 0200;
    /** O_DIRECT is one of the few open flags whose value differs between the two 64-bit ABIs. */
    static final int O_DIRECT = "aarch64".equals(System.getProperty("os.arch")) ? 0200000 : 040000;
    /** {@code <linux/falloc.h>}. */
    static final int FALLOC_FL_KEEP_SIZE = 0x01, FALLOC_FL_PUNCH_HOLE = 0x02, FALLOC_FL_ZERO_RANGE = 0x10;
    /** {@code pwritev2} flag: this write is durable when it returns, as if followed by fdatasync of its range. */
    static final int RWF_DSYNC = 0x02;
    /** {@code <linux/fs.h>} block device ioctls ({@code _IO(0x12, n)} / {@code _IOR(0x12, 114, size_t)}). */
    static final long BLKSSZGET = 0x1268, BLKDISCARD = 0x1277, BLKZEROOUT = 0x127f, BLKGETSIZE64 = 0x80081272L;
    private static final int AT_EMPTY_PATH = 0x1000, STATX_DIOALIGN = 0x2000;
    /** {@code struct statx} (the same on every architecture): stx_mask at 0, stx_dio_mem_align / offset_align at 152/156. */
    private static final long STATX_SIZE = 256, STX_MASK = 0, STX_DIO_MEM_ALIGN = 152, STX_DIO_OFFSET_ALIGN = 156;

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

    // The per-I/O calls: addresses as longs (no segment to wrap them), an errno slot in the caller's scratch.
    private static final MethodHandle PREAD = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("pread"),
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle PWRITE = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("pwrite"),
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle PWRITEV2 = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("pwritev2"),
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle FDATASYNC = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("fdatasync"),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle FALLOCATE = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("fallocate"),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle FTRUNCATE = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("ftruncate"),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG), CAPTURE_ERRNO);
    // ioctl(2) is variadic: the argument (a pointer for every request used here) is the first variadic one.
    private static final MethodHandle IOCTL = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("ioctl"),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle STATX = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("statx"),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS), CAPTURE_ERRNO);

    /**
     * Per-thread scratch of the per-I/O calls: the captured errno at 0, a {@code uint64_t[2]} range
     * (BLKDISCARD / BLKZEROOUT) at {@link #RANGE}. Each queue worker gets its own on first use;
     * {@link Arena#ofAuto()} frees it with the thread.
     */
    private static final long RANGE = 32, SCRATCH_SIZE = 48;
    private static final ThreadLocal<MemorySegment> SCRATCH = ThreadLocal.withInitial(
            () -> Arena.ofAuto().allocate(Math.max(SCRATCH_SIZE, CALL_STATE.byteSize()), 8));

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
            String name = name(errno);
            return name.isEmpty() ? "" : " (" + name + ")";
        }

        static String name(int errno) {
            return switch (errno) {
                case EINTR -> "EINTR";
                case EIO -> "EIO";
                case EAGAIN -> "EAGAIN";
                case ENOMEM -> "ENOMEM";
                case EACCES -> "EACCES";
                case EEXIST -> "EEXIST";
                case EINVAL -> "EINVAL";
                case ENOSPC -> "ENOSPC";
                case EOPNOTSUPP -> "EOPNOTSUPP";
                default -> "";
            };
        }
    }

    /** An I/O error for a per-I/O call's negated errno {@code result} (the error path only: it allocates). */
    static IOException ioError(String call, long result) {
        int errno = (int) -result;
        String name = Failure.name(errno);
        return new IOException(call + " failed: errno " + errno + (name.isEmpty() ? "" : " (" + name + ")"));
    }

    private static long result(long rc, MemorySegment state) {
        return rc < 0 ? -errno(state) : rc;
    }

    /** pread(2): bytes read (0 at the end of the file) or a negated errno. */
    static long pread(int fd, long address, long length, long offset) {
        MemorySegment state = SCRATCH.get();
        try {
            return result((long) PREAD.invokeExact(state, fd, address, length, offset), state);
        } catch (Throwable t) {
            throw new IllegalStateException("pread downcall", t);
        }
    }

    /** pwrite(2): bytes written or a negated errno. */
    static long pwrite(int fd, long address, long length, long offset) {
        MemorySegment state = SCRATCH.get();
        try {
            return result((long) PWRITE.invokeExact(state, fd, address, length, offset), state);
        } catch (Throwable t) {
            throw new IllegalStateException("pwrite downcall", t);
        }
    }

    /**
     * pwritev2(fd, iovecs, count, offset, RWF_DSYNC) (Linux 4.7): a write of {@code count} {@code struct iovec}s that
     * returns once it is on stable media, with the metadata needed to read it back: an fdatasync of just this
     * range, in the same call. Bytes written or a negated errno (EOPNOTSUPP: this file takes no RWF_ flags).
     */
    static long pwritevDsync(int fd, long iovecs, int count, long offset) {
        MemorySegment state = SCRATCH.get();
        try {
            return result((long) PWRITEV2.invokeExact(state, fd, iovecs, count, offset, RWF_DSYNC), state);
        } catch (Throwable t) {
            throw new IllegalStateException("pwritev2 downcall", t);
        }
    }

    /** fdatasync(2): 0 or a negated errno. */
    static int fdatasync(int fd) {
        MemorySegment state = SCRATCH.get();
        try {
            return (int) result((int) FDATASYNC.invokeExact(state, fd), state);
        } catch (Throwable t) {
            throw new IllegalStateException("fdatasync downcall", t);
        }
    }

    /** fallocate(2) with {@code mode} (FALLOC_FL_*): 0 or a negated errno (EOPNOTSUPP: the file system cannot). */
    static int fallocate(int fd, int mode, long offset, long length) {
        MemorySegment state = SCRATCH.get();
        try {
            return (int) result((int) FALLOCATE.invokeExact(state, fd, mode, offset, length), state);
        } catch (Throwable t) {
            throw new IllegalStateException("fallocate downcall", t);
        }
    }

    /** ioctl(fd, BLKDISCARD or BLKZEROOUT, {offset, length}): 0 or a negated errno. */
    static int blockRange(int fd, long request, long offset, long length) {
        MemorySegment state = SCRATCH.get();
        state.set(JAVA_LONG, RANGE, offset);
        state.set(JAVA_LONG, RANGE + 8, length);
        try {
            return (int) result((int) IOCTL.invokeExact(state, fd, request, state.address() + RANGE), state);
        } catch (Throwable t) {
            throw new IllegalStateException("ioctl downcall", t);
        }
    }

    /** open(path, flags, mode): a new file descriptor. */
    static int open(String path, int flags, int mode) throws Failure {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int fd = (int) OPEN.invokeExact(state, arena.allocateFrom(path), flags, mode);
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

    /** ftruncate(2): a regular file grows sparse (the new bytes are a hole that reads zero). */
    static void ftruncate(int fd, long length) throws Failure {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            if ((int) FTRUNCATE.invokeExact(state, fd, length) < 0) {
                throw new Failure("ftruncate(" + length + ")", errno(state));
            }
        } catch (Failure e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("ftruncate downcall", t);
        }
    }

    /** ioctl(fd, request, &value) for a request that fills a {@code uint64_t} (BLKGETSIZE64) or an int (BLKSSZGET). */
    static long ioctlRead(int fd, long request) throws Failure {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment value = arena.allocate(JAVA_LONG); // zeroed: an int request fills the low half
            if ((int) IOCTL.invokeExact(state, fd, request, value.address()) < 0) {
                throw new Failure("ioctl(0x" + Long.toHexString(request) + ")", errno(state));
            }
            return request == BLKSSZGET ? value.get(JAVA_INT, 0) : value.get(JAVA_LONG, 0);
        } catch (Failure e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("ioctl downcall", t);
        }
    }

    /**
     * The alignment O_DIRECT needs on {@code fd}, from statx(STATX_DIOALIGN) (Linux 6.1; file systems and block
     * devices that report it): the larger of the memory and the file-offset alignment; 0 when the file reports
     * that it cannot do direct I/O at all; -1 when the kernel or file system does not report it.
     */
    static int directIoAlignment(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment statx = arena.allocate(STATX_SIZE, 8);
            int rc = (int) STATX.invokeExact(state, fd, arena.allocateFrom(""), AT_EMPTY_PATH, STATX_DIOALIGN, statx);
            if (rc < 0 || (statx.get(JAVA_INT, STX_MASK) & STATX_DIOALIGN) == 0) {
                return -1;
            }
            return Math.max(statx.get(JAVA_INT, STX_DIO_MEM_ALIGN), statx.get(JAVA_INT, STX_DIO_OFFSET_ALIGN));
        } catch (Throwable t) {
            throw new IllegalStateException("statx downcall", t);
        }
    }

    private static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    /** open(path, O_RDWR | O_CLOEXEC): a file descriptor of its own (an open file description of its own). */
    static int openReadWrite(String path) throws Failure {
        return open(path, O_RDWR | O_CLOEXEC, 0);
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
