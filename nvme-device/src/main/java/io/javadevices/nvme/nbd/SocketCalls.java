package io.javadevices.nvme.nbd;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * The libc socket calls of the NBD client (Linux, 64-bit), through the FFM API: what {@link NbdSocket} needs and
 * {@code SocketChannel} cannot give without allocating (a gathering send straight from guest memory, non-blocking
 * per call). Every call takes plain addresses and a caller-owned {@code state} segment of at least
 * {@link #STATE_BYTES} for the captured {@code errno}, allocates nothing and returns the result or a negated
 * {@code errno}, as the kernel does.
 */
final class SocketCalls {
    static final int AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10;
    static final int SOCK_STREAM = 1, SOCK_CLOEXEC = 02000000, SOCK_NONBLOCK = 04000;
    static final int MSG_DONTWAIT = 0x40, MSG_NOSIGNAL = 0x4000;
    static final int SHUT_RDWR = 2;
    static final short POLLIN = 1, POLLOUT = 4;
    static final int F_GETFL = 3, F_SETFL = 4, O_NONBLOCK = 04000;
    static final int SOL_SOCKET = 1, SO_ERROR = 4, IPPROTO_TCP = 6, TCP_NODELAY = 1;
    static final int EINTR = 4, EAGAIN = 11, EINPROGRESS = 115;
    /** {@code struct msghdr} on LP64: name, namelen (+4), iov, iovlen, control, controllen, flags (+4). */
    static final long MSGHDR_BYTES = 56, MSG_IOV = 16, MSG_IOVLEN = 24;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");
    /** The errno slot's size, rounded up so that what a caller places after it stays 8-byte aligned. */
    static final long STATE_BYTES = (CALL_STATE.byteSize() + 7) & ~7L;

    private static MethodHandle handle(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        return LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow(name), descriptor, options);
    }

    private static final MethodHandle SOCKET = handle("socket",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle CONNECT = handle("connect",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle SENDMSG = handle("sendmsg",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle READ = handle("read",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle POLL = handle("poll",
            FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle SHUTDOWN = handle("shutdown",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle CLOSE = handle("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    // fcntl(2) is variadic in C: the flags argument is the first variadic one.
    private static final MethodHandle FCNTL = handle("fcntl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle SETSOCKOPT = handle("setsockopt",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle GETSOCKOPT = handle("getsockopt",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), CAPTURE_ERRNO);

    private SocketCalls() {
    }

    private static long result(long rc, MemorySegment state) {
        return rc < 0 ? -(int) ERRNO.get(state, 0L) : rc;
    }

    private static IllegalStateException downcall(String name, Throwable t) {
        return new IllegalStateException(name + " downcall", t);
    }

    static int socket(MemorySegment state, int family, int type) {
        try {
            return (int) result((int) SOCKET.invokeExact(state, family, type, 0), state);
        } catch (Throwable t) {
            throw downcall("socket", t);
        }
    }

    static int connect(MemorySegment state, int fd, long address, int length) {
        try {
            return (int) result((int) CONNECT.invokeExact(state, fd, address, length), state);
        } catch (Throwable t) {
            throw downcall("connect", t);
        }
    }

    /** sendmsg(2): bytes sent or a negated errno (-EAGAIN: the socket buffer is full, with MSG_DONTWAIT). */
    static long sendmsg(MemorySegment state, int fd, long msghdr, int flags) {
        try {
            return result((long) SENDMSG.invokeExact(state, fd, msghdr, flags), state);
        } catch (Throwable t) {
            throw downcall("sendmsg", t);
        }
    }

    /** read(2): bytes read, 0 at end of stream, or a negated errno. */
    static long read(MemorySegment state, int fd, long address, long length) {
        try {
            return result((long) READ.invokeExact(state, fd, address, length), state);
        } catch (Throwable t) {
            throw downcall("read", t);
        }
    }

    /** poll(2) on one {@code struct pollfd} at {@code pollfd}: 1, 0 on timeout, or a negated errno. */
    static int poll(MemorySegment state, long pollfd, int timeoutMillis) {
        try {
            return (int) result((int) POLL.invokeExact(state, pollfd, 1L, timeoutMillis), state);
        } catch (Throwable t) {
            throw downcall("poll", t);
        }
    }

    static int shutdown(MemorySegment state, int fd, int how) {
        try {
            return (int) result((int) SHUTDOWN.invokeExact(state, fd, how), state);
        } catch (Throwable t) {
            throw downcall("shutdown", t);
        }
    }

    static void close(int fd) {
        try {
            int ignored = (int) CLOSE.invokeExact(fd); // Linux releases the descriptor even when close fails
        } catch (Throwable t) {
            throw downcall("close", t);
        }
    }

    static int fcntl(MemorySegment state, int fd, int command, int argument) {
        try {
            return (int) result((int) FCNTL.invokeExact(state, fd, command, argument), state);
        } catch (Throwable t) {
            throw downcall("fcntl", t);
        }
    }

    static int setsockopt(MemorySegment state, int fd, int level, int name, long value, int length) {
        try {
            return (int) result((int) SETSOCKOPT.invokeExact(state, fd, level, name, value, length), state);
        } catch (Throwable t) {
            throw downcall("setsockopt", t);
        }
    }

    static int getsockopt(MemorySegment state, int fd, int level, int name, long value, long lengthAddress) {
        try {
            return (int) result((int) GETSOCKOPT.invokeExact(state, fd, level, name, value, lengthAddress), state);
        } catch (Throwable t) {
            throw downcall("getsockopt", t);
        }
    }

    /** {@code struct sockaddr_*}'s family field: native byte order, at offset 0. */
    static void family(MemorySegment address, int family) {
        address.set(JAVA_SHORT, 0, (short) family);
    }
}
