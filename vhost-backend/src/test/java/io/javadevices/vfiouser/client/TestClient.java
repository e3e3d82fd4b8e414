package io.javadevices.vfiouser.client;

import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.LibC;
import io.javadevices.vfiouser.sys.SocketStructs;
import io.javadevices.vfiouser.transport.UnixSocket;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static io.javadevices.vfiouser.protocol.WireStructs.HEADER_SIZE;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * A minimal vfio-user client for tests, speaking to the real server over a real Unix socket with the
 * same FFM layer ({@link UnixSocket}): builds messages like QEMU's client does (fds on the header's
 * sendmsg), reads replies with a timeout, and offers memfd guest RAM and eventfds.
 */
public final class TestClient implements AutoCloseable {
    public static final String QEMU_CAPS = "{\"capabilities\": {\"pgsizes\": 4096, \"max_msg_fds\": 16, "
            + "\"max_dma_maps\": 65535, \"max_data_xfer_size\": 1048576, \"migration\": {\"max_bitmap_size\": "
            + "268435456, \"pgsize\": 4096}, \"write_multiple\": true}}";

    /** A reply: header fields and the payload (little-endian buffer positioned at 0). */
    /** A reply; {@code fds} are the descriptors that rode on it (the caller owns and closes them). */
    public record Reply(int id, int command, int flags, int error, ByteBuffer body, int[] fds) {
        public boolean isError() {
            return (flags & FLAG_ERROR) != 0;
        }

        public boolean isReply() {
            return (flags & FLAG_TYPE_MASK) == FLAG_TYPE_REPLY;
        }
    }

    /** Thrown when the server closed the connection while a reply was expected. */
    public static final class Disconnected extends IOException {
        public Disconnected() {
            super("server closed the connection");
        }
    }

    private final UnixSocket socket;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment buffer = arena.allocate(4 << 20, 8);
    private final MemorySegment pollFd = arena.allocate(SocketStructs.POLLFD);
    private int nextId = 1;
    private long timeoutMillis = 5000;

    private TestClient(UnixSocket socket) {
        this.socket = socket;
    }

    public static TestClient connect(Path path) throws IOException {
        return new TestClient(UnixSocket.connect(path, 4, 32));
    }

    public TestClient timeout(long millis) {
        this.timeoutMillis = millis;
        return this;
    }

    public int fd() {
        return socket.fd();
    }

    // ------------------------------------------------------------------ raw I/O

    /** Sends raw bytes, with {@code fds} on the first sendmsg. */
    public void sendRaw(byte[] bytes, int... fds) throws IOException {
        MemorySegment.copy(bytes, 0, buffer, JAVA_BYTE, 0, bytes.length);
        socket.send(buffer, 0, bytes.length, fds, fds.length);
    }

    /** Builds a message: header + payload. */
    public static byte[] message(int id, int command, int flags, byte[] payload) {
        ByteBuffer b = le(HEADER_SIZE + payload.length);
        b.putShort((short) id).putShort((short) command).putInt(HEADER_SIZE + payload.length).putInt(flags).putInt(0);
        b.put(payload);
        return b.array();
    }

    /** Sends a command and returns its id. */
    public int send(int command, int flags, byte[] payload, int... fds) throws IOException {
        int id = nextId++ & 0xFFFF;
        sendRaw(message(id, command, flags, payload), fds);
        return id;
    }

    /** True if data (or EOF) is readable within {@code millis}. */
    public boolean readable(long millis) throws ErrnoException {
        pollFd.set(JAVA_INT, SocketStructs.POLL_FD, socket.fd());
        pollFd.set(JAVA_SHORT, SocketStructs.POLL_EVENTS, LibC.POLLIN);
        pollFd.set(JAVA_SHORT, SocketStructs.POLL_REVENTS, (short) 0);
        return LibC.poll(pollFd, 1, (int) millis) > 0;
    }

    private void readFully(long length) throws IOException {
        readFully(length, false);
    }

    private void readFully(long length, boolean acceptFds) throws IOException {
        long got = 0;
        while (got < length) {
            if (!readable(timeoutMillis)) {
                throw new IOException("timed out waiting for the server");
            }
            long n = socket.receive(buffer, got, length - got, acceptFds);
            if (n == 0) {
                throw new Disconnected();
            }
            got += n;
        }
    }

