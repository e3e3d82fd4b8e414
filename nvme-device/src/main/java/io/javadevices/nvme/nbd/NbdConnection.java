package io.javadevices.nvme.nbd;

import io.javadevices.nvme.backend.IoVector;

import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.util.concurrent.locks.LockSupport;

import static io.javadevices.nvme.nbd.NbdProtocol.*;

/**
 * One NBD session of a namespace (one connection per namespace, as QEMU's {@code block/nbd.c} keeps): a writer
 * thread that sends the requests the queue workers publish, and a reader thread that matches each simple reply
 * to its request by cookie, reads a read's payload straight into the guest buffers and completes the operation
 * through the worker's engine.
 *
 * <p>Hand-off without a lock: workers push their request slots onto an intrusive lock-free stack (one
 * compare-and-set; a slot is on it at most once, its tag being in flight at most once, so the stack is bounded
 * by the slots and nothing is allocated); the writer takes the whole stack with one swap, restores submission
 * order and sends it in as few system calls as the payloads allow (headers batched, each write's header and
 * guest buffers gathered into one {@code write}). Pops are by swap only, so there is no ABA problem.
 *
 * <p>Failure: anything wrong - EOF, a reset, a write error, a reply that matches no request, a wrong magic, a
 * short payload, a request past its deadline - ends the session. The reader thread (the only one that writes
 * into guest buffers) then stops the writer, closes the stack and fails every request of this session with
 * {@code -ENOTCONN}; the backend reconnects in the background.
 */
final class NbdConnection {
    private static final System.Logger LOG = System.getLogger(NbdConnection.class.getName());
    static final int ZERO_BUFFER_BYTES = 1 << 20;
    private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(ZERO_BUFFER_BYTES).asReadOnlyBuffer();
    private static final int HEADER_BATCH = 64;
    /** The reader's receive buffer: many reply headers, or a few short payloads, per system call. */
    private static final int RECEIVE_BYTES = 64 * 1024;
    /** Bounce buffer size, for guest memory no ByteBuffer can view (unit tests' heap memory). */
    private static final int BOUNCE_BYTES = 256 * 1024;
    /** Marks the stack of a closed session: a push fails and the worker completes its request itself. */
    private static final NbdRequest CLOSED = new NbdRequest(null, -1);
    private static final VarHandle HEAD;

