package io.javadevices.vfiouser.transport;

import io.javadevices.vfiouser.protocol.Field;
import io.javadevices.vfiouser.protocol.ReceivedFds;
import io.javadevices.vfiouser.protocol.WireStructs;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.LibC;
import io.javadevices.vfiouser.sys.SocketStructs;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.FLAG_ERROR;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.FLAG_TYPE_REPLY;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.commandName;
import static io.javadevices.vfiouser.protocol.WireStructs.HEADER_SIZE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * The message layer of a vfio-user session (libvfio-user's {@code struct transport_ops} over
 * {@code tran_sock.c}: {@code get_request_header}, {@code recv_body}, {@code reply}): reads whole
 * messages with their fds and sends replies. It knows no device and no command beyond the header.
 *
 * <p><b>Framing.</b> The 16-byte header is read with a control buffer for {@code maxFds} fds (fds ride
 * on the header's sendmsg); the body is read without one, so the kernel drops fds attached to later
 * bytes. Partial reads are looped. A size below 16 or above {@code maxMessageBytes} cannot be skipped
 * (the next message's position is unknown), so it ends the session. Buffers (header, body, reply) are
 * allocated once; receiving and replying allocate nothing.
 *
 * <p>One thread (the session's) uses a channel; {@link #shutdown} may be called from any thread.
 */
public final class MessageChannel implements ReceivedFds, AutoCloseable {
    private static final System.Logger LOG = System.getLogger(MessageChannel.class.getName());
    private static final Field.U16 MSG_ID = Field.U16.of(WireStructs.HEADER, "msg_id");
    private static final Field.U16 COMMAND = Field.U16.of(WireStructs.HEADER, "command");
    private static final Field.U32 MSG_SIZE = Field.U32.of(WireStructs.HEADER, "msg_size");
    private static final Field.U32 FLAGS = Field.U32.of(WireStructs.HEADER, "flags");
    private static final Field.U32 ERROR = Field.U32.of(WireStructs.HEADER, "error");

    /** What {@link #receive} found. */
    public enum Received {
        /** A whole message: header, body and fds are ready. */
        MESSAGE,
        /** The client closed the connection between messages or within a header. */
        CLOSED,
        /** The client closed the connection within a message body (the header is readable). */
        TRUNCATED,
        /** The header announced a size outside 16..maxMessageBytes; nothing more was read. */
        BAD_SIZE
    }

    /**
     * A second fd polled while the channel waits for the next message (the INTx resample eventfd, which
     * a session serves on its own thread as libvfio-user does in its run loop).
     */
    public interface Sideband {
        /** The fd to watch, or negative for none. */
        int fd();

        /** Called after every poll with the {@code revents} of {@link #fd()} (0 when nothing happened on it). */
        void events(short revents);
    }

    private final UnixSocket socket;
    private final String name;
    private final int maxMessageBytes;
    private final Sideband sideband;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment header;
    private final MemorySegment body;
    private final MemorySegment reply;
    private final MemorySegment replyPayload;
    private final MemorySegment pollFds;
    private final int[] fds;
    private final int[] replyFd = new int[1];
    private int fdCount;
    private boolean fdsTruncated;

    /**
     * @param fd             the connected socket, owned by the channel from now on
     * @param maxReplyBody   the largest reply body this session sends
     */
    public MessageChannel(int fd, String name, int maxFds, int maxMessageBytes, long maxReplyBody, Sideband sideband) {
        this.socket = new UnixSocket(fd, maxFds, 1);
        this.name = name;
        this.maxMessageBytes = maxMessageBytes;
        this.sideband = sideband;
        this.header = arena.allocate(HEADER_SIZE, 8);
        this.body = arena.allocate(maxMessageBytes - HEADER_SIZE, 8);
        this.reply = arena.allocate(HEADER_SIZE + maxReplyBody, 8);
        this.replyPayload = reply.asSlice(HEADER_SIZE);
        this.pollFds = arena.allocate(SocketStructs.POLLFD, 2);
        this.fds = new int[maxFds];
    }

    /** Reads the next message; on anything but {@link Received#MESSAGE} no fds are left open. */
    public Received receive() throws ErrnoException {
        closeFds();
        fdsTruncated = false;
        long got = 0;
        while (got < HEADER_SIZE) {
            if (got == 0) {
                waitReadable();
            }
            long n = socket.receive(header, got, HEADER_SIZE - got, true);
            collectFds();
            if (n == 0) {
                closeFds();
                if (got != 0) {
                    LOG.log(System.Logger.Level.WARNING, "client " + name + " closed mid-header");
                }
                return Received.CLOSED;
            }
            got += n;
        }
        long size = MSG_SIZE.get(header);
        if (size < HEADER_SIZE || size > maxMessageBytes) {
            closeFds();
            LOG.log(System.Logger.Level.WARNING, "client " + name + " sent a " + commandName(command())
                    + " message of " + size + " bytes (limit " + maxMessageBytes + "); disconnecting");
            return Received.BAD_SIZE;
        }
        int bodyLength = bodyLength();
        long read = 0;
        while (read < bodyLength) {
            long n = socket.receive(body, read, bodyLength - read, false);
            if (n == 0) {
                closeFds();
                LOG.log(System.Logger.Level.WARNING, "client " + name + " closed in the middle of a "
                        + commandName(command()) + " message");
                return Received.TRUNCATED;
            }
            read += n;
        }
        return Received.MESSAGE;
    }

    public MemorySegment header() {
        return header;
    }

    public MemorySegment body() {
        return body;
    }

    public int messageId() {
        return MSG_ID.get(header);
    }

    public int command() {
        return COMMAND.get(header);
    }

    public int flags() {
        return FLAGS.bits(header);
    }

    /** The announced message size, 16 or more once {@link #receive} returned MESSAGE. */
    public long size() {
        return MSG_SIZE.get(header);
    }

    public int bodyLength() {
        return (int) (size() - HEADER_SIZE);
    }

    /** Where a reply's body is written before {@link #sendReply}. */
    public MemorySegment replyPayload() {
        return replyPayload;
    }

    @Override
    public int count() {
        return fdCount;
    }

    @Override
    public boolean truncated() {
        return fdsTruncated;
    }

    @Override
    public int take(int i) {
        int fd = fds[i];
        fds[i] = -1;
        return fd;
    }

    /** Closes the fds of the current message that no handler took. */
    public void closeFds() {
        for (int i = 0; i < fdCount; i++) {
            LibC.closeQuietly(fds[i]);
            fds[i] = -1;
        }
        fdCount = 0;
    }

    /**
     * Sends a reply whose {@code payload} body bytes are already in {@link #replyPayload()}, with
     * {@code fd} attached when it is not negative (sendmsg duplicates it into the client).
     */
    public void sendReply(int id, int command, int payload, int fd) throws ErrnoException {
        MSG_ID.set(reply, id);
        COMMAND.set(reply, command);
        MSG_SIZE.set(reply, HEADER_SIZE + payload);
        FLAGS.set(reply, FLAG_TYPE_REPLY);
        ERROR.set(reply, 0);
        replyFd[0] = fd;
        socket.send(reply, 0, HEADER_SIZE + payload, fd >= 0 ? replyFd : null, fd >= 0 ? 1 : 0);
    }

    /** Sends a header-only error reply carrying the positive {@code errno}. */
    public void sendError(int id, int command, int errno) throws ErrnoException {
        MSG_ID.set(header, id);
        COMMAND.set(header, command);
        MSG_SIZE.set(header, HEADER_SIZE);
        FLAGS.set(header, FLAG_TYPE_REPLY | FLAG_ERROR);
        ERROR.set(header, errno);
        socket.send(header, 0, HEADER_SIZE, null, 0);
    }

    /** Wakes a blocked {@link #receive} (from any thread): it sees end of stream. */
    public void shutdown() {
        socket.shutdown();
    }

    @Override
    public void close() {
        closeFds();
        socket.close();
        arena.close();
    }

    /** Blocks until the socket is readable; meanwhile serves the sideband fd if there is one. */
    private void waitReadable() throws ErrnoException {
        while (true) {
            int extra = sideband.fd();
            if (extra < 0) {
                return;
            }
            long second = SocketStructs.POLLFD.byteSize();
            pollFds.set(JAVA_INT, SocketStructs.POLL_FD, socket.fd());
            pollFds.set(JAVA_SHORT, SocketStructs.POLL_EVENTS, LibC.POLLIN);
            pollFds.set(JAVA_SHORT, SocketStructs.POLL_REVENTS, (short) 0);
            pollFds.set(JAVA_INT, second + SocketStructs.POLL_FD, extra);
            pollFds.set(JAVA_SHORT, second + SocketStructs.POLL_EVENTS, LibC.POLLIN);
            pollFds.set(JAVA_SHORT, second + SocketStructs.POLL_REVENTS, (short) 0);
            LibC.poll(pollFds, 2, -1);
            sideband.events(pollFds.get(JAVA_SHORT, second + SocketStructs.POLL_REVENTS));
            if (pollFds.get(JAVA_SHORT, SocketStructs.POLL_REVENTS) != 0) {
                return;
            }
        }
    }

    private void collectFds() {
        if (socket.controlTruncated()) {
            fdsTruncated = true;
        }
        for (int i = 0; i < socket.receivedFdCount(); i++) {
            int fd = socket.receivedFd(i);
            if (fdCount < fds.length) {
                fds[fdCount++] = fd;
            } else {
                LibC.closeQuietly(fd);
                fdsTruncated = true;
            }
        }
    }
}
