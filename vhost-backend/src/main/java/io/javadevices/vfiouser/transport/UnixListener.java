package io.javadevices.vfiouser.transport;

import io.javadevices.vfiouser.sys.Errno;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.LibC;
import io.javadevices.vfiouser.sys.SocketStructs;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Objects;

import static io.javadevices.vfiouser.sys.SocketStructs.POLL_EVENTS;
import static io.javadevices.vfiouser.sys.SocketStructs.POLL_FD;
import static io.javadevices.vfiouser.sys.SocketStructs.POLL_REVENTS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * The listening AF_UNIX socket of the server, created safely:
 * <ul>
 *   <li>an existing path is replaced only if it is a <em>dead</em> socket (connect gets ECONNREFUSED);
 *       a live socket (another server listening) or a non-socket file makes {@link #bind} fail;</li>
 *   <li>the socket file is created with the requested mode (default 0600) with no window in which it is
 *       more open: Linux creates the node with the socket inode's mode masked by the umask
 *       ({@code unix_bind}), so {@code fchmod} before {@code bind}, then {@code chmod} to the exact
 *       mode in case the umask removed bits;</li>
 *   <li>{@link #close} unlinks the path only if it is still the file this listener created.</li>
 * </ul>
 *
 * <p><b>Threads.</b> One thread calls {@link #accept}; {@link #wakeup} and {@link #close} may be called
 * from any thread ({@code accept} polls the socket and a private eventfd, so it wakes promptly).
 */
public final class UnixListener implements AutoCloseable {
    private static final int S_IFMT = 0170000;
    private static final int S_IFSOCK = 0140000;

    private final Path path;
    private final int fd;
    private final int wakeFd;
    private final Object fileKey;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment pollFds;
    private final MemorySegment drain;
    private boolean closed;

    private UnixListener(Path path, int fd, int wakeFd, Object fileKey) {
        this.path = path;
        this.fd = fd;
        this.wakeFd = wakeFd;
        this.fileKey = fileKey;
        this.pollFds = arena.allocate(SocketStructs.POLLFD, 2);
        this.drain = arena.allocate(8);
    }

    /**
     * Creates, binds and listens on {@code path} with file mode {@code mode} (e.g. {@code 0600}).
     *
     * @throws IOException if the path is in use by a live server, is not a socket, or a call fails
     */
    public static UnixListener bind(Path path, int mode) throws IOException {
        Objects.requireNonNull(path, "path");
        if ((mode & ~0777) != 0) {
            throw new IllegalArgumentException("socket mode must be a permission mode like 0600: " + Integer.toOctalString(mode));
        }
        Path absolute = path.toAbsolutePath();
        SocketStructs.sockaddrUnLength(absolute); // validates length early
        removeStale(absolute);
        int fd = LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC | LibC.SOCK_NONBLOCK, 0);
        int wake = -1;
        try (Arena a = Arena.ofConfined()) {
            LibC.fchmod(fd, mode);
            try {
                LibC.bind(fd, SocketStructs.sockaddrUn(a, absolute), SocketStructs.sockaddrUnLength(absolute));
            } catch (ErrnoException e) {
                if (e.errno() == Errno.EADDRINUSE) {
                    throw new IOException("socket path " + absolute + " appeared while starting (another server?)", e);
                }
                throw new IOException("bind " + absolute + ": " + e.getMessage(), e);
            }
            LibC.chmod(a.allocateFrom(absolute.toString()), mode);
            LibC.listen(fd, 4);
            wake = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
            Object key = Files.readAttributes(absolute, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
            return new UnixListener(absolute, fd, wake, key);
        } catch (IOException | RuntimeException e) {
            LibC.closeQuietly(fd);
            LibC.closeQuietly(wake);
            throw e;
        }
    }

    /**
     * Removes {@code path} if it is a socket nobody listens on.
     *
     * @throws IOException if the path is a live socket or not a socket at all
     */
    static void removeStale(Path path) throws IOException {
        int mode;
        try {
            mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException absent) {
            return;
        }
        if ((mode & S_IFMT) != S_IFSOCK) {
            throw new IOException(path + " exists and is not a socket; refusing to replace it");
        }
        try (UnixSocket probe = UnixSocket.connect(path, 0, 0)) {
            throw new IOException(path + " is in use: another server is listening on it");
        } catch (ErrnoException e) {
            if (e.errno() == Errno.ECONNREFUSED) {
                Files.deleteIfExists(path); // dead socket left by a crashed server
                return;
            }
            if (e.errno() == Errno.ENOENT) {
                return;
            }
            throw new IOException("cannot probe existing socket " + path + ": " + e.getMessage(), e);
        }
    }

    /** The socket's absolute path. */
    public Path path() {
        return path;
    }

    /**
     * Waits for the next client.
     *
     * @return the connected socket's fd (blocking, close-on-exec), or -1 if {@link #wakeup} or
     *         {@link #close} was called
     */
    public int accept() throws IOException {
        while (true) {
            synchronized (this) {
                if (closed) {
                    return -1;
                }
            }
            pollFds.set(JAVA_INT, POLL_FD, fd);
            pollFds.set(JAVA_SHORT, POLL_EVENTS, LibC.POLLIN);
            pollFds.set(JAVA_SHORT, POLL_REVENTS, (short) 0);
            long second = SocketStructs.POLLFD.byteSize();
            pollFds.set(JAVA_INT, second + POLL_FD, wakeFd);
            pollFds.set(JAVA_SHORT, second + POLL_EVENTS, LibC.POLLIN);
            pollFds.set(JAVA_SHORT, second + POLL_REVENTS, (short) 0);
            LibC.poll(pollFds, 2, -1);
            if (pollFds.get(JAVA_SHORT, second + POLL_REVENTS) != 0) {
                try {
                    LibC.read(wakeFd, drain, 8);
                } catch (ErrnoException ignored) {
                    // EAGAIN: someone else drained it
                }
                return -1;
            }
            if ((pollFds.get(JAVA_SHORT, POLL_REVENTS) & LibC.POLLIN) != 0) {
                try {
                    return LibC.accept4(fd, LibC.SOCK_CLOEXEC);
                } catch (ErrnoException e) {
                    if (e.errno() != Errno.EAGAIN && e.errno() != 103 /* ECONNABORTED */) {
                        throw e;
                    }
                }
            }
        }
    }

    /** Makes a pending or the next {@link #accept} return -1. */
    public void wakeup() {
        synchronized (this) {
            if (closed) {
                return;
            }
            try (Arena a = Arena.ofConfined()) {
                MemorySegment one = a.allocate(JAVA_LONG);
                one.set(JAVA_LONG, 0, 1);
                LibC.write(wakeFd, one, 8);
            } catch (ErrnoException ignored) {
                // counter saturated: a wakeup is already pending
            }
        }
    }

    /**
     * Stops listening and unlinks the socket file if it is still ours. Call after the accepting thread
     * has returned from {@link #accept} (use {@link #wakeup} first). Idempotent.
     */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            LibC.closeQuietly(fd);
            LibC.closeQuietly(wakeFd);
        }
        try {
            Object key = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
            if (key != null && key.equals(fileKey)) {
                Files.deleteIfExists(path);
            }
        } catch (IOException ignored) {
            // already gone or replaced by someone else: leave it alone
        }
        arena.close();
    }
}
