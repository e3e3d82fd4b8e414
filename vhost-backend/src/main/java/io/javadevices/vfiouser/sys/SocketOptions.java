package io.javadevices.vfiouser.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;

import static io.javadevices.vfiouser.sys.Native.checked;
import static io.javadevices.vfiouser.sys.Native.downcall;
import static io.javadevices.vfiouser.sys.Native.linkage;
import static io.javadevices.vfiouser.sys.Native.state;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * What a socket fd is, asked of the kernel: its family, type and listening state ({@code getsockopt(2)}
 * SO_DOMAIN, SO_TYPE, SO_ACCEPTCONN, see socket(7)) and the address it is bound to ({@code getsockname(2)}).
 * Used to check an inherited listening socket (socket activation) before serving on it. Not for hot paths
 * (each call allocates its small buffers).
 */
public final class SocketOptions {
    /** socket(7): the socket's address family (int). */
    public static final int SO_DOMAIN = 39;
    /** socket(7): the socket's type, e.g. SOCK_STREAM (int). */
    public static final int SO_TYPE = 3;
    /** socket(7): 1 if the socket is listening (listen(2) was called), else 0. */
    public static final int SO_ACCEPTCONN = 30;
    /** fcntl(2) F_SETFD and its close-on-exec flag. */
    public static final int F_GETFD = 1, F_SETFD = 2, FD_CLOEXEC = 1;

    private static final MethodHandle GETSOCKNAME = downcall("getsockname",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));

    private SocketOptions() {
    }

    /** An int-valued SOL_SOCKET option of {@code fd}; EBADF if not open, ENOTSOCK if not a socket. */
    public static int intOption(int fd, int option) throws ErrnoException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment value = a.allocate(JAVA_INT);
            MemorySegment length = a.allocate(JAVA_INT);
            length.set(JAVA_INT, 0, 4);
            LibC.getsockopt(fd, LibC.SOL_SOCKET, option, value, length);
            return value.get(JAVA_INT, 0);
        }
    }

    /**
     * The filesystem path an AF_UNIX socket is bound to, or null if it is unnamed or bound to an abstract
     * name (unix(7): {@code sun_path[0] == 0}).
     */
    public static String unixPath(int fd) throws ErrnoException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment address = a.allocate(SocketStructs.SOCKADDR_UN);
            MemorySegment length = a.allocate(JAVA_INT);
            length.set(JAVA_INT, 0, (int) SocketStructs.SOCKADDR_UN.byteSize());
            MemorySegment st = state();
            int r;
            try {
                r = (int) GETSOCKNAME.invokeExact(st, fd, address, length);
            } catch (Throwable t) {
                throw linkage(t);
            }
            checked("getsockname", r, st);
            int pathBytes = Math.min(length.get(JAVA_INT, 0), (int) address.byteSize()) - 2; // after sun_family
            if (address.get(JAVA_SHORT, 0) != LibC.AF_UNIX || pathBytes <= 0 || address.get(JAVA_BYTE, 2) == 0) {
                return null;
            }
            byte[] bytes = address.asSlice(2, pathBytes).toArray(JAVA_BYTE);
            int end = 0;
            while (end < bytes.length && bytes[end] != 0) {
                end++;
            }
            return new String(bytes, 0, end, StandardCharsets.UTF_8);
        }
    }
}