    static {
        try {
            HEAD = MethodHandles.lookup().findVarHandle(NbdConnection.class, "head", NbdRequest.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final NbdBackend backend;
    private final SocketChannel channel;
    private final NbdExport export;
    private final Thread writer;
    private final Thread reader;
    @SuppressWarnings("unused") // through HEAD
    private volatile NbdRequest head;
    private volatile boolean writerParked;
    private volatile boolean closed;
    private volatile String dropReason;

    // Writer thread only.
    private final ByteBuffer headers = ByteBuffer.allocateDirect(HEADER_BATCH * REQUEST_BYTES);
    private final ByteBuffer zeroes = ZEROES.duplicate();
    private ByteBuffer[] gather = new ByteBuffer[17];
    private final MemorySegment writerBounce = Arena.ofAuto().allocate(BOUNCE_BYTES, 4096);
    private final ByteBuffer writerBounceBuffer = writerBounce.asByteBuffer();
    // Reader thread only.
    /**
     * What the reader received and has not parsed yet (read mode: position..limit): one {@code read} takes every
     * reply the server has sent so far, so a deep queue's replies cost one system call and one wake-up of the queue
     * workers per burst rather than per reply. A read's payload that is already here is copied into the guest
     * buffers; the rest of it is read straight into them.
     */
    private final ByteBuffer received = ByteBuffer.allocateDirect(RECEIVE_BYTES).limit(0);
    private final MemorySegment receivedBytes = MemorySegment.ofBuffer(received.duplicate().clear());
    private final MemorySegment readerBounce = Arena.ofAuto().allocate(BOUNCE_BYTES, 4096);
    private final ByteBuffer readerBounceBuffer = readerBounce.asByteBuffer();

    private NbdConnection(NbdBackend backend, SocketChannel channel, NbdExport export) {
        this.backend = backend;
        this.channel = channel;
        this.export = export;
        String name = backend.uri().toString();
        this.writer = Thread.ofPlatform().daemon().name("nbd-writer " + name).unstarted(this::writeLoop);
        this.reader = Thread.ofPlatform().daemon().name("nbd-reader " + name).unstarted(this::readLoop);
    }

    /** Connects and negotiates; the threads run once this returns. */
    static NbdConnection open(NbdBackend backend, long handshakeNanos) throws IOException {
        NbdUri uri = backend.uri();
        SocketChannel channel = uri.socket() != null ? SocketChannel.open(StandardProtocolFamily.UNIX)
                : SocketChannel.open();
        // A server that accepts but never speaks would block the handshake forever: a guard closes the channel.
        Thread guard = Thread.ofVirtual().start(() -> {
            try {
                Thread.sleep(handshakeNanos / 1_000_000);
                closeQuietly(channel);
            } catch (InterruptedException done) {
                // handshake over in time
            }
        });
        NbdExport export;
        try {
            try {
                channel.connect(uri.address());
            } catch (IOException e) {
                throw new NbdException("cannot connect to the NBD server at " + uri.where() + ": " + e.getMessage());
            }
            if (uri.socket() == null) {
                channel.setOption(StandardSocketOptions.TCP_NODELAY, true); // requests are small and latency-bound
            }
            export = new NbdHandshake(channel, uri).negotiate();
        } catch (ClosedChannelException e) {
            closeQuietly(channel);
            throw new NbdException("the NBD server at " + uri.where() + " did not finish the handshake within "
                    + handshakeNanos / 1_000_000 + " ms");
        } catch (IOException | RuntimeException e) {
            closeQuietly(channel);
            throw e;
        } finally {
            guard.interrupt();
        }
        try {
            guard.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (!channel.isOpen()) {
            throw new NbdException("the NBD server at " + uri.where() + " did not finish the handshake in time");
        }
        NbdConnection connection = new NbdConnection(backend, channel, export);
        connection.writer.start();
        connection.reader.start();
        return connection;
    }

    NbdExport export() {
        return export;
    }

    /** Publishes {@code request} to the writer; false if this session has ended. Any thread. */
    boolean submit(NbdRequest request) {
        while (true) {
            NbdRequest top = (NbdRequest) HEAD.getVolatile(this);
            if (top == CLOSED) {
                return false;
            }
            request.next = top;
            if (HEAD.compareAndSet(this, top, request)) {
                break;
            }
        }
        if (writerParked) {
            LockSupport.unpark(writer);
        }
        return true;
    }

    /** Ends the session (the reader fails what is in flight). Any thread; idempotent. */
    void drop(String reason) {
        if (!closed) {
            dropReason = reason;
            closed = true;
        }
        closeQuietly(channel); // wakes the reader out of its read
        LockSupport.unpark(writer);
    }

    /** Drops the session and waits until every request of it has been completed. */
    void dropAndAwait(String reason) {
        drop(reason);
        if (Thread.currentThread() != reader) {
            try {
                reader.join(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    // ------------------------------------------------------------------ writer thread

    private void writeLoop() {
        try {
            while (!closed) {
                NbdRequest taken = (NbdRequest) HEAD.getAndSet(this, null);
                if (taken == null) {
                    writerParked = true;
                    if (HEAD.getVolatile(this) == null && !closed) {
                        LockSupport.park(this);
                    }
                    writerParked = false;
                    continue;
                }
                NbdRequest fifo = null; // the stack is newest first: reverse it into submission order
                while (taken != null) {
                    NbdRequest next = taken.next;
                    taken.next = fifo;
                    fifo = taken;
                    taken = next;
                }
                while (fifo != null) {
                    NbdRequest next = fifo.next; // read before sending: a completed slot may be pushed again
                    fifo.next = null;
                    send(fifo);
                    fifo = next;
                }
                flushHeaders();
            }
        } catch (IOException e) {
            drop(closed ? dropReason : "sending failed: " + e.getMessage());
        } catch (RuntimeException | Error e) {
            LOG.log(System.Logger.Level.ERROR, "NBD writer of " + backend.uri() + " failed", e);
            drop("internal error in the writer: " + e);
        }
    }

    /** Sends every piece of {@code request}; every field is read before its last piece counts as sent. */
    private void send(NbdRequest request) throws IOException {
        int command = request.command;
        int flags = request.commandFlags;
        long offset = request.offset;
        long length = request.length;
        long pieceLength = request.pieceLength;
        int pieces = request.pieces;
        IoVector data = request.data;
        boolean zeroPayload = request.zeroPayload;
        long base = request.cookie(0);
        request.setState(NbdRequest.SENT);
        for (int piece = 0; piece < pieces; piece++) {
            long at = piece * pieceLength;
            int n = (int) Math.min(pieceLength, length - at);
            request.setSentPieces(piece + 1);
            headers.putInt(REQUEST_MAGIC).putShort((short) flags).putShort((short) command).putLong(base | piece)
                    .putLong(offset + at).putInt(n);
            if (command == CMD_WRITE) {
                sendPayload(data, at, n, zeroPayload);
            } else if (!headers.hasRemaining()) {
                flushHeaders();
            }
        }
    }

    /**
     * The pending headers, then {@code n} bytes of {@code data} from {@code at}: one gathering write of the guest
     * buffers themselves. Memory no ByteBuffer can view (a unit-test host's {@code long[]} heap) goes through a
     * bounce buffer instead.
     */
    private void sendPayload(IoVector data, long at, int n, boolean zeroPayload) throws IOException {
        int count = 0;
        gather[count++] = headers.flip();
        if (zeroPayload) {
            gather[count++] = zeroes.clear().limit(n);
        } else {
            long skip = at;
            long left = n;
            for (int i = 0; i < data.count() && left > 0; i++) {
                MemorySegment segment = data.segment(i);
                long size = segment.byteSize();
                if (skip >= size) {
                    skip -= size;
                    continue;
                }
                long take = Math.min(size - skip, left);
                if (!viewable(segment)) {
                    writeGathered(count);
                    count = 0;
                    bounceOut(segment.asSlice(skip, take));
                } else {
                    if (count == gather.length) {
                        gather = java.util.Arrays.copyOf(gather, count * 2); // once per larger vector than before
                    }
                    gather[count++] = segment.asSlice(skip, take).asByteBuffer();
                }
                skip = 0;
                left -= take;
            }
            if (left > 0) {
                throw new IllegalStateException("write payload shorter than its length"); // cannot happen
            }
        }
        writeGathered(count);
        headers.clear();
    }

    private void writeGathered(int count) throws IOException {
        long total = 0;
        for (int i = 0; i < count; i++) {
            total += gather[i].remaining();
        }
        while (total > 0) {
            total -= channel.write(gather, 0, count);
        }
        for (int i = 1; i < count; i++) {
            gather[i] = null;
        }
    }

    private void bounceOut(MemorySegment source) throws IOException {
        for (long done = 0; done < source.byteSize(); ) {
            int n = (int) Math.min(BOUNCE_BYTES, source.byteSize() - done);
            MemorySegment.copy(source, done, writerBounce, 0, n);
            ByteBuffer buffer = writerBounceBuffer.clear().limit(n);
            while (buffer.hasRemaining()) {
                channel.write(buffer);
            }
            done += n;
        }
    }

    /** True if a ByteBuffer can view {@code segment} (native memory, or a heap segment over a byte[]). */
    static boolean viewable(MemorySegment segment) {
        return segment.isNative() || segment.heapBase().map(base -> base instanceof byte[]).orElse(false);
    }

    private void flushHeaders() throws IOException {
        if (headers.position() == 0) {
            return;
        }
        headers.flip();
        while (headers.hasRemaining()) {
            channel.write(headers);
        }
        headers.clear();
    }

    // ------------------------------------------------------------------ reader thread

    private void readLoop() {
        String reason;
        try {
            while (true) {
                buffer(REPLY_BYTES, null);
                receive(received.getInt(), received.getInt(), received.getLong());
            }
        } catch (EOFException e) {
            reason = closed ? dropReason : "the server closed the connection";
        } catch (IOException e) {
            reason = closed ? dropReason : e instanceof NbdException ? e.getMessage() : "receiving failed: " + e;
        } catch (RuntimeException | Error e) {
            LOG.log(System.Logger.Level.ERROR, "NBD reader of " + backend.uri() + " failed", e);
            reason = "internal error in the reader: " + e;
        }
        teardown(reason);
    }

    private void receive(int magic, int nbdError, long cookie) throws IOException {
        if (magic != SIMPLE_REPLY_MAGIC) {
            throw new NbdException("the server sent a reply with magic 0x" + Integer.toHexString(magic)
                    + " (only simple replies were negotiated)");
        }
        NbdRequest request = backend.lookup(cookie);
        int piece = (int) (cookie & 0xFFFF);
        if (request == null || request.connection != this || request.state() != NbdRequest.SENT
                || ((cookie >>> 16) & 0xFFFF) != (request.generation & 0xFFFF) || piece >= request.sentPieces()
                || !request.answer(piece)) {
            throw new NbdException("the server replied to unknown handle 0x" + Long.toHexString(cookie));
        }
        if (nbdError != 0) {
            if (request.error == 0) {
                request.error = NbdProtocol.errno(nbdError);
            }
        } else if (request.command == CMD_READ) {
            readPayload(request, piece);
        }
        if (--request.remaining > 0) {
            return;
        }
        if (request.error == 0 && request.flushAfter) {
            // A durable write on a server without FUA: the write is done, now its flush, then the completion.
            request.command = CMD_FLUSH;
            request.commandFlags = 0;
            request.offset = 0;
            request.length = 0;
            request.flushAfter = false;
            request.zeroPayload = false;
            request.resetPieces(1);
            request.setState(NbdRequest.QUEUED);
            if (!submit(request)) {
                request.finish(NbdRequest.QUEUED, -ENOTCONN);
            }
            return;
        }
        request.finish(NbdRequest.SENT, request.error != 0 ? request.error : request.result);
    }

    /** Piece {@code piece}'s bytes, straight into the request's buffers (never past them). */
    private void readPayload(NbdRequest request, int piece) throws IOException {
        IoVector data = request.data;
        long skip = (long) piece * request.pieceLength;
        long left = Math.min(request.pieceLength, request.length - skip);
        for (int i = 0; i < data.count() && left > 0; i++) {
            MemorySegment segment = data.segment(i);
            long size = segment.byteSize();
            if (skip >= size) {
                skip -= size;
                continue;
            }
            long take = Math.min(size - skip, left);
            MemorySegment target = segment.asSlice(skip, take);
            long buffered = Math.min(received.remaining(), take);
            if (buffered > 0) { // the start of the payload came with the header
                MemorySegment.copy(receivedBytes, received.position(), target, 0, buffered);
                received.position(received.position() + (int) buffered);
            }
            if (buffered < take) {
                if (viewable(segment)) {
                    readFully(target.asSlice(buffered).asByteBuffer(), "a read's payload");
                } else {
                    bounceIn(target.asSlice(buffered));
                }
            }
            skip = 0;
            left -= take;
        }
    }

    private void bounceIn(MemorySegment target) throws IOException {
        for (long done = 0; done < target.byteSize(); ) {
            int n = (int) Math.min(BOUNCE_BYTES, target.byteSize() - done);
            readFully(readerBounceBuffer.clear().limit(n), "a read's payload");
            MemorySegment.copy(readerBounce, 0, target, done, n);
            done += n;
        }
    }

    /**
     * Makes at least {@code n} bytes available in {@link #received}, reading whatever the server has sent
     * meanwhile too. {@code what}: as for {@link #readFully}.
     */
    private void buffer(int n, String what) throws IOException {
        if (received.remaining() >= n) {
            return;
        }
        received.compact();
        try {
            while (received.position() < n) {
                if (channel.read(received) < 0) {
                    if (what == null && received.position() == 0) {
                        throw new EOFException(); // between replies: the server went away
                    }
                    throw new NbdException("the server closed the connection in the middle of "
                            + (what == null ? "a reply header" : what));
                }
            }
        } finally {
            received.flip();
        }
    }

    /** @param what the payload being read, for the message; null for a reply header */
    private void readFully(ByteBuffer buffer, String what) throws IOException {
        while (buffer.hasRemaining()) {
            if (channel.read(buffer) < 0) {
                if (what == null && buffer.position() == 0) {
                    throw new EOFException(); // between replies: the server went away
                }
                throw new NbdException("the server closed the connection in the middle of "
                        + (what == null ? "a reply header" : what));
            }
        }
    }

    /** Reader thread, last: nothing writes into guest buffers any more; every request of this session fails. */
    private void teardown(String reason) {
        closed = true;
        closeQuietly(channel);
        backend.detach(this);
        LockSupport.unpark(writer);
        try {
            writer.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        HEAD.getAndSet(this, CLOSED);
        // Counted before the requests fail: whoever sees a request's -ENOTCONN sees the loss in the statistics too.
        backend.lost(this, reason);
        backend.failAll(this);
    }

    private static void closeQuietly(SocketChannel channel) {
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing is all that was wanted
        }
    }
}
