package io.javadevices.vfiouser.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static java.lang.foreign.MemoryLayout.PathElement.groupElement;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * C struct layouts for socket calls on Linux LP64 ({@code <sys/socket.h>}, {@code <sys/un.h>},
 * {@code <poll.h>}): {@code struct msghdr} (56 bytes), {@code struct iovec} (16), {@code struct cmsghdr}
 * (16-byte header, data 8-byte aligned), {@code struct sockaddr_un} (110), {@code struct pollfd} (8),
 * {@code struct ucred} (12). Layout sizes are asserted by a unit test.
 */
public final class SocketStructs {
    public static final StructLayout IOVEC = MemoryLayout.structLayout(
            ADDRESS.withName("iov_base"),
            JAVA_LONG.withName("iov_len"));

    public static final StructLayout MSGHDR = MemoryLayout.structLayout(
            ADDRESS.withName("msg_name"),
            JAVA_INT.withName("msg_namelen"),
            MemoryLayout.paddingLayout(4),
            ADDRESS.withName("msg_iov"),
            JAVA_LONG.withName("msg_iovlen"),
            ADDRESS.withName("msg_control"),
            JAVA_LONG.withName("msg_controllen"),
            JAVA_INT.withName("msg_flags"),
            MemoryLayout.paddingLayout(4));

    public static final StructLayout CMSGHDR = MemoryLayout.structLayout(
            JAVA_LONG.withName("cmsg_len"),
            JAVA_INT.withName("cmsg_level"),
            JAVA_INT.withName("cmsg_type"));

    /** {@code sun_path} capacity including the terminating NUL. */
    public static final int SUN_PATH_MAX = 108;

    public static final StructLayout SOCKADDR_UN = MemoryLayout.structLayout(
            JAVA_SHORT.withName("sun_family"),
            MemoryLayout.sequenceLayout(SUN_PATH_MAX, JAVA_BYTE).withName("sun_path"));

    public static final StructLayout POLLFD = MemoryLayout.structLayout(
            JAVA_INT.withName("fd"),
            JAVA_SHORT.withName("events"),
            JAVA_SHORT.withName("revents"));

    public static final StructLayout UCRED = MemoryLayout.structLayout(
            JAVA_INT.withName("pid"),
            JAVA_INT.withName("uid"),
            JAVA_INT.withName("gid"));

    public static final long IOV_BASE = IOVEC.byteOffset(groupElement("iov_base"));
    public static final long IOV_LEN = IOVEC.byteOffset(groupElement("iov_len"));
    public static final long MSG_NAME = MSGHDR.byteOffset(groupElement("msg_name"));
    public static final long MSG_NAMELEN = MSGHDR.byteOffset(groupElement("msg_namelen"));
    public static final long MSG_IOV = MSGHDR.byteOffset(groupElement("msg_iov"));
    public static final long MSG_IOVLEN = MSGHDR.byteOffset(groupElement("msg_iovlen"));
    public static final long MSG_CONTROL = MSGHDR.byteOffset(groupElement("msg_control"));
    public static final long MSG_CONTROLLEN = MSGHDR.byteOffset(groupElement("msg_controllen"));
    public static final long MSG_FLAGS = MSGHDR.byteOffset(groupElement("msg_flags"));
    public static final long CMSG_LEN = CMSGHDR.byteOffset(groupElement("cmsg_len"));
    public static final long CMSG_LEVEL = CMSGHDR.byteOffset(groupElement("cmsg_level"));
    public static final long CMSG_TYPE = CMSGHDR.byteOffset(groupElement("cmsg_type"));
    public static final long CMSG_HEADER_SIZE = CMSGHDR.byteSize();
    public static final long POLL_FD = POLLFD.byteOffset(groupElement("fd"));
    public static final long POLL_EVENTS = POLLFD.byteOffset(groupElement("events"));
    public static final long POLL_REVENTS = POLLFD.byteOffset(groupElement("revents"));

    private SocketStructs() {
    }

    /** {@code CMSG_ALIGN}: rounds up to the 8-byte alignment of {@code size_t}. */
    public static long cmsgAlign(long length) {
        return (length + 7) & ~7L;
    }

    /** {@code CMSG_SPACE(bytes)}: control-buffer bytes needed for one cmsg with {@code bytes} of data. */
    public static long cmsgSpace(long dataBytes) {
        return CMSG_HEADER_SIZE + cmsgAlign(dataBytes);
    }

    /** {@code CMSG_LEN(bytes)}: the {@code cmsg_len} value for {@code bytes} of data. */
    public static long cmsgLen(long dataBytes) {
        return CMSG_HEADER_SIZE + dataBytes;
    }

    /**
     * Allocates a {@code sockaddr_un} for {@code path}.
     *
     * @throws IllegalArgumentException if the path does not fit {@code sun_path} (107 bytes + NUL)
     */
    public static MemorySegment sockaddrUn(Arena arena, Path path) {
        byte[] bytes = path.toString().getBytes(StandardCharsets.UTF_8);
        if (bytes.length == 0 || bytes.length >= SUN_PATH_MAX) {
            throw new IllegalArgumentException("Unix socket path must be 1.." + (SUN_PATH_MAX - 1)
                    + " bytes: " + path);
        }
        MemorySegment address = arena.allocate(SOCKADDR_UN);
        address.set(JAVA_SHORT, 0, (short) LibC.AF_UNIX);
        MemorySegment.copy(bytes, 0, address, JAVA_BYTE, 2, bytes.length);
        return address;
    }

    /** The address length to pass with a {@link #sockaddrUn} (family + path + NUL). */
    public static int sockaddrUnLength(Path path) {
        return 2 + path.toString().getBytes(StandardCharsets.UTF_8).length + 1;
    }
}
