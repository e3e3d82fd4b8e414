package io.javadevices.vfiouser.server;

import io.javadevices.vfiouser.irq.EventfdInterrupts;
import io.javadevices.vfiouser.protocol.Capabilities;
import io.javadevices.vfiouser.protocol.Messages;
import io.javadevices.vfiouser.protocol.Messages.DeviceGetInfo;
import io.javadevices.vfiouser.protocol.Messages.DeviceReset;
import io.javadevices.vfiouser.protocol.Messages.DmaMap;
import io.javadevices.vfiouser.protocol.Messages.DmaUnmap;
import io.javadevices.vfiouser.protocol.Messages.IrqInfoRequest;
import io.javadevices.vfiouser.protocol.Messages.Message;
import io.javadevices.vfiouser.protocol.Messages.RegionAccess;
import io.javadevices.vfiouser.protocol.Messages.RegionInfoRequest;
import io.javadevices.vfiouser.protocol.Messages.SetIrqs;
import io.javadevices.vfiouser.protocol.Messages.Version;
import io.javadevices.vfiouser.protocol.Messages.WriteMulti;
import io.javadevices.vfiouser.protocol.VfioUserError;
import io.javadevices.vfiouser.sys.Errno;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.transport.MessageChannel;

import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.FLAG_NO_REPLY;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.FLAG_TYPE_MASK;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.FLAG_TYPE_REPLY;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.SUPPORTED_MAJOR;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.SUPPORTED_MINOR;
import static io.javadevices.vfiouser.protocol.WireStructs.HEADER_SIZE;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * One client session: receives messages in order ({@link MessageChannel}), decodes each once
 * ({@link Messages}), hands it to the device side ({@link DeviceRequests}) and answers in one place,
 * {@link #serveOne} (libvfio-user's {@code exec_command} then {@code do_reply}): a handler's reply body,
 * or the errno of the {@link VfioUserError} it threw. On disconnect it releases everything the client
 * gave the server. Runs on its own thread (one per connected client, never one per message); device BAR
 * handlers and config accesses are called from this thread, one at a time.
 */
final class Connection implements Runnable {
    private static final System.Logger LOG = System.getLogger(VfioUserServer.class.getName());

    private final VfioUserServer server;
    private final Limits limits;
    private final MessageChannel channel;
    private final Messages messages = new Messages();
    private final DeviceRequests requests;
    private final String name;
    private volatile boolean serverStopping;

    Connection(VfioUserServer server, int fd, String name) {
        this.server = server;
        this.limits = server.limits();
        this.name = name;
        EventfdInterrupts interrupts = server.interrupts();
        this.channel = new MessageChannel(fd, name, limits.maxFdsPerMessage(), limits.maxMessageBytes(),
                RegionAccess.DATA + (long) limits.maxDataXferSize(), new MessageChannel.Sideband() {
                    @Override
                    public int fd() {
                        return interrupts.resampleFd();
                    }

                    @Override
                    public void events(short revents) {
                        interrupts.resampleEvents(revents);
                    }
                });
        this.requests = new DeviceRequests(server);
    }

    /** Wakes the session (from any thread): its receive sees end of stream and it cleans up. */
    void disconnect() {
        serverStopping = true;
        channel.shutdown();
    }

    @Override
    public void run() {
        String reason = "client closed the connection";
        try {
            while (serveOne()) {
                // next message
            }
        } catch (ErrnoException e) {
            reason = e.errno() == Errno.ECONNRESET ? "connection reset by client" : e.getMessage();
        } catch (RuntimeException | Error e) {
            reason = "internal error: " + e;
            LOG.log(System.Logger.Level.ERROR, "vfio-user session " + name + " failed", e);
        } finally {
            channel.closeFds();
            cleanup(serverStopping ? "server stopping" : reason);
        }
    }

    /** Releases the session's resources ({@link SessionTeardown}); the socket closes and the session ends whatever happens. */
    private void cleanup(String reason) {
        int maps = server.dma().count();
        try {
            SessionTeardown.release(server);
        } finally {
            channel.close();
            LOG.log(System.Logger.Level.INFO, "vfio-user client " + name + " disconnected (" + reason
                    + "; released " + maps + " DMA mappings, device reset)");
            server.sessionEnded(this);
        }
    }

    /** Reads, handles and answers one message; false when the session ends. */
    private boolean serveOne() throws ErrnoException {
        MessageChannel.Received received = channel.receive();
        if (received == MessageChannel.Received.CLOSED) {
            return false;
        }
        server.countMessage();
        int id = channel.messageId();
        int command = channel.command();
        boolean noReply = (channel.flags() & FLAG_NO_REPLY) != 0;
        if (received != MessageChannel.Received.MESSAGE) {
            // BAD_SIZE or TRUNCATED: where the next message starts is unknown, so the session ends.
            if (received == MessageChannel.Received.BAD_SIZE && !noReply) {
                replyError(id, command, channel.size() < HEADER_SIZE ? Errno.EINVAL : Errno.E2BIG);
            }
            return false;
        }
        if ((channel.flags() & FLAG_TYPE_MASK) == FLAG_TYPE_REPLY) {
            // The server never sends requests (no DMA_READ/WRITE), so any reply is unexpected. Answering
            // a reply could desynchronise the client; drop it.
            channel.closeFds();
            LOG.log(System.Logger.Level.DEBUG, "ignoring unexpected reply from client " + name);
            return true;
        }
        int payload;
        int errno = 0;
        try {
            payload = handle(messages.decode(channel.header(), channel.body(), channel.bodyLength(), channel));
        } catch (VfioUserError e) {
            payload = 0;
            errno = e.errno();
            if (e.getMessage() != null) {
                LOG.log(System.Logger.Level.DEBUG, "client " + name + ": " + e.getMessage());
            }
        } finally {
            channel.closeFds();
        }
        int fd = requests.takeReplyFd();
        if (noReply) {
            return true;
        }
        if (errno != 0) {
            replyError(id, command, errno);
        } else {
            channel.sendReply(id, command, payload, fd);
        }
        return true;
    }

    private void replyError(int id, int command, int errno) throws ErrnoException {
        server.countErrorReply();
        channel.sendError(id, command, errno);
    }

    /** Runs one decoded request; returns the reply body length (the body is in the channel's reply buffer). */
    private int handle(Message message) throws VfioUserError {
        MemorySegment reply = channel.replyPayload();
        return switch (message) {
            case RegionAccess a when a.write() -> requests.regionWrite(a, channel.body(), reply);
            case RegionAccess a -> requests.regionRead(a, reply);
            case Version v -> version(v, reply);
            case DmaMap m -> requests.dmaMap(m, channel);
            case DmaUnmap m -> requests.dmaUnmap(m, reply);
            case DeviceGetInfo _ -> requests.deviceInfo(reply);
            case RegionInfoRequest m -> requests.regionInfo(m, reply);
            case IrqInfoRequest m -> requests.irqInfo(m, reply);
            case SetIrqs m -> requests.setIrqs(m, channel);
            case WriteMulti m -> requests.regionWriteMulti(m, reply);
            case DeviceReset _ -> requests.reset();
        };
    }

    /** VFIO_USER_VERSION: records the client's capabilities and answers with ours. */
    private int version(Version request, MemorySegment reply) {
        server.clientCapabilities(request.client());
        Capabilities ours = new Capabilities(limits.maxFdsPerMessage(), limits.maxDataXferSize(), 4096,
                limits.maxDmaMaps(), false);
        byte[] text = ours.toServerJson().getBytes(StandardCharsets.UTF_8);
        // QEMU sizes its reply buffer from its request (vfio_user_validate_version): never answer with
        // more bytes than it sent.
        int length = request.requestLength();
        if (Version.JSON + text.length + 1 > length) {
            text = ("{\"capabilities\":{\"max_msg_fds\":" + limits.maxFdsPerMessage() + ",\"max_data_xfer_size\":"
                    + limits.maxDataXferSize() + "}}").getBytes(StandardCharsets.UTF_8);
        }
        if (Version.JSON + text.length + 1 > length) {
            text = "{}".getBytes(StandardCharsets.UTF_8);
        }
        Version.MAJOR.set(reply, SUPPORTED_MAJOR);
        Version.MINOR.set(reply, SUPPORTED_MINOR);
        MemorySegment.copy(text, 0, reply, JAVA_BYTE, Version.JSON, text.length);
        reply.set(JAVA_BYTE, Version.JSON + text.length, (byte) 0);
        return Version.JSON + text.length + 1;
    }
}
