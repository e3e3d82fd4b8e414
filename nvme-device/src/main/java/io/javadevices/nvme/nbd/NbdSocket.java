package io.javadevices.nvme.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

import static io.javadevices.nvme.nbd.SocketCalls.*;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * The NBD session's stream socket on a raw descriptor ({@link SocketCalls}): a blocking socket whose sends can
 * each be non-blocking ({@code MSG_DONTWAIT}), so that a queue worker may send without ever waiting while the
 * reader thread blocks in {@code read}. Gathering sends take {@code struct iovec}s that point at guest memory
 * itself: nothing is copied or allocated per request.
 *
 * <p>Teardown: {@link #shutdown} (any thread, any time) wakes a blocked reader with end-of-stream and makes
 * every later send fail; {@link #close} releases the descriptor once no thread can use it any more (closing it
 * while another thread is inside a call could let that call act on a descriptor number already reused).
 */
final class NbdSocket {
    /** Staging for the handshake's few blocking reads and writes (option replies are at most 64 KiB). */
    private static final int STAGING_BYTES = 64 * 1024;

    private final int fd;
    private final MemorySegment state; // the handshake's and close's errno (one thread at a time)
    private final MemorySegment staging;
    private volatile boolean shut;
    private boolean released;

    private NbdSocket(int fd) {
        this.fd = fd;
        Arena arena = Arena.ofAuto();
        this.state = arena.allocate(STATE_BYTES + MSGHDR_BYTES + 16 + 8, 8);
        this.staging = arena.allocate(STAGING_BYTES, 8);
    }

    /**
     * Connects to the server of {@code uri} (a Unix socket path, or a TCP host resolved here, every address in
     * turn), giving up after {@code timeoutNanos}.
     */
    static NbdSocket connect(NbdUri uri, long timeoutNanos) throws IOException {
        long deadline = System.nanoTime() + timeoutNanos;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(STATE_BYTES + 16, 8);
            if (uri.socket() != null) {
                MemorySegment address = unixAddress(arena, uri.socket().toString());
                return connect(state, AF_UNIX, address, deadline, uri);
            }
            InetAddress[] hosts;
            try {
                hosts = InetAddress.getAllByName(uri.host());
            } catch (UnknownHostException e) {
                throw new NbdException("cannot resolve the NBD server's host " + uri.host());
            }
            IOException last = null;
            for (InetAddress host : hosts) {
                try {
                    NbdSocket socket = connect(state, host instanceof Inet6Address ? AF_INET6 : AF_INET,
                            inetAddress(arena, new InetSocketAddress(host, uri.port())), deadline, uri);
                    socket.setNoDelay(); // requests are small and latency-bound
                    return socket;
                } catch (IOException e) {
                    last = e;
                }
            }
            throw last;
        }
    }

    private static NbdSocket connect(MemorySegment state, int family, MemorySegment address, long deadline, NbdUri uri)
            throws IOException {
        int fd = socket(state, family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            throw new NbdException("cannot create a socket for " + uri.where() + ": errno " + -fd);
        }
        try {
            int rc = SocketCalls.connect(state, fd, address.address(), (int) address.byteSize());
            if (rc == -EINPROGRESS || rc == -EAGAIN) { // TCP in progress, a Unix listener's backlog full
                awaitConnected(state, fd, deadline, uri);
            } else if (rc < 0) {
                throw new NbdException("cannot connect to the NBD server at " + uri.where() + ": errno " + -rc);
            }
            int flags = fcntl(state, fd, F_GETFL, 0);
            if (flags < 0 || fcntl(state, fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
                throw new NbdException("cannot make the socket to " + uri.where() + " blocking");
            }
            return new NbdSocket(fd);
        } catch (IOException | RuntimeException e) {
            SocketCalls.close(fd);
            throw e;
        }
    }

    private static void awaitConnected(MemorySegment state, int fd, long deadline, NbdUri uri) throws IOException {
        MemorySegment pollfd = state.asSlice(STATE_BYTES, 16);
        while (true) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new NbdException("cannot connect to the NBD server at " + uri.where() + ": timed out");
            }
            pollfd.set(JAVA_INT, 0, fd);
            pollfd.set(JAVA_SHORT, 4, POLLOUT);
            pollfd.set(JAVA_SHORT, 6, (short) 0);
            int rc = poll(state, pollfd.address(), (int) Math.max(1, left / 1_000_000));
            if (rc == 1) {
                break;
            }
            if (rc < 0 && rc != -EINTR) {
                throw new NbdException("cannot connect to the NBD server at " + uri.where() + ": poll errno " + -rc);
            }
        }
        // A Unix socket whose backlog was full: try again; TCP: SO_ERROR says how the connection attempt ended.
        MemorySegment value = pollfd.asSlice(0, 8);
        value.set(JAVA_INT, 0, 0);
        value.set(JAVA_INT, 4, 4);
        int rc = getsockopt(state, fd, SOL_SOCKET, SO_ERROR, value.address(), value.address() + 4);
        int error = rc < 0 ? -rc : value.get(JAVA_INT, 0);
        if (error != 0) {
            throw new NbdException("cannot connect to the NBD server at " + uri.where() + ": errno " + error);
        }
    }

    /** {@code struct sockaddr_un}: family, then the NUL-terminated path in 108 bytes. */
    private static MemorySegment unixAddress(Arena arena, String path) throws NbdException {
        byte[] bytes = path.getBytes(StandardCharsets.UTF_8);
        if (bytes.length > 107) {
            throw new NbdException("the socket path " + path + " is longer than the 107 bytes a Unix socket allows");
        }
        MemorySegment address = arena.allocate(110, 8);
        family(address, AF_UNIX);
        MemorySegment.copy(bytes, 0, address, JAVA_BYTE, 2, bytes.length);
        return address.asSlice(0, 2 + bytes.length + 1);
    }

    /** {@code struct sockaddr_in} (16 bytes) or {@code sockaddr_in6} (28 bytes); the port in network order. */
    private static MemorySegment inetAddress(Arena arena, InetSocketAddress where) {
        byte[] ip = where.getAddress().getAddress();
        boolean v4 = where.getAddress() instanceof Inet4Address;
        MemorySegment address = arena.allocate(v4 ? 16 : 28, 8);
        family(address, v4 ? AF_INET : AF_INET6);
        address.set(JAVA_BYTE, 2, (byte) (where.getPort() >>> 8));
        address.set(JAVA_BYTE, 3, (byte) where.getPort());
        MemorySegment.copy(ip, 0, address, JAVA_BYTE, v4 ? 4 : 8, ip.length);
        if (!v4) {
            address.set(JAVA_INT, 24, ((Inet6Address) where.getAddress()).getScopeId());
        }
        return address;
    }

    private void setNoDelay() {
        MemorySegment one = state.asSlice(STATE_BYTES, 4);
        one.set(JAVA_INT, 0, 1);
        setsockopt(state, fd, IPPROTO_TCP, TCP_NODELAY, one.address(), 4); // an optimisation: failure is harmless
    }

    // ------------------------------------------------------------------ transmission (allocation-free)

    /**
     * sendmsg(2) of the {@code struct msghdr} at {@code msghdr}, never waiting: bytes sent, or a negated errno
     * ({@code -EAGAIN}: the socket buffer is full). MSG_NOSIGNAL: a peer gone is EPIPE, not SIGPIPE.
     */
    long sendNow(MemorySegment errno, long msghdr) {
        while (true) {
            long n = sendmsg(errno, fd, msghdr, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n != -EINTR) {
                return n;
            }
        }
    }

    /** Waits up to {@code millis} until a send can make progress; false on timeout. */
    boolean awaitWritable(MemorySegment errno, MemorySegment pollfd, int millis) {
        pollfd.set(JAVA_INT, 0, fd);
        pollfd.set(JAVA_SHORT, 4, POLLOUT);
        pollfd.set(JAVA_SHORT, 6, (short) 0);
        return poll(errno, pollfd.address(), millis) > 0;
    }

    /** Blocking read(2) into {@code length} bytes at {@code address}: bytes read, 0 at end of stream, or -errno. */
    long read(MemorySegment errno, long address, long length) {
        while (true) {
            long n = SocketCalls.read(errno, fd, address, length);
            if (n != -EINTR) {
                return n;
            }
        }
    }

    /**
     * Ends both directions: a blocked reader sees end of stream, sends fail. Any thread; idempotent. Synchronized
     * with {@link #close}: a late shutdown must never reach a descriptor number the process has reused.
     */
    synchronized void shutdown() {
        if (!shut) {
            shut = true;
            try (Arena arena = Arena.ofConfined()) {
                SocketCalls.shutdown(arena.allocate(STATE_BYTES, 8), fd, SHUT_RDWR);
            }
        }
    }

    boolean isShut() {
        return shut;
    }

    /** Releases the descriptor: once, after every thread that used it has stopped. */
    synchronized void close() {
        shutdown();
        if (!released) {
            released = true;
            SocketCalls.close(fd);
        }
    }

    // ------------------------------------------------------------------ handshake (blocking, may allocate)

    /** Reads exactly {@code buffer.remaining()} bytes; EOFException if the server closes the connection first. */
    void readFully(ByteBuffer buffer, String what) throws IOException {
        while (buffer.hasRemaining()) {
            int want = Math.min(buffer.remaining(), STAGING_BYTES);
            long n = read(state, staging.address(), want);
            if (n == 0) {
                throw new EOFException(what);
            }
            if (n < 0) {
                throw new IOException("receiving failed: errno " + -n);
            }
            buffer.put(staging.asSlice(0, n).asByteBuffer());
        }
    }

    /** Writes all of {@code buffer}, waiting as long as the socket is full. */
    void writeFully(ByteBuffer buffer) throws IOException {
        MemorySegment message = state.asSlice(STATE_BYTES, MSGHDR_BYTES + 16);
        while (buffer.hasRemaining()) {
            int n = Math.min(buffer.remaining(), STAGING_BYTES);
            MemorySegment.copy(MemorySegment.ofBuffer(buffer), 0, staging, 0, n);
            long done = 0;
            while (done < n) {
                message.fill((byte) 0);
                long iovec = message.address() + MSGHDR_BYTES;
                message.set(JAVA_LONG, MSG_IOV, iovec);
                message.set(JAVA_LONG, MSG_IOVLEN, 1);
                message.set(JAVA_LONG, MSGHDR_BYTES, staging.address() + done);
                message.set(JAVA_LONG, MSGHDR_BYTES + 8, n - done);
                long sent = sendmsg(state, fd, message.address(), MSG_NOSIGNAL);
                if (sent < 0 && sent != -EINTR) {
                    throw new IOException("sending failed: errno " + -sent);
                }
                done += Math.max(0, sent);
            }
            buffer.position(buffer.position() + n);
        }
    }
}
