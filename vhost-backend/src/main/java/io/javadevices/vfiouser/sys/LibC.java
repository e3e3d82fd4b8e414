package io.javadevices.vfiouser.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static io.javadevices.vfiouser.sys.Native.*;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * The C library calls the vfio-user server needs for sockets with ancillary data, plain fds, mmap,
 * eventfd and memfd, bound once through the FFM API (no JNI) by {@link Native}; what a file is (identity,
 * filesystem, seals, owner) is {@link FileIdentity}. Each handle is a {@code static final} {@link MethodHandle} so the
 * JIT can inline the downcall; {@code errno} is captured with {@code Linker.Option.captureCallState}
 * into a per-thread segment (allocated once per thread, so calls do not allocate).
 *
 * <p>Failures throw {@link ErrnoException}; {@code EINTR} is retried where a retry is correct. Constants
 * are the Linux values for x86-64 and arm64 (LP64, generic ABI).
 *
 * <p><b>Threads.</b> All methods are thread-safe. {@link #writeNoErrno} is the interrupt path: it is
 * called by device worker threads and neither captures errno nor throws.
 */
public final class LibC {
    // socket(2), socket(7), unix(7)
    public static final int AF_UNIX = 1;
    public static final int SOCK_STREAM = 1;
    public static final int SOCK_NONBLOCK = 0x800;
    public static final int SOCK_CLOEXEC = 0x80000;
    public static final int SOL_SOCKET = 1;
    public static final int SCM_RIGHTS = 1;
    public static final int SO_PEERCRED = 17;
    public static final int SHUT_RDWR = 2;
    // recvmsg/sendmsg flags
    public static final int MSG_CTRUNC = 0x8;
    public static final int MSG_TRUNC = 0x20;
    public static final int MSG_DONTWAIT = 0x40;
    public static final int MSG_NOSIGNAL = 0x4000;
    public static final int MSG_CMSG_CLOEXEC = 0x40000000;
    // mmap(2)
    public static final int PROT_READ = 1;
    public static final int PROT_WRITE = 2;
    public static final int MAP_SHARED = 1;
    public static final int MAP_PRIVATE = 2;
    // eventfd(2), memfd_create(2)
    public static final int EFD_NONBLOCK = 0x800;
    public static final int EFD_CLOEXEC = 0x80000;
    public static final int MFD_CLOEXEC = 1;
    /** memfd_create(2): the memfd accepts F_ADD_SEALS. */
    public static final int MFD_ALLOW_SEALING = 2;
    // poll(2)
    public static final short POLLIN = 0x1;
    public static final short POLLERR = 0x8;
    public static final short POLLHUP = 0x10;
    public static final short POLLNVAL = 0x20;
    // lseek(2)
    public static final int SEEK_SET = 0;
    public static final int SEEK_CUR = 1;
    public static final int SEEK_END = 2;

    private static final MethodHandle SOCKET = downcall("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle BIND = downcall("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle LISTEN = downcall("listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle ACCEPT4 = downcall("accept4", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
    private static final MethodHandle CONNECT = downcall("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SHUTDOWN = downcall("shutdown", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle RECVMSG = downcall("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SENDMSG = downcall("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle GETSOCKOPT = downcall("getsockopt",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle READ = downcall("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle WRITE = downcall("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle WRITE_NO_ERRNO = LINKER.downcallHandle(
            symbol("write"),
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle CLOSE = downcall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle DUP = downcall("dup", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle DUP3 = downcall("dup3", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle DUP2 = downcall("dup2", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle MMAP = downcall("mmap",
            FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle MUNMAP = downcall("munmap", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle EVENTFD = downcall("eventfd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle MEMFD_CREATE = downcall("memfd_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle FTRUNCATE = downcall("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle LSEEK = downcall("lseek", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT));
    private static final MethodHandle FCHMOD = downcall("fchmod", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle CHMOD = downcall("chmod", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle POLL = downcall("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle SYSCONF = downcall("sysconf", FunctionDescriptor.of(JAVA_LONG, JAVA_INT));
    private static final int SC_PAGESIZE = 30;

    /** The host page size (sysconf(_SC_PAGESIZE)), 4096 on x86-64. */
    public static final long PAGE_SIZE = pageSize();

    private LibC() {
    }

    private static long pageSize() {
        try {
            long r = (long) SYSCONF.invokeExact(Arena.ofAuto().allocate(Linker.Option.captureStateLayout()), SC_PAGESIZE);
            return r > 0 ? r : 4096;
        } catch (Throwable t) {
            return 4096;
        }
    }

    // ------------------------------------------------------------------ sockets

    public static int socket(int domain, int type, int protocol) throws ErrnoException {
        MemorySegment st = state();
        int r;
        try {
            r = (int) SOCKET.invokeExact(st, domain, type, protocol);
        } catch (Throwable t) {
            throw linkage(t);
        }
        return checked("socket", r, st);
    }

    public static void bind(int fd, MemorySegment address, int length) throws ErrnoException {
        MemorySegment st = state();
        int r;
        try {
            r = (int) BIND.invokeExact(st, fd, address, length);
        } catch (Throwable t) {
            throw linkage(t);
        }
        checked("bind", r, st);
    }

    public static void listen(int fd, int backlog) throws ErrnoException {
        MemorySegment st = state();
        int r;
        try {
            r = (int) LISTEN.invokeExact(st, fd, backlog);
        } catch (Throwable t) {
            throw linkage(t);
        }
        checked("listen", r, st);
    }

    /** accept4 without peer address; retries EINTR. */
    public static int accept4(int fd, int flags) throws ErrnoException {
        MemorySegment st = state();
        while (true) {
            int r;
            try {
                r = (int) ACCEPT4.invokeExact(st, fd, MemorySegment.NULL, MemorySegment.NULL, flags);
            } catch (Throwable t) {
                throw linkage(t);
            }
            if (r >= 0) {
                return r;
            }
            int e = errno(st);
            if (e != Errno.EINTR) {
                throw new ErrnoException("accept4", e);
            }
        }
    }

    public static void connect(int fd, MemorySegment address, int length) throws ErrnoException {
        MemorySegment st = state();
        int r;
        try {
            r = (int) CONNECT.invokeExact(st, fd, address, length);
        } catch (Throwable t) {
            throw linkage(t);
        }
        checked("connect", r, st);
    }

    public static void shutdown(int fd, int how) throws ErrnoException {
        MemorySegment st = state();
        int r;
        try {
            r = (int) SHUTDOWN.invokeExact(st, fd, how);
        } catch (Throwable t) {
            throw linkage(t);
        }
        checked("shutdown", r, st);
    }

    /** recvmsg(2); retries EINTR; returns bytes received (0 = orderly EOF). */
    public static long recvmsg(int fd, MemorySegment msghdr, int flags) throws ErrnoException {
        MemorySegment st = state();
        while (true) {
            long r;
            try {
                r = (long) RECVMSG.invokeExact(st, fd, msghdr, flags);
            } catch (Throwable t) {
                throw linkage(t);
            }
            if (r >= 0) {
                return r;
            }
            int e = errno(st);
            if (e != Errno.EINTR) {
                throw new ErrnoException("recvmsg", e);
            }
        }
    }

    /** sendmsg(2); retries EINTR; returns bytes sent. */
    public static long sendmsg(int fd, MemorySegment msghdr, int flags) throws ErrnoException {
        MemorySegment st = state();
        while (true) {
            long r;
            try {
                r = (long) SENDMSG.invokeExact(st, fd, msghdr, flags);
            } catch (Throwable t) {
                throw linkage(t);
            }
            if (r >= 0) {
                return r;
            }
            int e = errno(st);
            if (e != Errno.EINTR) {
                throw new ErrnoException("sendmsg", e);
            }
        }
    }

    /** getsockopt(2) into {@code value}; {@code lengthInOut} holds a socklen_t. */
    public static void getsockopt(int fd, int level, int option, MemorySegment value, MemorySegment lengthInOut)
            throws ErrnoException {
        MemorySegment st = state();
        int r;
        try {
            r = (int) GETSOCKOPT.invokeExact(st, fd, level, option, value, lengthInOut);
        } catch (Throwable t) {
            throw linkage(t);
        }
        checked("getsockopt", r, st);
    }

    // ------------------------------------------------------------------ plain fds

    /** read(2); retries EINTR; returns bytes read (0 = EOF). */
    public static long read(int fd, MemorySegment buffer, long length) throws ErrnoException {
        MemorySegment st = state();
        while (true) {
            long r;
            try {
                r = (long) READ.invokeExact(st, fd, buffer, length);
            } catch (Throwable t) {
                throw linkage(t);
            }
            if (r >= 0) {
                return r;
            }
            int e = errno(st);
            if (e != Errno.EINTR) {
                throw new ErrnoException("read", e);
            }
        }
    }

    /** write(2); retries EINTR; returns bytes written. */
    public static long write(int fd, MemorySegment buffer, long length) throws ErrnoException {
        MemorySegment st = state();
        while (true) {
            long r;
            try {
                r = (long) WRITE.invokeExact(st, fd, buffer, length);
            } catch (Throwable t) {
                throw linkage(t);
            }
            if (r >= 0) {
                return r;
            }
            int e = errno(st);
            if (e != Errno.EINTR) {
                throw new ErrnoException("write", e);
            }
        }
    }

    /**
     * write(2) without errno capture and without throwing: the interrupt path (an 8-byte eventfd write
     * from a device worker thread). Returns the raw result; a negative value means it failed (for an
     * eventfd, EAGAIN means the counter is saturated, i.e. an interrupt is already pending).
     */
    public static long writeNoErrno(int fd, MemorySegment buffer, long length) {
        try {
            return (long) WRITE_NO_ERRNO.invokeExact(fd, buffer, length);
        } catch (Throwable t) {
            throw linkage(t);
        }
    }

    public static void close(int fd) throws ErrnoException {
        MemorySegment st = state();
        int r;
        try {
            r = (int) CLOSE.invokeExact(st, fd);
        } catch (Throwable t) {
            throw linkage(t);
        }
        // close(2): never retry on EINTR on Linux, the fd is gone either way.
        if (r < 0 && errno(st) != Errno.EINTR) {
            throw new ErrnoException("close", errno(st));
        }
    }

    /** Closes {@code fd} if it is not negative, ignoring errors. */
    public static void closeQuietly(int fd) {
        if (fd < 0) {
            return;
        }
        try {
            close(fd);
        } catch (ErrnoException ignored) {
            // nothing useful to do: the descriptor is released or was not ours
        }
    }

    public static int dup(int fd) throws ErrnoException {
        MemorySegment st = state();
        int r;
        try {
            r = (int) DUP.invokeExact(st, fd);
        } catch (Throwable t) {
            throw linkage(t);
        }
        return checked("dup", r, st);
    }

    /** dup2(2): atomically makes {@code newFd} refer to {@code oldFd}'s file (closing what it referred to). */
    public static void dup2(int oldFd, int newFd) throws ErrnoException {
        MemorySegment st = state();
        while (true) {
            int r;
            try {
                r = (int) DUP2.invokeExact(st, oldFd, newFd);
            } catch (Throwable t) {
                throw linkage(t);
            }
            if (r >= 0) {
                return;
            }
            int e = errno(st);
            if (e != Errno.EINTR && e != Errno.EBUSY) {
                throw new ErrnoException("dup2", e);
            }
        }
    }

    /** dup3(oldFd, newFd, FileIdentity.O_CLOEXEC): like {@link #dup2} but {@code newFd} stays close-on-exec; retries EINTR/EBUSY. */
    public static void dup3CloseOnExec(int oldFd, int newFd) throws ErrnoException {
        MemorySegment st = state();
        while (true) {
            int r;
            try {
                r = (int) DUP3.invokeExact(st, oldFd, newFd, FileIdentity.O_CLOEXEC);
            } catch (Throwable t) {
                throw linkage(t);
            }
            if (r >= 0) {
                return;
            }
            int e = errno(st);
            if (e != Errno.EINTR && e != Errno.EBUSY) {
                throw new ErrnoException("dup3", e);
            }
        }
    }

    public static long lseek(int fd, long offset, int whence) throws ErrnoException {
        MemorySegment st = state();
        long r;
        try {
            r = (long) LSEEK.invokeExact(st, fd, offset, whence);
        } catch (Throwable t) {
            throw linkage(t);
        }
        if (r < 0) {
            throw new ErrnoException("lseek", errno(st));
        }
        return r;
    }

    public static void ftruncate(int fd, long length) throws ErrnoException {
        MemorySegment st = state();
        int r;
        try {
            r = (int) FTRUNCATE.invokeExact(st, fd, length);
        } catch (Throwable t) {
            throw linkage(t);
        }
        checked("ftruncate", r, st);
    }

    public static void fchmod(int fd, int mode) throws ErrnoException {
        MemorySegment st = state();
        int r;
        try {
            r = (int) FCHMOD.invokeExact(st, fd, mode);
        } catch (Throwable t) {
            throw linkage(t);
        }
        checked("fchmod", r, st);
    }

    /** chmod(2) of a NUL-terminated path. */
    public static void chmod(MemorySegment path, int mode) throws ErrnoException {
        MemorySegment st = state();
        int r;
        try {
            r = (int) CHMOD.invokeExact(st, path, mode);
        } catch (Throwable t) {
            throw linkage(t);
        }
        checked("chmod", r, st);
    }

    /** poll(2) over {@code count} {@code struct pollfd}s; retries EINTR; returns the ready count. */
    public static int poll(MemorySegment pollfds, int count, int timeoutMillis) throws ErrnoException {
        MemorySegment st = state();
        while (true) {
            int r;
            try {
                r = (int) POLL.invokeExact(st, pollfds, (long) count, timeoutMillis);
            } catch (Throwable t) {
                throw linkage(t);
            }
            if (r >= 0) {
                return r;
            }
            int e = errno(st);
            if (e != Errno.EINTR) {
                throw new ErrnoException("poll", e);
            }
        }
    }

    // ------------------------------------------------------------------ memory, eventfd, memfd

    /** mmap(2); returns a zero-length segment at the mapping address (reinterpret it to use it). */
    public static MemorySegment mmap(long length, int prot, int flags, int fd, long offset) throws ErrnoException {
        MemorySegment st = state();
        MemorySegment r;
        try {
            r = (MemorySegment) MMAP.invokeExact(st, MemorySegment.NULL, length, prot, flags, fd, offset);
        } catch (Throwable t) {
            throw linkage(t);
        }
        if (r.address() == -1L) { // MAP_FAILED
            throw new ErrnoException("mmap", errno(st));
        }
        return r;
    }

    public static void munmap(long address, long length) throws ErrnoException {
        MemorySegment st = state();
        int r;
        try {
            r = (int) MUNMAP.invokeExact(st, MemorySegment.ofAddress(address), length);
        } catch (Throwable t) {
            throw linkage(t);
        }
        checked("munmap", r, st);
    }

    public static int eventfd(int initialValue, int flags) throws ErrnoException {
        MemorySegment st = state();
        int r;
        try {
            r = (int) EVENTFD.invokeExact(st, initialValue, flags);
        } catch (Throwable t) {
            throw linkage(t);
        }
        return checked("eventfd", r, st);
    }

    public static int memfdCreate(String name, int flags) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = state();
            MemorySegment cName = arena.allocateFrom(name);
            int r;
            try {
                r = (int) MEMFD_CREATE.invokeExact(st, cName, flags);
            } catch (Throwable t) {
                throw linkage(t);
            }
            return checked("memfd_create", r, st);
        }
    }

    // ------------------------------------------------------------------ fd status flags and non-blocking reads
    // fcntl(2) on the fds a client sends as interrupt eventfds: they must be non-blocking (see
    // io.javadevices.vfiouser.irq.ClientEventfd); FileIdentity's seal calls go through the same fcntl.

    public static final int F_GETFL = 3;
    public static final int F_SETFL = 4;
    /** O_NONBLOCK in fcntl(2) file status flags (the same bit as EFD_NONBLOCK and SOCK_NONBLOCK). */
    public static final int O_NONBLOCK = 0x800;

    /** fcntl is variadic: the third argument is passed as the first variadic one (int for F_SETFL). */
    private static final MethodHandle FCNTL = LINKER.downcallHandle(symbol("fcntl"),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT),
            CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));

    /** fcntl(2) with an int argument (0 for F_GETFL); retries EINTR; returns the call's result. */
    public static int fcntl(int fd, int cmd, int arg) throws ErrnoException {
        MemorySegment st = state();
        while (true) {
            int r;
            try {
                r = (int) FCNTL.invokeExact(st, fd, cmd, arg);
            } catch (Throwable t) {
                throw linkage(t);
            }
            if (r >= 0) {
                return r;
            }
            int e = errno(st);
            if (e != Errno.EINTR) {
                throw new ErrnoException("fcntl", e);
            }
        }
    }

    // preadv2(2) with RWF_NOWAIT: a read that never blocks whatever the file's O_NONBLOCK says. Used to
    // drain a client's eventfd, whose O_NONBLOCK the client can clear at any moment (the open file
    // description is shared); eventfd reads are read_iter and honour IOCB_NOWAIT (fs/eventfd.c
    // eventfd_read) since Linux 5.12, older kernels fail with EOPNOTSUPP.

    /** preadv2(2) flag: fail with EAGAIN instead of waiting. */
    public static final int RWF_NOWAIT = 0x8;
    private static final MethodHandle PREADV2 = downcall("preadv2",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_INT));

    /**
     * {@code preadv2(fd, {buffer, length}, 1, -1, RWF_NOWAIT)}: reads at the current position without
     * waiting; retries EINTR. Allocates the iovec per call (not for hot paths).
     *
     * @return bytes read
     * @throws ErrnoException EAGAIN if nothing is available, EOPNOTSUPP if the file cannot read without waiting
     */
    public static long readNoWait(int fd, MemorySegment buffer, long length) throws ErrnoException {
        MemorySegment st = state();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment iovec = arena.allocate(16, 8);
            iovec.set(ADDRESS, 0, buffer);
            iovec.set(JAVA_LONG, 8, length);
            while (true) {
                long r;
                try {
                    r = (long) PREADV2.invokeExact(st, fd, iovec, 1, -1L, RWF_NOWAIT);
                } catch (Throwable t) {
                    throw linkage(t);
                }
                if (r >= 0) {
                    return r;
                }
                int e = errno(st);
                if (e != Errno.EINTR) {
                    throw new ErrnoException("preadv2", e);
                }
            }
        }
    }
}
