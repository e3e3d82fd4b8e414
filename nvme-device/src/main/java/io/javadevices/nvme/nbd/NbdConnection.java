package io.javadevices.nvme.nbd;

import io.javadevices.nvme.backend.IoVector;

import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicBoolean;

import static io.javadevices.nvme.nbd.NbdProtocol.*;

/**
 * One NBD session of a namespace (one connection per namespace, as QEMU's {@code block/nbd.c} keeps) on a socket
 * of its own ({@link NbdSocket}): requests go out through an {@link NbdSender} (the submitting queue worker sends
 * them itself unless the socket is full), and a reader thread matches each simple reply to its request by cookie,
 * reads a read's payload straight into the guest buffers and completes the operation through the worker's engine.
 *
 * <p>Failure: anything wrong - EOF, a reset, a send error, a reply that matches no request, a wrong magic, a
 * short payload, a request past its deadline - ends the session. The reader thread (the only one that writes
 * into guest buffers) then stops the sender, closes the stack and fails every request of this session with
 * {@code -ENOTCONN}; the backend reconnects in the background.
 */
final class NbdConnection {
    private static final System.Logger LOG = System.getLogger(NbdConnection.class.getName());
    static final int ZERO_BUFFER_BYTES = 1 << 20;
    /** The reader's receive buffer: many reply headers, or a few short payloads, per system call. */
    private static final int RECEIVE_BYTES = 64 * 1024;
    /** Bounce buffer size, for guest memory that is not native (unit tests' heap memory). */
    private static final int BOUNCE_BYTES = 256 * 1024;

    private final NbdBackend backend;
    private final NbdSocket socket;
    private final NbdExport export;
    private final NbdSender sender;
    private final Thread reader;
    private volatile boolean closed;
    private volatile String dropReason;

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
    private final MemorySegment readerErrno = Arena.ofAuto().allocate(SocketCalls.STATE_BYTES, 8);
    /** The workers with completions queued quietly in this burst, and how many (see {@link #signalCompleted}). */
    private NbdAsync[] toSignal = new NbdAsync[8];
    private int signalCount;

    private NbdConnection(NbdBackend backend, NbdSocket socket, NbdExport export) {
        this.backend = backend;
        this.socket = socket;
        this.export = export;
        String name = backend.uri().toString();
        this.sender = new NbdSender(this, socket, name);
        this.reader = Thread.ofPlatform().daemon().name("nbd-reader " + name).unstarted(this::readLoop);
    }

    /** Connects and negotiates; the threads run once this returns. */
    static NbdConnection open(NbdBackend backend, long handshakeNanos) throws IOException {
        NbdUri uri = backend.uri();
        NbdSocket socket = NbdSocket.connect(uri, handshakeNanos);
        // A server that accepts but never speaks would block the handshake forever: a guard shuts the socket.
        AtomicBoolean late = new AtomicBoolean();
        Thread guard = Thread.ofVirtual().start(() -> {
            try {
                Thread.sleep(handshakeNanos / 1_000_000);
                late.set(true);
                socket.shutdown();
            } catch (InterruptedException done) {
                // handshake over in time
            }
        });
        NbdExport export;
        try {
            export = new NbdHandshake(socket, uri).negotiate();
        } catch (IOException | RuntimeException e) {
            guard.interrupt();
            joinQuietly(guard);
            socket.close();
            if (late.get()) {
                throw new NbdException("the NBD server at " + uri.where() + " did not finish the handshake within "
                        + handshakeNanos / 1_000_000 + " ms");
            }
            throw e;
        }
        guard.interrupt();
        joinQuietly(guard);
        if (late.get()) {
            socket.close();
            throw new NbdException("the NBD server at " + uri.where() + " did not finish the handshake in time");
        }
        NbdConnection connection = new NbdConnection(backend, socket, export);
        connection.sender.writer.start();
        connection.reader.start();
        return connection;
    }

