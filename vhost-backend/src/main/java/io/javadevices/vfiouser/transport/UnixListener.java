package io.javadevices.vfiouser.transport;

import io.javadevices.vfiouser.sys.Errno;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.FileIdentity;
import io.javadevices.vfiouser.sys.LibC;
import io.javadevices.vfiouser.sys.SocketOptions;
import io.javadevices.vfiouser.sys.SocketStructs;
import io.javadevices.vfiouser.sys.Statx;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Map;
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
 *       a live socket (another server listening) or anything that is not a socket (a symbolic link,
 *       whatever it points to, included: the type is read with lstat) makes {@link #bind} fail;</li>
 *   <li>the socket file is created with the requested mode (default 0600) with no window in which it is
 *       more open: Linux creates the node with the socket inode's mode masked by the umask
 *       ({@code unix_bind}), so {@code fchmod} before {@code bind}, then the exact mode is set in case
 *       the umask removed bits, on the bound inode itself, never through a link (see
 *       {@link #chmodBoundSocket});</li>
 *   <li>{@link #close} unlinks the path only if it is still the file this listener created.</li>
 * </ul>
 *
 * <p><b>Threads.</b> One thread calls {@link #accept}; {@link #wakeup} and {@link #close} may be called
 * from any thread ({@code accept} polls the socket and a private eventfd, so it wakes promptly).
 */
public final class UnixListener implements AutoCloseable {
    private final Path path;
    private final int fd;
    private final int wakeFd;
    private final Object fileKey;
    private final boolean inherited;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment pollFds;
    private final MemorySegment drain;
    private boolean closed;

    private UnixListener(Path path, int fd, int wakeFd, Object fileKey, boolean inherited) {
        this.inherited = inherited;
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
     * @throws IOException if the path is in use by a live server, is not a socket (a symbolic link
     *                     included), was swapped while starting, or a call fails
     */
    public static UnixListener bind(Path path, int mode) throws IOException {
        return bind(path, mode, () -> { });
    }

    /**
     * {@link #bind(Path, int)} with {@code afterBind} run between bind(2) and setting the mode: a test
     * seam that lets a test swap the path for a symbolic link at the worst moment.
     */
    static UnixListener bind(Path path, int mode, Runnable afterBind) throws IOException {
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
                // bind(2) never follows a symlink at the final component and never replaces anything:
                // whatever appeared at the path since removeStale makes it fail with EADDRINUSE.
                LibC.bind(fd, SocketStructs.sockaddrUn(a, absolute), SocketStructs.sockaddrUnLength(absolute));
            } catch (ErrnoException e) {
                if (e.errno() == Errno.EADDRINUSE) {
                    throw new IOException("socket path " + absolute + " appeared while starting (another server?)", e);
                }
                throw new IOException("bind " + absolute + ": " + e.getMessage(), e);
            }
            afterBind.run();
            Object key = chmodBoundSocket(absolute, mode);
            LibC.listen(fd, 4);
            wake = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
            return new UnixListener(absolute, fd, wake, key, false);
        } catch (IOException | RuntimeException e) {
            LibC.closeQuietly(fd);
            LibC.closeQuietly(wake);
            throw e;
        }
    }

    /**
     * Serves on an inherited listening socket (socket activation: systemd's {@code sd_listen_fds(3)}
     * convention, libvirt passes fds the same way) instead of binding one. The fd must be an open AF_UNIX
     * SOCK_STREAM socket that is listening and bound to a filesystem path; anything else is refused (an fd
     * that is not what it claims is never served on). The socket file belongs to whoever created it (systemd's
     * {@code .socket} unit): {@link #close} closes this process's descriptor and never unlinks the path, so
     * the next server started on the same socket finds it in place and clients queued meanwhile are kept.
     * The fd is made close-on-exec and non-blocking (an accept that lost a race must not block the thread
     * {@link #wakeup} has to stop); its mode and owner are left as the creator set them.
     *
     * @throws IOException naming the fd and what it is instead, if it is not such a socket
     */
    public static UnixListener adopt(int fd) throws IOException {
        String path = checkInherited(fd);
        try {
            LibC.fcntl(fd, SocketOptions.F_SETFD, SocketOptions.FD_CLOEXEC);
            LibC.fcntl(fd, LibC.F_SETFL, LibC.fcntl(fd, LibC.F_GETFL, 0) | LibC.O_NONBLOCK);
        } catch (ErrnoException e) {
            throw new IOException("inherited fd " + fd + ": " + e.getMessage(), e);
        }
        int wake;
        try {
            wake = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        } catch (ErrnoException e) {
            throw new IOException("eventfd: " + e.getMessage(), e);
        }
        return new UnixListener(Path.of(path).toAbsolutePath(), fd, wake, null, true);
    }

    /**
     * The checks of {@link #adopt}, without changing anything: returns the path {@code fd} is bound to if it is
     * an open, listening AF_UNIX SOCK_STREAM socket bound to a filesystem path.
     *
     * @throws IOException naming the fd and what it is instead
     */
    public static String checkInherited(int fd) throws IOException {
        String what = "inherited fd " + fd;
        int domain;
        try {
            domain = SocketOptions.intOption(fd, SocketOptions.SO_DOMAIN);
        } catch (ErrnoException e) {
            if (e.errno() == Errno.EBADF) {
                throw new IOException(what + " is not open", e);
            }
            if (e.errno() == Errno.ENOTSOCK) {
                throw new IOException(what + " is not a socket", e);
            }
            throw new IOException(what + ": getsockopt(SO_DOMAIN): " + e.getMessage(), e);
        }
        String path;
        try {
            if (domain != LibC.AF_UNIX) {
                throw new IOException(what + " is a socket of address family " + domain + ", not AF_UNIX (1)");
            }
            int type = SocketOptions.intOption(fd, SocketOptions.SO_TYPE);
            if (type != LibC.SOCK_STREAM) {
                throw new IOException(what + " is an AF_UNIX socket of type " + type + ", not SOCK_STREAM (1)");
            }
            if (SocketOptions.intOption(fd, SocketOptions.SO_ACCEPTCONN) == 0) {
                throw new IOException(what + " is an AF_UNIX stream socket that is not listening");
            }
            path = SocketOptions.unixPath(fd);
            if (path == null || path.isEmpty()) {
                throw new IOException(what + " is a listening socket bound to no filesystem path (abstract or "
                        + "unnamed); the server serves only sockets QEMU can name by path");
            }
        } catch (ErrnoException e) {
            throw new IOException(what + ": " + e.getMessage(), e);
        }
        return path;
    }

    /** True if the socket was inherited ({@link #adopt}): its file is never unlinked here. */
    public boolean inherited() {
        return inherited;
    }

    /**
     * Sets the exact mode of the socket file bind(2) just created, without following a link, and returns
     * its file key (for {@link #close}'s is-it-still-ours check).
     *
     * <p>Why this way: {@code chmod(path)} resolves the path again, so anyone who can write the socket's
     * directory could swap the fresh socket for a symlink between bind and chmod and have a root server
     * with {@code --socket-mode 0666} make any file world-writable. Instead the path is opened once with
     * {@code O_PATH|O_NOFOLLOW} (a symlink is opened as itself, never followed), statx on that fd checks
     * it is a socket owned by this process's euid (only we, or root, can create one in its place), and the
     * mode is set through {@code /proc/self/fd/N}, which resolves to the inode the fd pins: the steps
     * glibc's {@code fchmodat(AT_SYMLINK_NOFOLLOW)} takes (fchmod refuses O_PATH fds; fchmodat2 needs
     * Linux 6.6). The other way, bind in a private 0700 directory and rename(2) onto the path, would
     * leave a directory behind after a crash and still needs fd-relative binding to be safe in a
     * directory others can write; it gains nothing, since fchmod before bind already creates the node
     * never more open than asked ({@code unix_bind} masks the socket inode's mode with the umask).
     */
    private static Object chmodBoundSocket(Path path, int mode) throws IOException {
        int pathFd;
        try (Arena a = Arena.ofConfined()) {
            pathFd = FileIdentity.open(a.allocateFrom(path.toString()), FileIdentity.O_PATH | FileIdentity.O_NOFOLLOW | FileIdentity.O_CLOEXEC);
        } catch (ErrnoException e) {
            throw new IOException("socket " + path + " vanished while starting (" + e.getMessage() + ")", e);
        }
        try (Arena a = Arena.ofConfined()) {
            Statx status = Statx.of(pathFd);
            if (!status.isSocket() || status.uid() != FileIdentity.geteuid()) {
                throw new IOException("socket path " + path + " was replaced by a " + Statx.kind(status.mode())
                        + " owned by uid " + Integer.toUnsignedString(status.uid())
                        + " while the server was starting; refusing to change its mode");
            }
            Path pinned = Path.of("/proc/self/fd/" + pathFd);
            try {
                LibC.chmod(a.allocateFrom(pinned.toString()), mode);
            } catch (ErrnoException e) {
                throw new IOException("cannot set the mode of socket " + path + " through " + pinned
                        + " (is /proc mounted?): " + e.getMessage(), e);
            }
            return Files.readAttributes(pinned, BasicFileAttributes.class).fileKey();
        } finally {
            LibC.closeQuietly(pathFd);
        }
    }

    /**
     * Removes {@code path} if it is a socket nobody listens on. The type is read with lstat (links are
     * never followed): only a socket whose connect gets ECONNREFUSED is stale, and it is unlinked only if
     * it is still the same inode after the probe (unlink removes a name; it never touches a file's
     * contents or mode).
     *
     * @throws IOException if the path is a live socket, not a socket at all, or changed while probed
     */
    static void removeStale(Path path) throws IOException {
        Map<String, Object> before;
        try {
            before = Files.readAttributes(path, "unix:mode,dev,ino", LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException absent) {
            return;
        }
        int mode = (Integer) before.get("mode");
        if ((mode & Statx.S_IFMT) != Statx.S_IFSOCK) {
            throw new IOException(path + " exists and is a " + Statx.kind(mode) + ", not a socket; refusing to replace it"
                    + ((mode & Statx.S_IFMT) == Statx.S_IFLNK ? " (the server never follows a link at its socket path)" : ""));
        }
        try (UnixSocket probe = UnixSocket.connect(path, 0, 0)) {
            throw new IOException(path + " is in use: another server is listening on it");
        } catch (ErrnoException e) {
            if (e.errno() == Errno.ENOENT) {
                return;
            }
            if (e.errno() != Errno.ECONNREFUSED) {
                throw new IOException("cannot probe existing socket " + path + ": " + e.getMessage(), e);
            }
        }
        Map<String, Object> after;
        try {
            after = Files.readAttributes(path, "unix:mode,dev,ino", LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException gone) {
            return;
        }
        if (!after.equals(before)) {
            throw new IOException(path + " changed while it was probed; refusing to replace it");
        }
        Files.deleteIfExists(path); // dead socket left by a crashed server
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
     * Stops listening and unlinks the socket file if it is still ours (never an inherited one's). Call after the accepting thread
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
            if (!inherited && key != null && key.equals(fileKey)) {
                Files.deleteIfExists(path);
            }
        } catch (IOException ignored) {
            // already gone or replaced by someone else: leave it alone
        }
        arena.close();
    }
}
