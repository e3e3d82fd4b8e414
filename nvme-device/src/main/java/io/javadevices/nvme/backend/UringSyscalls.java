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

/**
 * The libc calls io_uring needs (Linux, 64-bit), through the FFM API: {@code syscall(2)} for
 * {@code io_uring_setup} and {@code io_uring_enter} (glibc has no wrappers for them), {@code mmap} of the rings,
 * and the eventfd that wakes a waiting worker. Kept apart from {@link Posix} (open/lock/map of the backends) so
 * that the io_uring engine is one self-contained piece.
 *
 * <p>Calls on the I/O path ({@link #enter}, {@link #write}) take plain addresses and a preallocated errno
 * capture segment, so they allocate nothing. {@code syscall} is variadic in C: every argument after the number
 * is passed as a 64-bit {@code long} ({@link Linker.Option#firstVariadicArg}), which is what the kernel reads
 * from the registers, so no upper half is left undefined.
 */
final class UringSyscalls {
    /**
     * {@code arch/x86/entry/syscalls/syscall_64.tbl}; the same numbers in {@code include/uapi/asm-generic/unistd.h}
     * (arm64, riscv): io_uring came after the architectures' tables were aligned.
     */
    static final long SYS_IO_URING_SETUP = 425, SYS_IO_URING_ENTER = 426, SYS_IO_URING_REGISTER = 427;
    /** io_uring_register opcode: signal an eventfd for every CQE posted. */
    static final int IORING_REGISTER_EVENTFD = 4;

    static final int EPERM = 1, EINTR = 4, EIO = 5, EAGAIN = 11, ENOMEM = 12, EFAULT = 14, EBUSY = 16,
            ENFILE = 23, EMFILE = 24, EINVAL = 22, ENOSYS = 38, ETIME = 62, EOPNOTSUPP = 95, ECANCELED = 125;

    static final int PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 0x01, MAP_POPULATE = 0x8000;
    static final int EFD_CLOEXEC = 02000000;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    private static final MethodHandle SYSCALL3 = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("syscall"),
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG), CAPTURE_ERRNO,
            Linker.Option.firstVariadicArg(1));
    private static final MethodHandle SYSCALL7 = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("syscall"),
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG),
            CAPTURE_ERRNO, Linker.Option.firstVariadicArg(1));
    private static final MethodHandle MMAP = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("mmap"),
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle EVENTFD = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("eventfd"),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle WRITE = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("write"),
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle OPEN = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("open"),
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));

    private UringSyscalls() {
    }

    /** A segment to capture errno into, for {@link #enter}: allocate one per ring, reuse it for every call. */
    static MemorySegment callState(Arena arena) {
        return arena.allocate(CALL_STATE);
    }

    static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    /** {@code io_uring_setup(entries, params)}: the ring's fd, or a negated errno. */
    static int setup(int entries, MemorySegment params, MemorySegment state) {
        try {
            long rc = (long) SYSCALL3.invokeExact(state, SYS_IO_URING_SETUP, (long) entries, params.address());
            return rc < 0 ? -errno(state) : (int) rc;
        } catch (Throwable t) {
            throw new IllegalStateException("io_uring_setup downcall", t);
        }
    }

    /**
     * {@code io_uring_enter(fd, toSubmit, minComplete, flags, arg, argSize)}: SQEs consumed, or a negated errno
     * ({@code -ETIME} when a bounded wait timed out, {@code -EINTR} when a signal cut it short).
     */
    static int enter(int fd, int toSubmit, int minComplete, int flags, long arg, long argSize, MemorySegment state) {
        try {
            long rc = (long) SYSCALL7.invokeExact(state, SYS_IO_URING_ENTER, (long) fd, (long) toSubmit,
                    (long) minComplete, (long) flags, arg, argSize);
            return rc < 0 ? -errno(state) : (int) rc;
        } catch (Throwable t) {
            throw new IllegalStateException("io_uring_enter downcall", t);
        }
    }

    /** {@code io_uring_register(fd, opcode, arg, nrArgs)}: 0 or more, or a negated errno. */
    static int register(int fd, int opcode, long arg, int nrArgs, MemorySegment state) {
        try {
            long rc = (long) SYSCALL7.invokeExact(state, SYS_IO_URING_REGISTER, (long) fd, (long) opcode, arg,
                    (long) nrArgs, 0L, 0L);
            return rc < 0 ? -errno(state) : (int) rc;
        } catch (Throwable t) {
            throw new IllegalStateException("io_uring_register downcall", t);
        }
    }

    /** {@code mmap(NULL, length, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_POPULATE, fd, offset)}; -errno on failure. */
    static long mapShared(int fd, long length, long offset, MemorySegment state) {
        try {
            long address = (long) MMAP.invokeExact(state, 0L, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                    fd, offset);
            return address == -1L ? -errno(state) : address; // MAP_FAILED
        } catch (Throwable t) {
            throw new IllegalStateException("mmap downcall", t);
        }
    }

    /** The calls the backends already bind ({@link Posix}), not bound twice. */
    static void unmap(long address, long length) {
        Posix.unmap(address, length);
    }

    static void close(int fd) {
        Posix.close(fd);
    }

    /**
     * {@code eventfd(0, EFD_CLOEXEC)}, blocking on purpose: io_uring arms a poll on a read that cannot complete yet,
     * whereas on an {@code O_NONBLOCK} file it would complete the read at once with {@code -EAGAIN}.
     */
    static int eventfd(MemorySegment state) {
        try {
            int fd = (int) EVENTFD.invokeExact(state, 0, EFD_CLOEXEC);
            return fd < 0 ? -errno(state) : fd;
        } catch (Throwable t) {
            throw new IllegalStateException("eventfd downcall", t);
        }
    }

    /** {@code write(fd, address, length)}: bytes written or -1. */
    static long write(int fd, long address, long length) {
        try {
            return (long) WRITE.invokeExact(fd, address, length);
        } catch (Throwable t) {
            throw new IllegalStateException("write downcall", t);
        }
    }

    /** {@code open(path, flags, 0644)}: an fd or a negated errno (tests and benchmarks open their files with it). */
    static int open(String path, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int fd = (int) OPEN.invokeExact(state, arena.allocateFrom(path), flags, 0644);
            return fd < 0 ? -errno(state) : fd;
        } catch (Throwable t) {
            throw new IllegalStateException("open downcall", t);
        }
    }

    /** A short name for an errno in messages. */
    static String name(int errno) {
        return switch (errno) {
            case EPERM -> "EPERM";
            case EINTR -> "EINTR";
            case EIO -> "EIO";
            case EAGAIN -> "EAGAIN";
            case ENOMEM -> "ENOMEM";
            case EFAULT -> "EFAULT";
            case EBUSY -> "EBUSY";
            case EINVAL -> "EINVAL";
            case ENFILE -> "ENFILE";
            case EMFILE -> "EMFILE";
            case ENOSYS -> "ENOSYS";
            case EOPNOTSUPP -> "EOPNOTSUPP";
            default -> "errno " + errno;
        };
    }
}