    private static void joinQuietly(Thread thread) {
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    NbdExport export() {
        return export;
    }

    String name() {
        return backend.uri().toString();
    }

    /** Sends {@code request}, or has it sent; false if this session has ended. Any thread; never blocks. */
    boolean submit(NbdRequest request) {
        return sender.submit(request);
    }

    /** Queues {@code request} for the next {@link #send}; false if this session has ended. Any thread; never blocks. */
    boolean push(NbdRequest request) {
        return sender.push(request);
    }

    /** Sends what was pushed. Any thread; never blocks. */
    void send() {
        sender.send();
    }

    /** How many {@code sendmsg} calls this session made (a statistic). */
    long sends() {
        return sender.sends();
    }

    /** How often a submitter found the socket full and passed the rest to the writer thread (a statistic). */
    long sendHandoffs() {
        return sender.handoffs();
    }

    /** Ends the session (the reader fails what is in flight). Any thread; idempotent. */
    void drop(String reason) {
        if (!closed) {
            dropReason = reason;
            closed = true;
        }
        socket.shutdown(); // wakes the reader out of its read, fails every later send
        sender.wakeWriter();
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
        signalCompleted();
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
        if (request.finishQuietly(NbdRequest.SENT, request.error != 0 ? request.error : request.result)) {
            NbdAsync owner = request.owner;
            if (!owner.signalPending) {
                owner.signalPending = true;
                if (toSignal.length == signalCount) {
                    toSignal = java.util.Arrays.copyOf(toSignal, signalCount * 2); // once per more workers than before
                }
                toSignal[signalCount++] = owner;
            }
        }
    }

    /**
     * Wakes each worker the burst completed something for, once; before every receive that may block (the next
     * burst), and before the teardown. Reader thread.
     */
    private void signalCompleted() {
        for (int i = 0; i < signalCount; i++) {
            NbdAsync owner = toSignal[i];
            toSignal[i] = null;
            owner.signalPending = false; // before the signal: a completion after it is announced again
            owner.engine.signalCompleted();
        }
        signalCount = 0;
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
            long buffered = Math.min(received.remaining(), take);
            if (buffered > 0) { // the start of the payload came with the header
                MemorySegment.copy(receivedBytes, received.position(), segment, skip, buffered);
                received.position(received.position() + (int) buffered);
            }
            if (buffered < take) { // bounds: [skip + buffered, skip + take) lies within the segment (take <= size - skip)
                if (segment.isNative()) {
                    readFully(segment.address() + skip + buffered, take - buffered, "a read's payload");
                } else {
                    bounceIn(segment, skip + buffered, take - buffered);
                }
            }
            skip = 0;
            left -= take;
        }
    }

    private void bounceIn(MemorySegment target, long at, long length) throws IOException {
        for (long done = 0; done < length; ) {
            int n = (int) Math.min(BOUNCE_BYTES, length - done);
            readFully(readerBounce.address(), n, "a read's payload");
            MemorySegment.copy(readerBounce, 0, target, at + done, n);
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
                signalCompleted(); // the read may block: the workers must not wait for the next burst
                long got = socket.read(readerErrno, receivedBytes.address() + received.position(), received.remaining());
                if (got < 0) {
                    throw new IOException("receiving failed: errno " + -got);
                }
                received.position(received.position() + (int) got);
                if (got == 0) {
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

    /** Reads exactly {@code length} bytes to {@code address}. @param what the payload being read, for the message */
    private void readFully(long address, long length, String what) throws IOException {
        for (long done = 0; done < length; ) {
            signalCompleted();
            long got = socket.read(readerErrno, address + done, length - done);
            if (got < 0) {
                throw new IOException("receiving failed: errno " + -got);
            }
            if (got == 0) {
                throw new NbdException("the server closed the connection in the middle of " + what);
            }
            done += got;
        }
    }

    /** Reader thread, last: nothing writes into guest buffers any more; every request of this session fails. */
    private void teardown(String reason) {
        closed = true;
        socket.shutdown();
        backend.detach(this);
        sender.close(); // from here on nobody sends or pushes: the requests are this thread's to fail
        socket.close();
        // Counted before the requests fail: whoever sees a request's -ENOTCONN sees the loss in the statistics too.
        backend.lost(this, reason);
        backend.failAll(this);
    }
}