    /** Reads one reply (throws {@link Disconnected} at EOF). */
    public Reply readReply() throws IOException {
        readFully(HEADER_SIZE, true); // fds ride on the header's bytes
        int[] fds = new int[socket.receivedFdCount()];
        for (int i = 0; i < fds.length; i++) {
            fds[i] = socket.receivedFd(i);
        }
        ByteBuffer h = le(HEADER_SIZE);
        MemorySegment.copy(buffer, JAVA_BYTE, 0, h.array(), 0, HEADER_SIZE);
        int id = h.getShort(0) & 0xFFFF;
        int command = h.getShort(2) & 0xFFFF;
        int size = h.getInt(4);
        int flags = h.getInt(8);
        int error = h.getInt(12);
        if (size < HEADER_SIZE || size > buffer.byteSize()) {
            throw new IOException("bad reply size " + size);
        }
        readFully(size - HEADER_SIZE);
        byte[] body = new byte[size - HEADER_SIZE];
        MemorySegment.copy(buffer, JAVA_BYTE, 0, body, 0, body.length);
        return new Reply(id, command, flags, error, ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN), fds);
    }

    /** True if the server closes the connection within {@code millis} (any pending replies are skipped). */
    public boolean closedByServer(long millis) throws IOException {
        long deadline = System.currentTimeMillis() + millis;
        while (true) {
            long left = deadline - System.currentTimeMillis();
            if (left <= 0 || !readable(left)) {
                return false;
            }
            try {
                if (socket.receive(buffer, 0, buffer.byteSize(), false) == 0) {
                    return true;
                }
            } catch (ErrnoException e) {
                return true; // ECONNRESET
            }
        }
    }

    /** Sends a command and waits for its reply; checks id and command. */
    public Reply request(int command, byte[] payload, int... fds) throws IOException {
        int id = send(command, FLAG_TYPE_COMMAND, payload, fds);
        Reply r = readReply();
        if (r.id() != id || r.command() != command || !r.isReply()) {
            throw new IOException("mismatched reply: " + r + " for id " + id + " command " + command);
        }
        return r;
    }

    /** Like {@link #request} but fails on an error reply. */
    public Reply ok(int command, byte[] payload, int... fds) throws IOException {
        Reply r = request(command, payload, fds);
        if (r.isError()) {
            throw new IOException(commandName(command) + " failed with errno " + r.error());
        }
        return r;
    }

    // ------------------------------------------------------------------ commands

    public Reply version() throws IOException {
        byte[] json = QEMU_CAPS.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = le(4 + json.length + 1);
        b.putShort((short) 0).putShort((short) 0).put(json).put((byte) 0);
        return ok(CMD_VERSION, b.array());
    }

    public static byte[] dmaMapPayload(long address, long size, long offset, int flags) {
        return le(32).putInt(32).putInt(flags).putLong(offset).putLong(address).putLong(size).array();
    }

    public Reply dmaMap(long address, long size, long offset, int fd) throws IOException {
        byte[] p = dmaMapPayload(address, size, offset, DMA_FLAG_READ | DMA_FLAG_WRITE);
        return fd >= 0 ? request(CMD_DMA_MAP, p, fd) : request(CMD_DMA_MAP, p);
    }

    public Reply dmaUnmap(long address, long size, int flags) throws IOException {
        return request(CMD_DMA_UNMAP, le(24).putInt(24).putInt(flags).putLong(address).putLong(size).array());
    }

    public Reply deviceInfo() throws IOException {
        return ok(CMD_DEVICE_GET_INFO, le(16).putInt(16).array());
    }

    public Reply regionInfo(int index, int argsz) throws IOException {
        return request(CMD_DEVICE_GET_REGION_INFO, le(32).putInt(argsz).putInt(0).putInt(index).array());
    }

    public Reply irqInfo(int index) throws IOException {
        return request(CMD_DEVICE_GET_IRQ_INFO, le(16).putInt(16).putInt(0).putInt(index).array());
    }

    public Reply setIrqs(int flags, int index, int start, int count, int... fds) throws IOException {
        return request(CMD_DEVICE_SET_IRQS,
                le(20).putInt(20).putInt(flags).putInt(index).putInt(start).putInt(count).array(), fds);
    }

    public static byte[] rwPayload(int region, long offset, int count, byte[] data) {
        ByteBuffer b = le(16 + (data == null ? 0 : data.length));
        b.putLong(offset).putInt(region).putInt(count);
        if (data != null) {
            b.put(data);
        }
        return b.array();
    }

    /** REGION_READ; returns the reply (data at body offset 16). */
    public Reply regionRead(int region, long offset, int count) throws IOException {
        return request(CMD_REGION_READ, rwPayload(region, offset, count, null));
    }

    public byte[] read(int region, long offset, int count) throws IOException {
        Reply r = regionRead(region, offset, count);
        if (r.isError()) {
            throw new IOException("REGION_READ failed with errno " + r.error());
        }
        byte[] data = new byte[count];
        r.body().get(16, data);
        return data;
    }

    public long readLong(int region, long offset, int size) throws IOException {
        byte[] d = read(region, offset, size);
        long v = 0;
        for (int i = 0; i < size; i++) {
            v |= (d[i] & 0xFFL) << (8 * i);
        }
        return v;
    }

    public Reply regionWrite(int region, long offset, byte[] data) throws IOException {
        return request(CMD_REGION_WRITE, rwPayload(region, offset, data.length, data));
    }

    /** A posted write (NO_REPLY), as QEMU sends MMIO BAR writes. */
    public void postedWrite(int region, long offset, byte[] data) throws IOException {
        send(CMD_REGION_WRITE, FLAG_NO_REPLY, rwPayload(region, offset, data.length, data));
    }

    public void writeLong(int region, long offset, int size, long value) throws IOException {
        Reply r = regionWrite(region, offset, bytes(value, size));
        if (r.isError()) {
            throw new IOException("REGION_WRITE failed with errno " + r.error());
        }
    }

    public static byte[] bytes(long value, int size) {
        byte[] d = new byte[size];
        for (int i = 0; i < size; i++) {
            d[i] = (byte) (value >>> (8 * i));
        }
        return d;
    }

    public static ByteBuffer le(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    private boolean closed;

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            socket.close();
            arena.close();
        }
    }

    // ------------------------------------------------------------------ guest RAM and eventfds

    /** A memfd of {@code size} bytes, mapped shared into this process for the test's view of guest RAM. */
    public static final class Memfd implements AutoCloseable {
        public final int fd;
        public final MemorySegment memory;
        private final Arena arena = Arena.ofShared();

        public Memfd(long size) throws ErrnoException {
            fd = LibC.memfdCreate("test-guest-ram", LibC.MFD_CLOEXEC);
            LibC.ftruncate(fd, size);
            MemorySegment raw = LibC.mmap(size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, 0);
            long base = raw.address();
            memory = raw.reinterpret(size, arena, s -> {
                try {
                    LibC.munmap(base, size);
                } catch (ErrnoException ignored) {
                    // test cleanup
                }
            });
        }

        @Override
        public void close() {
            arena.close();
            LibC.closeQuietly(fd);
        }
    }

    /** A non-blocking eventfd owned by the test. */
    public static final class EventFd implements AutoCloseable {
        public final int fd;
        private final Arena arena = Arena.ofShared();
        private final MemorySegment value = arena.allocate(JAVA_LONG);
        private final MemorySegment poll = arena.allocate(SocketStructs.POLLFD);

        public EventFd() throws ErrnoException {
            fd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        }

        /** Waits up to {@code millis} for the counter to become non-zero; returns and clears it (0 = none). */
        public long await(long millis) throws ErrnoException {
            poll.set(JAVA_INT, SocketStructs.POLL_FD, fd);
            poll.set(JAVA_SHORT, SocketStructs.POLL_EVENTS, LibC.POLLIN);
            poll.set(JAVA_SHORT, SocketStructs.POLL_REVENTS, (short) 0);
            if (LibC.poll(poll, 1, (int) millis) <= 0) {
                return 0;
            }
            LibC.read(fd, value, 8);
            return value.get(JAVA_LONG, 0);
        }

        /** Signals it (as QEMU does with an INTx resample fd). */
        public void signal() throws ErrnoException {
            value.set(JAVA_LONG, 0, 1);
            LibC.write(fd, value, 8);
        }

        @Override
        public void close() {
            LibC.closeQuietly(fd);
            arena.close();
        }
    }
}
