package io.javadevices.vfiouser.transport;

import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.LibC;
import io.javadevices.vfiouser.sys.SocketStructs;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

import static io.javadevices.vfiouser.sys.SocketStructs.CMSG_HEADER_SIZE;
import static io.javadevices.vfiouser.sys.SocketStructs.CMSG_LEN;
import static io.javadevices.vfiouser.sys.SocketStructs.CMSG_LEVEL;
import static io.javadevices.vfiouser.sys.SocketStructs.CMSG_TYPE;
import static io.javadevices.vfiouser.sys.SocketStructs.IOV_BASE;
import static io.javadevices.vfiouser.sys.SocketStructs.IOV_LEN;
import static io.javadevices.vfiouser.sys.SocketStructs.MSG_CONTROL;
import static io.javadevices.vfiouser.sys.SocketStructs.MSG_CONTROLLEN;
import static io.javadevices.vfiouser.sys.SocketStructs.MSG_FLAGS;
import static io.javadevices.vfiouser.sys.SocketStructs.MSG_IOV;
import static io.javadevices.vfiouser.sys.SocketStructs.MSG_IOVLEN;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * A connected AF_UNIX stream socket that sends and receives bytes together with file descriptors
 * ({@code SCM_RIGHTS}), as vfio-user needs: fds ride on the same {@code sendmsg} as the message header
 * (vfio-user.rst; QEMU {@code vfio_user_send_qio}/{@code vfio_user_recv_one}).
 *
 * <p>The {@code msghdr}, {@code iovec} and control buffers are allocated once, from this socket's own
 * arena, so sending and receiving do not allocate. Received fds are collected into an int array owned by
 * this object; the caller takes ownership of them after each {@link #receive} (and must close them).
 *
 * <p><b>Threads.</b> One thread receives and sends (the connection's thread). {@link #shutdown} and
 * {@link #close} may be called from any thread: shutdown wakes a blocked receive with EOF; close is
 * guarded so that the fd number is released exactly once and never shut down after release (it could
 * already belong to someone else).
 */
public final class UnixSocket implements AutoCloseable {
    private final Arena arena = Arena.ofShared();
    private final int maxReceiveFds;
    private final int maxSendFds;
    private final MemorySegment recvHdr;
    private final MemorySegment recvIov;
    private final MemorySegment recvControl;
    private final MemorySegment sendHdr;
    private final MemorySegment sendIov;
    private final MemorySegment sendControl;
    private final int[] receivedFds;
    private int receivedFdCount;
    private boolean controlTruncated;
    private int fd;
    private boolean open = true;

    /**
     * Adopts a connected socket.
     *
     * @param fd            the socket; owned by this object from now on
     * @param maxReceiveFds the most fds one receive accepts (more → {@link #controlTruncated()})
     * @param maxSendFds    the most fds one send may carry
     */
    public UnixSocket(int fd, int maxReceiveFds, int maxSendFds) {
        if (maxReceiveFds < 0 || maxReceiveFds > 253 || maxSendFds < 0 || maxSendFds > 253) {
            throw new IllegalArgumentException("fd counts must be 0..253 (SCM_MAX_FD)");
        }
        this.fd = fd;
        this.maxReceiveFds = maxReceiveFds;
        this.maxSendFds = maxSendFds;
        this.recvHdr = arena.allocate(SocketStructs.MSGHDR);
        this.recvIov = arena.allocate(SocketStructs.IOVEC);
        this.recvControl = arena.allocate(Math.max(8, SocketStructs.cmsgSpace(4L * maxReceiveFds)), 8);
        this.sendHdr = arena.allocate(SocketStructs.MSGHDR);
        this.sendIov = arena.allocate(SocketStructs.IOVEC);
        this.sendControl = arena.allocate(Math.max(8, SocketStructs.cmsgSpace(4L * maxSendFds)), 8);
        this.receivedFds = new int[maxReceiveFds];
        recvHdr.set(ADDRESS, MSG_IOV, recvIov);
        recvHdr.set(JAVA_LONG, MSG_IOVLEN, 1);
        sendHdr.set(ADDRESS, MSG_IOV, sendIov);
        sendHdr.set(JAVA_LONG, MSG_IOVLEN, 1);
    }

    /** Connects to a listening socket (used by clients and by the stale-socket probe). */
    public static UnixSocket connect(Path path, int maxReceiveFds, int maxSendFds) throws IOException {
        int fd = LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0);
        try (Arena a = Arena.ofConfined()) {
            LibC.connect(fd, SocketStructs.sockaddrUn(a, path), SocketStructs.sockaddrUnLength(path));
        } catch (IOException | RuntimeException e) {
            LibC.closeQuietly(fd);
            throw e;
        }
        return new UnixSocket(fd, maxReceiveFds, maxSendFds);
    }

    /** The socket's fd (for poll). Do not close it directly. */
    public synchronized int fd() {
        return fd;
    }

    /**
     * Receives up to {@code length} bytes into {@code dst[offset..]}, collecting any fds into this
     * socket's fd array (see {@link #receivedFdCount()}); fds from a previous receive that the caller did
     * not take are forgotten, so take them first.
     *
     * @param acceptFds false to receive with no control buffer: the kernel then discards (closes) any
     *                  fds attached to these bytes and sets MSG_CTRUNC
     * @return bytes received, 0 at end of stream
     */
    public long receive(MemorySegment dst, long offset, long length, boolean acceptFds) throws ErrnoException {
        receivedFdCount = 0;
        controlTruncated = false;
        checkBuffer(dst, offset, length);
        // Raw address instead of dst.asSlice(...): no segment object per receive.
        recvIov.set(JAVA_LONG, IOV_BASE, dst.address() + offset);
        recvIov.set(JAVA_LONG, IOV_LEN, length);
        if (acceptFds && maxReceiveFds > 0) {
            recvHdr.set(ADDRESS, MSG_CONTROL, recvControl);
            recvHdr.set(JAVA_LONG, MSG_CONTROLLEN, recvControl.byteSize());
        } else {
            recvHdr.set(ADDRESS, MSG_CONTROL, MemorySegment.NULL);
            recvHdr.set(JAVA_LONG, MSG_CONTROLLEN, 0);
        }
        recvHdr.set(JAVA_INT, MSG_FLAGS, 0);
        long n = LibC.recvmsg(fd, recvHdr, LibC.MSG_CMSG_CLOEXEC);
        int flags = recvHdr.get(JAVA_INT, MSG_FLAGS);
        controlTruncated = (flags & LibC.MSG_CTRUNC) != 0;
        if (acceptFds && maxReceiveFds > 0) {
            collectFds(recvHdr.get(JAVA_LONG, MSG_CONTROLLEN));
        }
        return n;
    }

    private static void checkBuffer(MemorySegment buffer, long offset, long length) {
        if (!buffer.isNative() || offset < 0 || length < 0 || offset + length > buffer.byteSize()) {
            throw new IndexOutOfBoundsException("buffer range [" + offset + ", +" + length + ") of " + buffer);
        }
    }

    /** Walks the control buffer ({@code CMSG_FIRSTHDR}/{@code CMSG_NXTHDR}) and keeps SCM_RIGHTS fds. */
    private void collectFds(long controlLength) {
        long at = 0;
        while (at + CMSG_HEADER_SIZE <= controlLength) {
            long cmsgLen = recvControl.get(JAVA_LONG, at + CMSG_LEN);
            if (cmsgLen < CMSG_HEADER_SIZE || at + cmsgLen > controlLength) {
                break;
            }
            int level = recvControl.get(JAVA_INT, at + CMSG_LEVEL);
            int type = recvControl.get(JAVA_INT, at + CMSG_TYPE);
            if (level == LibC.SOL_SOCKET && type == LibC.SCM_RIGHTS) {
                int n = (int) ((cmsgLen - CMSG_HEADER_SIZE) / 4);
                for (int i = 0; i < n; i++) {
                    int received = recvControl.get(JAVA_INT, at + CMSG_HEADER_SIZE + 4L * i);
                    if (receivedFdCount < receivedFds.length) {
                        receivedFds[receivedFdCount++] = received;
                    } else {
                        LibC.closeQuietly(received); // cannot happen with a correctly sized buffer
                        controlTruncated = true;
                    }
                }
            }
            at += SocketStructs.cmsgAlign(cmsgLen);
        }
    }

    /** Number of fds the last {@link #receive} collected. */
    public int receivedFdCount() {
        return receivedFdCount;
    }

    /** The {@code i}-th fd of the last receive; the caller owns it. */
    public int receivedFd(int i) {
        if (i < 0 || i >= receivedFdCount) {
            throw new IndexOutOfBoundsException(i);
        }
        return receivedFds[i];
    }

    /** True if the last receive had more fds than fit (MSG_CTRUNC): the kernel dropped the rest. */
    public boolean controlTruncated() {
        return controlTruncated;
    }

    /**
     * Sends {@code length} bytes from {@code src[offset..]}; {@code fds[0..fdCount)} ride on the first
     * {@code sendmsg}. Loops over partial sends; never raises SIGPIPE (MSG_NOSIGNAL).
     */
    public void send(MemorySegment src, long offset, long length, int[] fds, int fdCount) throws ErrnoException {
        if (fdCount > maxSendFds) {
            throw new IllegalArgumentException("at most " + maxSendFds + " fds per message");
        }
        checkBuffer(src, offset, length);
        long done = 0;
        boolean withFds = fdCount > 0;
        do {
            sendIov.set(JAVA_LONG, IOV_BASE, src.address() + offset + done);
            sendIov.set(JAVA_LONG, IOV_LEN, length - done);
            if (withFds) {
                sendControl.set(JAVA_LONG, CMSG_LEN, SocketStructs.cmsgLen(4L * fdCount));
                sendControl.set(JAVA_INT, CMSG_LEVEL, LibC.SOL_SOCKET);
                sendControl.set(JAVA_INT, CMSG_TYPE, LibC.SCM_RIGHTS);
                for (int i = 0; i < fdCount; i++) {
                    sendControl.set(JAVA_INT, CMSG_HEADER_SIZE + 4L * i, fds[i]);
                }
                sendHdr.set(ADDRESS, MSG_CONTROL, sendControl);
                sendHdr.set(JAVA_LONG, MSG_CONTROLLEN, SocketStructs.cmsgSpace(4L * fdCount));
            } else {
                sendHdr.set(ADDRESS, MSG_CONTROL, MemorySegment.NULL);
                sendHdr.set(JAVA_LONG, MSG_CONTROLLEN, 0);
            }
            long n = LibC.sendmsg(fd, sendHdr, LibC.MSG_NOSIGNAL);
            done += n;
            withFds = false; // fds went with the first chunk
        } while (done < length);
    }

    /** Reads the peer's process credentials (SO_PEERCRED), or null if unavailable. */
    public PeerCredentials peerCredentials() {
        return peerCredentials(fd);
    }

    /**
     * Reads the credentials the kernel recorded for the peer of connected socket {@code fd} when it
     * called connect(2) (SO_PEERCRED, unix(7)): they cannot be forged by the peer. Null if unavailable.
     */
    public static PeerCredentials peerCredentials(int fd) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment cred = a.allocate(SocketStructs.UCRED);
            MemorySegment len = a.allocate(JAVA_INT);
            len.set(JAVA_INT, 0, (int) cred.byteSize());
            LibC.getsockopt(fd, LibC.SOL_SOCKET, LibC.SO_PEERCRED, cred, len);
            return new PeerCredentials(cred.get(JAVA_INT, 0), cred.get(JAVA_INT, 4), cred.get(JAVA_INT, 8));
        } catch (ErrnoException e) {
            return null;
        }
    }

    /** Process id, user id and group id of the peer at connect time. */
    public record PeerCredentials(int pid, int uid, int gid) {
        @Override
        public String toString() {
            return "pid " + pid + ", uid " + Integer.toUnsignedString(uid);
        }
    }

    /** Shuts the connection down in both directions (wakes a blocked receive); no-op once closed. */
    public synchronized void shutdown() {
        if (open) {
            try {
                LibC.shutdown(fd, LibC.SHUT_RDWR);
            } catch (ErrnoException ignored) {
                // already disconnected
            }
        }
    }

    /** Closes the socket and frees its buffers. Idempotent. Call from the owning thread. */
    @Override
    public void close() {
        synchronized (this) {
            if (!open) {
                return;
            }
            open = false;
            LibC.closeQuietly(fd);
            fd = -1;
        }
        arena.close();
    }
}
