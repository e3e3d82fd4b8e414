package io.javadevices.vfiouser.server;

import io.javadevices.pci.Bar;
import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.MmioAccess;
import io.javadevices.pci.PciDevice;
import io.javadevices.vfiouser.device.DeviceLayout;
import io.javadevices.vfiouser.device.RegionInfo;
import io.javadevices.vfiouser.dma.DmaMappings;
import io.javadevices.vfiouser.irq.EventfdInterrupts;
import io.javadevices.vfiouser.protocol.Capabilities;
import io.javadevices.vfiouser.sys.Errno;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.LibC;
import io.javadevices.vfiouser.sys.SocketStructs;
import io.javadevices.vfiouser.transport.UnixSocket;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static io.javadevices.vfiouser.protocol.Wire.i32;
import static io.javadevices.vfiouser.protocol.Wire.putU16;
import static io.javadevices.vfiouser.protocol.Wire.putU32;
import static io.javadevices.vfiouser.protocol.Wire.putU64;
import static io.javadevices.vfiouser.protocol.Wire.u16;
import static io.javadevices.vfiouser.protocol.Wire.u32;
import static io.javadevices.vfiouser.protocol.Wire.u64;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * One client session: reads messages from the socket in order, answers them, and on disconnect releases
 * everything the client gave the server. Runs on its own thread (one per connected client, never one per
 * message); device BAR handlers and config accesses are called from this thread, one at a time.
 *
 * <p><b>Framing.</b> The 16-byte header is read with a control buffer for {@code maxFdsPerMessage} fds
 * (fds ride on the header's sendmsg); the body is read without one, so the kernel drops fds attached to
 * later bytes. Partial reads are looped; header sizes are validated before anything is read further.
 * A size below 16 or above the limit gets an error reply and a disconnect: the stream position of the
 * next message is then unknown. Any other bad message is consumed completely before its error reply.
 * Buffers (header, body, reply, msghdr/iovec/cmsg) are allocated once per connection.
 */
final class Connection implements Runnable {
    private static final System.Logger LOG = System.getLogger(VfioUserServer.class.getName());

    private final VfioUserServer server;
    private final UnixSocket socket;
    private final Limits limits;
    private final PciDevice device;
    private final ConfigSpace config;
    private final DeviceLayout layout;
    private final DmaMappings dma;
    private final EventfdInterrupts interrupts;
    private final String name;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment header;
    private final MemorySegment body;
    private final MemorySegment reply;
    private final MemorySegment replyPayload;
    private final MemorySegment pollFds;
    private final int[] fds;
    private final byte[] configScratch;
    private int fdCount;
    private boolean fdsTruncated;
    /** The fd the next reply carries (a region's mmap fd), or none when {@link #replyFdCount} is 0. */
    private final int[] replyFd = new int[1];
    private int replyFdCount;
    private volatile boolean serverStopping;

    Connection(VfioUserServer server, int fd, String name) {
        this.server = server;
        this.limits = server.limits();
        this.socket = new UnixSocket(fd, limits.maxFdsPerMessage(), 1);
        this.device = server.device();
        this.config = device.config();
        this.layout = server.layout();
        this.dma = server.dma();
        this.interrupts = server.interrupts();
        this.name = name;
        this.header = arena.allocate(HEADER_SIZE, 8);
        this.body = arena.allocate(limits.maxMessageBytes() - HEADER_SIZE, 8);
        this.reply = arena.allocate(HEADER_SIZE + REGION_RW_SIZE + limits.maxDataXferSize(), 8);
        this.replyPayload = reply.asSlice(HEADER_SIZE);
        this.pollFds = arena.allocate(SocketStructs.POLLFD, 2);
        this.fds = new int[limits.maxFdsPerMessage()];
        this.configScratch = new byte[Math.max(4096, config.size())];
    }

    /** Wakes the session (from any thread): its receive sees end of stream and it cleans up. */
    void disconnect() {
        serverStopping = true;
        socket.shutdown();
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
            closeFds();
            cleanup(serverStopping ? "server stopping" : reason);
        }
    }

    /** Releases the session's resources ({@link SessionTeardown}); the socket closes and the session ends whatever happens. */
    private void cleanup(String reason) {
        int maps = dma.count();
        try {
            SessionTeardown.release(server);
        } finally {
            socket.close();
            arena.close();
            LOG.log(System.Logger.Level.INFO, "vfio-user client " + name + " disconnected (" + reason
                    + "; released " + maps + " DMA mappings, device reset)");
            server.sessionEnded(this);
        }
    }

    // ================================================================== framing

    /** Reads and handles one message; false at end of stream. */
    private boolean serveOne() throws ErrnoException {
        fdCount = 0;
        fdsTruncated = false;
        long got = 0;
        while (got < HEADER_SIZE) {
            if (got == 0) {
                waitReadable();
            }
            long n = socket.receive(header, got, HEADER_SIZE - got, true);
            takeFds();
            if (n == 0) {
                if (got != 0) {
                    LOG.log(System.Logger.Level.WARNING, "client " + name + " closed mid-header");
                }
                return false;
            }
            got += n;
        }
        server.countMessage();
        int id = u16(header, HDR_MSG_ID);
        int command = u16(header, HDR_COMMAND);
        long size = u32(header, HDR_MSG_SIZE);
        int flags = i32(header, HDR_FLAGS);
        boolean noReply = (flags & FLAG_NO_REPLY) != 0;
        if (size < HEADER_SIZE || size > limits.maxMessageBytes()) {
            closeFds();
            LOG.log(System.Logger.Level.WARNING, "client " + name + " sent a " + commandName(command)
                    + " message of " + size + " bytes (limit " + limits.maxMessageBytes() + "); disconnecting");
            if (!noReply) {
                sendError(id, command, size < HEADER_SIZE ? Errno.EINVAL : Errno.E2BIG);
            }
            return false;
        }
        int bodyLength = (int) (size - HEADER_SIZE);
        long read = 0;
        while (read < bodyLength) {
            long n = socket.receive(body, read, bodyLength - read, false);
            if (n == 0) {
                closeFds();
                LOG.log(System.Logger.Level.WARNING, "client " + name + " closed in the middle of a "
                        + commandName(command) + " message");
                return false;
            }
            read += n;
        }
        int type = flags & FLAG_TYPE_MASK;
        if (type == FLAG_TYPE_REPLY) {
            // The server never sends requests (no DMA_READ/WRITE), so any reply is unexpected. Answering
            // a reply could desynchronise the client; drop it.
            closeFds();
            LOG.log(System.Logger.Level.DEBUG, "ignoring unexpected reply from client " + name);
            return true;
        }
        int error;
        if (type != FLAG_TYPE_COMMAND || (flags & FLAG_ERROR) != 0) {
            error = Errno.EINVAL;
        } else if (fdsTruncated) {
            error = Errno.EINVAL; // more fds than max_msg_fds: the kernel dropped some
        } else {
            error = dispatch(command, bodyLength, noReply);
        }
        closeFds();
        if (error < 0) {
            return true; // reply already sent (or suppressed)
        }
        if (error > 0) {
            if (!noReply) {
                sendError(id, command, error);
            }
            return true;
        }
        return true;
    }

    /** Blocks until the socket is readable; meanwhile serves the INTx resample eventfd if one is set. */
    private void waitReadable() throws ErrnoException {
        while (true) {
            int resample = interrupts.resampleFd();
            if (resample < 0) {
                return;
            }
            long second = SocketStructs.POLLFD.byteSize();
            pollFds.set(JAVA_INT, SocketStructs.POLL_FD, socket.fd());
            pollFds.set(JAVA_SHORT, SocketStructs.POLL_EVENTS, LibC.POLLIN);
            pollFds.set(JAVA_SHORT, SocketStructs.POLL_REVENTS, (short) 0);
            pollFds.set(JAVA_INT, second + SocketStructs.POLL_FD, resample);
            pollFds.set(JAVA_SHORT, second + SocketStructs.POLL_EVENTS, LibC.POLLIN);
            pollFds.set(JAVA_SHORT, second + SocketStructs.POLL_REVENTS, (short) 0);
            LibC.poll(pollFds, 2, -1);
            interrupts.resampleEvents(pollFds.get(JAVA_SHORT, second + SocketStructs.POLL_REVENTS));
            if (pollFds.get(JAVA_SHORT, SocketStructs.POLL_REVENTS) != 0) {
                return;
            }
        }
    }

    private void takeFds() {
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

    private void closeFds() {
        for (int i = 0; i < fdCount; i++) {
            LibC.closeQuietly(fds[i]);
            fds[i] = -1;
        }
        fdCount = 0;
    }

    /** Takes ownership of received fd {@code i} (the session no longer closes it). */
    private int takeFd(int i) {
        int fd = fds[i];
        fds[i] = -1;
        return fd;
    }

    private void sendError(int id, int command, int errno) throws ErrnoException {
        putU16(header, HDR_MSG_ID, id);
        putU16(header, HDR_COMMAND, command);
        putU32(header, HDR_MSG_SIZE, HEADER_SIZE);
        putU32(header, HDR_FLAGS, FLAG_TYPE_REPLY | FLAG_ERROR);
        putU32(header, HDR_ERROR, errno);
        server.countErrorReply();
        socket.send(header, 0, HEADER_SIZE, null, 0);
    }

    /** Sends {@code payload} bytes already placed at {@code reply[16..]}. */
    private void sendReply(int id, int command, int payload) throws ErrnoException {
        putU16(reply, HDR_MSG_ID, id);
        putU16(reply, HDR_COMMAND, command);
        putU32(reply, HDR_MSG_SIZE, HEADER_SIZE + payload);
        putU32(reply, HDR_FLAGS, FLAG_TYPE_REPLY);
        putU32(reply, HDR_ERROR, 0);
        int fdsToSend = replyFdCount;
        replyFdCount = 0;
        socket.send(reply, 0, HEADER_SIZE + payload, fdsToSend > 0 ? replyFd : null, fdsToSend);
    }

    // ================================================================== commands

    /**
     * Handles one command whose body is in {@link #body}.
     *
     * @return a positive errno for an error reply, or -1 when the reply was sent (or NO_REPLY suppressed it)
     */
    private int dispatch(int command, int length, boolean noReply) throws ErrnoException {
        int id = u16(header, HDR_MSG_ID);
        if (command != CMD_DMA_MAP && command != CMD_DEVICE_SET_IRQS && fdCount > 0) {
            return Errno.EINVAL; // fds where none belong: closed by the caller
        }
        int payload = switch (command) {
            case CMD_VERSION -> version(length);
            case CMD_DMA_MAP -> dmaMap(length);
            case CMD_DMA_UNMAP -> dmaUnmap(length);
            case CMD_DEVICE_GET_INFO -> deviceInfo(length);
            case CMD_DEVICE_GET_REGION_INFO -> regionInfo(length);
            case CMD_DEVICE_GET_IRQ_INFO -> irqInfo(length);
            case CMD_DEVICE_SET_IRQS -> setIrqs(length);
            case CMD_REGION_READ -> regionRead(length);
            case CMD_REGION_WRITE -> regionWrite(length);
            case CMD_REGION_WRITE_MULTI -> regionWriteMulti(length);
            case CMD_DEVICE_RESET -> reset(length);
            default -> -Errno.ENOSYS;
        };
        if (payload < 0) {
            replyFdCount = 0;
            return -payload;
        }
        if (!noReply) {
            sendReply(id, command, payload);
        }
        replyFdCount = 0;
        return -1;
    }

    private MemorySegment out() {
        return replyPayload;
    }

    private int version(int length) {
        if (length < VERSION_JSON + 1) {
            return -Errno.EINVAL;
        }
        int major = u16(body, VERSION_MAJOR);
        if (major != SUPPORTED_MAJOR) {
            return -Errno.ENOTSUP;
        }
        int jsonLength = length - VERSION_JSON;
        if (body.get(JAVA_BYTE, length - 1) == 0) {
            jsonLength--;
        }
        byte[] json = new byte[jsonLength];
        MemorySegment.copy(body, JAVA_BYTE, VERSION_JSON, json, 0, jsonLength);
        Capabilities client;
        try {
            client = Capabilities.parse(new String(json, StandardCharsets.UTF_8));
        } catch (IllegalArgumentException e) {
            LOG.log(System.Logger.Level.DEBUG, "client " + name + " sent bad VERSION JSON: " + e.getMessage());
            return -Errno.EINVAL;
        }
        server.clientCapabilities(client);
        Capabilities ours = new Capabilities(limits.maxFdsPerMessage(), limits.maxDataXferSize(), 4096,
                limits.maxDmaMaps(), false);
        byte[] text = ours.toServerJson().getBytes(StandardCharsets.UTF_8);
        // QEMU sizes its reply buffer from its request: never answer with more bytes than it sent.
        if (VERSION_JSON + text.length + 1 > length) {
            text = ("{\"capabilities\":{\"max_msg_fds\":" + limits.maxFdsPerMessage() + ",\"max_data_xfer_size\":"
                    + limits.maxDataXferSize() + "}}").getBytes(StandardCharsets.UTF_8);
        }
        if (VERSION_JSON + text.length + 1 > length) {
            text = "{}".getBytes(StandardCharsets.UTF_8);
        }
        MemorySegment o = out();
        putU16(o, VERSION_MAJOR, SUPPORTED_MAJOR);
        putU16(o, VERSION_MINOR, SUPPORTED_MINOR);
        MemorySegment.copy(text, 0, o, JAVA_BYTE, VERSION_JSON, text.length);
        o.set(JAVA_BYTE, VERSION_JSON + text.length, (byte) 0);
        return VERSION_JSON + text.length + 1;
    }

    private int dmaMap(int length) {
        if (length < DMA_MAP_SIZE || u32(body, DMA_MAP_ARGSZ) < DMA_MAP_SIZE || u32(body, DMA_MAP_ARGSZ) > length
                || fdCount > 1) {
            return -Errno.EINVAL;
        }
        int fd = fdCount == 1 ? takeFd(0) : -1;
        int error = dma.map(u64(body, DMA_MAP_ADDRESS), u64(body, DMA_MAP_SIZE_FIELD), u64(body, DMA_MAP_OFFSET),
                i32(body, DMA_MAP_FLAGS), fd);
        return error == 0 ? 0 : -error;
    }

    private int dmaUnmap(int length) {
        if (length < DMA_UNMAP_SIZE || u32(body, DMA_UNMAP_ARGSZ) < DMA_UNMAP_SIZE
                || u32(body, DMA_UNMAP_ARGSZ) > length) {
            return -Errno.EINVAL;
        }
        int flags = i32(body, DMA_UNMAP_FLAGS);
        long address = u64(body, DMA_UNMAP_ADDRESS);
        long size = u64(body, DMA_UNMAP_SIZE_FIELD);
        if (flags == DMA_UNMAP_FLAG_ALL) {
            // The kernel wants address = size = 0 with UNMAP_ALL; QEMU sends that, but the intent of the
            // flag is unambiguous, so other values are not worth a (fatal for QEMU) error.
            dma.unmapAll();
        } else if (flags == 0) {
            int error = dma.unmap(address, size);
            if (error != 0) {
                return -error;
            }
        } else {
            return -(flags == DMA_UNMAP_FLAG_GET_DIRTY_BITMAP ? Errno.ENOTSUP : Errno.EINVAL);
        }
        MemorySegment o = out();
        putU32(o, DMA_UNMAP_ARGSZ, DMA_UNMAP_SIZE);
        putU32(o, DMA_UNMAP_FLAGS, flags);
        putU64(o, DMA_UNMAP_ADDRESS, address);
        putU64(o, DMA_UNMAP_SIZE_FIELD, size);
        return DMA_UNMAP_SIZE;
    }

    private int deviceInfo(int length) {
        if (length < DEVICE_INFO_SIZE || u32(body, DEVICE_INFO_ARGSZ) < DEVICE_INFO_SIZE) {
            return -Errno.EINVAL;
        }
        MemorySegment o = out();
        putU32(o, DEVICE_INFO_ARGSZ, DEVICE_INFO_SIZE);
        putU32(o, DEVICE_INFO_FLAGS, DEVICE_FLAGS_PCI | DEVICE_FLAGS_RESET);
        putU32(o, DEVICE_INFO_NUM_REGIONS, layout.regionCount());
        putU32(o, DEVICE_INFO_NUM_IRQS, layout.irqCount());
        return DEVICE_INFO_SIZE;
    }

    private int regionInfo(int length) {
        if (length < REGION_INFO_SIZE) {
            return -Errno.EINVAL;
        }
        long argsz = u32(body, REGION_INFO_ARGSZ);
        long index = u32(body, REGION_INFO_INDEX);
        if (argsz < REGION_INFO_SIZE || index >= layout.regionCount()) {
            return -Errno.EINVAL;
        }
        RegionInfo r = layout.region((int) index);
        // A region with sparse areas needs the 32-byte struct plus a sparse-mmap capability. QEMU asks
        // with argsz = 32 first: then the reply says the full argsz and carries neither caps nor fd, and
        // QEMU asks again with the bigger argsz (vfio-user.md §1.7; libvfio-user does the same).
        int areas = r.sparseAreas().size();
        int capBytes = areas == 0 ? 0 : CAP_SPARSE_AREAS + areas * CAP_SPARSE_AREA_SIZE;
        int full = REGION_INFO_SIZE + capBytes;
        boolean complete = argsz >= full;
        boolean withCaps = capBytes > 0 && complete;
        MemorySegment o = out();
        putU32(o, REGION_INFO_ARGSZ, full);
        putU32(o, REGION_INFO_FLAGS, r.flags() | (withCaps ? REGION_FLAG_CAPS : 0));
        putU32(o, REGION_INFO_INDEX, index);
        putU32(o, REGION_INFO_CAP_OFFSET, withCaps ? REGION_INFO_SIZE : 0);
        putU64(o, REGION_INFO_SIZE_FIELD, r.size());
        putU64(o, REGION_INFO_OFFSET, r.offset());
        if (!complete) {
            return REGION_INFO_SIZE;
        }
        if (withCaps) {
            MemorySegment cap = o.asSlice(REGION_INFO_SIZE);
            putU16(cap, 0, CAP_ID_SPARSE_MMAP);
            putU16(cap, 2, 1); // version
            putU32(cap, 4, 0); // next: none
            putU32(cap, CAP_SPARSE_NR_AREAS, areas);
            putU32(cap, CAP_SPARSE_NR_AREAS + 4, 0);
            for (int i = 0; i < areas; i++) {
                RegionInfo.SparseArea a = r.sparseAreas().get(i);
                putU64(cap, CAP_SPARSE_AREAS + (long) i * CAP_SPARSE_AREA_SIZE, a.offset());
                putU64(cap, CAP_SPARSE_AREAS + (long) i * CAP_SPARSE_AREA_SIZE + 8, a.size());
            }
        }
        if ((r.flags() & REGION_FLAG_MMAP) != 0 && r.mmapFd() >= 0) {
            replyFd[0] = r.mmapFd(); // exactly one fd per region; sendmsg duplicates it into the client
            replyFdCount = 1;
        }
        return full;
    }

    private int irqInfo(int length) {
        if (length < IRQ_INFO_SIZE || u32(body, IRQ_INFO_ARGSZ) < IRQ_INFO_SIZE) {
            return -Errno.EINVAL;
        }
        long index = u32(body, IRQ_INFO_INDEX);
        if (index >= layout.irqCount()) {
            return -Errno.EINVAL;
        }
        MemorySegment o = out();
        putU32(o, IRQ_INFO_ARGSZ, IRQ_INFO_SIZE);
        putU32(o, IRQ_INFO_FLAGS, layout.irqFlags((int) index));
        putU32(o, IRQ_INFO_INDEX, index);
        putU32(o, IRQ_INFO_COUNT, layout.irqVectors((int) index));
        return IRQ_INFO_SIZE;
    }

    private int setIrqs(int length) {
        if (length < SET_IRQS_SIZE) {
            return -Errno.EINVAL;
        }
        long argsz = u32(body, SET_IRQS_ARGSZ);
        int flags = i32(body, SET_IRQS_FLAGS);
        long index = u32(body, SET_IRQS_INDEX);
        long start = u32(body, SET_IRQS_START);
        long count = u32(body, SET_IRQS_COUNT);
        int data = flags & IRQ_SET_DATA_MASK;
        int action = flags & IRQ_SET_ACTION_MASK_ALL;
        // argsz is not compared with the message length: kernel-style clients count the eventfd array in
        // it although the fds travel as SCM_RIGHTS (QEMU resets it to 20 for eventfds; be lenient anyway).
        if (argsz < SET_IRQS_SIZE || (flags & ~(IRQ_SET_DATA_MASK | IRQ_SET_ACTION_MASK_ALL)) != 0
                || Integer.bitCount(data) != 1 || Integer.bitCount(action) != 1 || index >= NUM_IRQS
                || start + count > interrupts.vectorCount((int) index)
                        && !(count == 0 && data == IRQ_SET_DATA_NONE)) {
            return -Errno.EINVAL;
        }
        int ix = (int) index;
        int s = (int) start;
        int c = (int) count;
        if (data != IRQ_SET_DATA_EVENTFD && fdCount > 0) {
            return -Errno.EINVAL;
        }
        int error;
        switch (data) {
            case IRQ_SET_DATA_NONE -> {
                if (c == 0) {
                    error = action == IRQ_SET_ACTION_TRIGGER ? interrupts.disable(ix) : 0;
                } else {
                    error = apply(ix, action, s, c);
                }
            }
            case IRQ_SET_DATA_BOOL -> {
                if (length < SET_IRQS_SIZE + count) {
                    return -Errno.EINVAL;
                }
                error = 0;
                for (int i = 0; i < c && error == 0; i++) {
                    if (body.get(JAVA_BYTE, SET_IRQS_DATA + i) != 0) {
                        error = apply(ix, action, s + i, 1);
                    }
                }
            }
            default -> { // DATA_EVENTFD: one fd per vector, or none to de-assign them
                if (fdCount != 0 && fdCount != c) {
                    return -Errno.EINVAL;
                }
                if (action == IRQ_SET_ACTION_TRIGGER) {
                    if (fdCount == 0) {
                        error = interrupts.deassign(ix, s, c);
                    } else {
                        int[] taken = new int[c];
                        for (int i = 0; i < c; i++) {
                            taken[i] = takeFd(i);
                        }
                        error = interrupts.assign(ix, s, c, taken);
                    }
                } else if (action == IRQ_SET_ACTION_UNMASK && ix == IRQ_INTX && c <= 1) {
                    error = interrupts.setResampleFd(fdCount == 1 ? takeFd(0) : -1);
                } else {
                    error = Errno.EINVAL;
                }
            }
        }
        return error == 0 ? 0 : -error;
    }

    private int apply(int index, int action, int start, int count) {
        return switch (action) {
            case IRQ_SET_ACTION_TRIGGER -> interrupts.trigger(index, start, count);
            case IRQ_SET_ACTION_MASK -> interrupts.mask(index, start, count);
            default -> interrupts.unmask(index, start, count);
        };
    }

    /** Checks a REGION_READ/WRITE target; returns 0 or an errno. */
    private int checkAccess(long region, long offset, long count) {
        if (region >= layout.regionCount() || count > limits.maxDataXferSize()) {
            return Errno.EINVAL;
        }
        long size = layout.regionSize((int) region);
        if (offset < 0 || offset > size || count > size - offset || (count == 0 && size == 0)) {
            return Errno.EINVAL;
        }
        if (region != REGION_CONFIG && layout.bar((int) region) == null) {
            return Errno.EINVAL;
        }
        return 0;
    }

    private int regionRead(int length) {
        if (length < REGION_RW_SIZE) {
            return -Errno.EINVAL;
        }
        long offset = u64(body, REGION_RW_OFFSET);
        long region = u32(body, REGION_RW_REGION);
        long count = u32(body, REGION_RW_COUNT);
        int error = checkAccess(region, offset, count);
        if (error != 0) {
            return -error;
        }
        MemorySegment o = out();
        putU64(o, REGION_RW_OFFSET, offset);
        putU32(o, REGION_RW_REGION, region);
        putU32(o, REGION_RW_COUNT, count);
        try {
            if (region == REGION_CONFIG) {
                config.read((int) offset, configScratch, 0, (int) count);
                MemorySegment.copy(configScratch, 0, o, JAVA_BYTE, REGION_RW_DATA, (int) count);
            } else {
                MmioAccess.read(layout.bar((int) region), offset, o, REGION_RW_DATA, (int) count);
            }
        } catch (RuntimeException e) {
            return -deviceFailure("read", region, offset, e);
        }
        return REGION_RW_SIZE + (int) count;
    }

    private int regionWrite(int length) {
        if (length < REGION_RW_SIZE) {
            return -Errno.EINVAL;
        }
        long offset = u64(body, REGION_RW_OFFSET);
        long region = u32(body, REGION_RW_REGION);
        long count = u32(body, REGION_RW_COUNT);
        if (count != length - REGION_RW_SIZE) {
            return -Errno.EINVAL;
        }
        int error = checkAccess(region, offset, count);
        if (error != 0) {
            return -error;
        }
        error = write((int) region, offset, REGION_RW_DATA, (int) count);
        if (error != 0) {
            return -error;
        }
        MemorySegment o = out();
        putU64(o, REGION_RW_OFFSET, offset);
        putU32(o, REGION_RW_REGION, region);
        putU32(o, REGION_RW_COUNT, count);
        return REGION_RW_SIZE;
    }

    private int write(int region, long offset, long dataAt, int count) {
        try {
            if (region == REGION_CONFIG) {
                MemorySegment.copy(body, JAVA_BYTE, dataAt, configScratch, 0, count);
                config.write((int) offset, configScratch, 0, count);
            } else {
                Bar bar = layout.bar(region);
                MmioAccess.write(bar, offset, body, dataAt, count);
            }
            return 0;
        } catch (RuntimeException e) {
            return deviceFailure("write", region, offset, e);
        }
    }

    /**
     * REGION_WRITE_MULTI (15). Never advertised (see {@link VfioUserServer}), but parsed in case a client
     * sends it: every entry is validated before any is applied, then applied in order.
     */
    private int regionWriteMulti(int length) {
        if (length < WRITE_MULTI_ENTRIES) {
            return -Errno.EINVAL;
        }
        long entries = u64(body, WRITE_MULTI_COUNT);
        if (entries < 0 || entries > WRITE_MULTI_MAX_ENTRIES
                || length != WRITE_MULTI_ENTRIES + entries * WRITE_MULTI_ENTRY_SIZE) {
            return -Errno.EINVAL;
        }
        for (int i = 0; i < entries; i++) {
            long at = WRITE_MULTI_ENTRIES + (long) i * WRITE_MULTI_ENTRY_SIZE;
            long count = u32(body, at + WRITE_MULTI_E_COUNT);
            if (count > WRITE_MULTI_MAX_DATA || checkAccess(u32(body, at + WRITE_MULTI_E_REGION),
                    u64(body, at + WRITE_MULTI_E_OFFSET), count) != 0) {
                return -Errno.EINVAL;
            }
        }
        for (int i = 0; i < entries; i++) {
            long at = WRITE_MULTI_ENTRIES + (long) i * WRITE_MULTI_ENTRY_SIZE;
            int error = write((int) u32(body, at + WRITE_MULTI_E_REGION), u64(body, at + WRITE_MULTI_E_OFFSET),
                    at + WRITE_MULTI_E_DATA, (int) u32(body, at + WRITE_MULTI_E_COUNT));
            if (error != 0) {
                return -error;
            }
        }
        putU64(out(), WRITE_MULTI_COUNT, entries);
        return 8;
    }

    private int reset(int length) {
        if (length != 0) {
            return -Errno.EINVAL;
        }
        try {
            resetDevice();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "device reset failed", e);
            return -Errno.EIO;
        }
        return 0;
    }

    /**
     * Function-level reset of config space and device state. It joins the device's workers, so the
     * eventfds are drained throughout: that wakes a worker a hostile client blocked in an interrupt
     * write, which the reset (and this session's teardown) would otherwise wait for forever.
     */
    private void resetDevice() {
        try (var drain = interrupts.drainDuringReset()) {
            device.reset();
        }
    }

    private int deviceFailure(String what, long region, long offset, RuntimeException e) {
        LOG.log(System.Logger.Level.WARNING, String.format("device %s of region %d at 0x%x failed: %s",
                what, region, offset, e), e);
        return Errno.EIO;
    }
}
