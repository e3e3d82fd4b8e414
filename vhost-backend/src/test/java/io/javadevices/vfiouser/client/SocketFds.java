package io.javadevices.vfiouser.client;

import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.LibC;
import io.javadevices.vfiouser.sys.SocketStructs;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * File descriptors of every kind a caller might pass as an "inherited listening socket", made with the real
 * calls: the right one, and each thing that only looks like it. The caller closes them.
 */
public final class SocketFds {
    private static final int AF_INET = 2;
    private static final int SOCK_DGRAM = 2;
    private static final int SOCK_SEQPACKET = 5;

    private SocketFds() {
    }

    /** An AF_UNIX SOCK_STREAM socket bound to {@code path} and listening: what systemd passes. */
    public static int listening(Path path) throws ErrnoException {
        int fd = bound(path, LibC.SOCK_STREAM);
        LibC.listen(fd, 8);
        return fd;
    }

    /** An AF_UNIX stream socket bound to {@code path}, never listen(2)ed. */
    public static int boundNotListening(Path path) throws ErrnoException {
        return bound(path, LibC.SOCK_STREAM);
    }

    /** An AF_UNIX datagram socket bound to {@code path}. */
    public static int datagram(Path path) throws ErrnoException {
        return bound(path, SOCK_DGRAM);
    }

    /** An AF_UNIX SOCK_SEQPACKET socket bound to {@code path} and listening (a stream socket it is not). */
    public static int seqpacketListening(Path path) throws ErrnoException {
        int fd = bound(path, SOCK_SEQPACKET);
        LibC.listen(fd, 8);
        return fd;
    }

    /** An AF_INET stream socket (unbound). */
    public static int inet() throws ErrnoException {
        return LibC.socket(AF_INET, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0);
    }

    /** A listening AF_UNIX stream socket bound to an abstract name (no file: sun_path[0] == 0). */
    public static int abstractListening(String name) throws ErrnoException {
        int fd = LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0);
        try (Arena a = Arena.ofConfined()) {
            byte[] bytes = name.getBytes(StandardCharsets.UTF_8);
            MemorySegment address = a.allocate(SocketStructs.SOCKADDR_UN);
            address.set(JAVA_SHORT, 0, (short) LibC.AF_UNIX);
            address.set(JAVA_BYTE, 2, (byte) 0);
            MemorySegment.copy(MemorySegment.ofArray(bytes), 0, address, 3, bytes.length);
            LibC.bind(fd, address, 3 + bytes.length);
            LibC.listen(fd, 8);
            return fd;
        } catch (ErrnoException e) {
            LibC.closeQuietly(fd);
            throw e;
        }
    }

    /** An open fd that is no socket (an eventfd). */
    public static int notASocket() throws ErrnoException {
        return LibC.eventfd(0, LibC.EFD_CLOEXEC);
    }

    /** A descriptor number no process has open (far above any fd table: deterministic, unlike a just-closed fd). */
    public static int closed() {
        return 1 << 30;
    }

    private static int bound(Path path, int type) throws ErrnoException {
        int fd = LibC.socket(LibC.AF_UNIX, type | LibC.SOCK_CLOEXEC, 0);
        try (Arena a = Arena.ofConfined()) {
            Path absolute = path.toAbsolutePath();
            LibC.bind(fd, SocketStructs.sockaddrUn(a, absolute), SocketStructs.sockaddrUnLength(absolute));
            return fd;
        } catch (ErrnoException e) {
            LibC.closeQuietly(fd);
            throw e;
        }
    }
}
