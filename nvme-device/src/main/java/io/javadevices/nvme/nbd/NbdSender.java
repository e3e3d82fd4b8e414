package io.javadevices.nvme.nbd;

import io.javadevices.nvme.backend.IoVector;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.concurrent.locks.LockSupport;

import static io.javadevices.nvme.nbd.NbdProtocol.*;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The sending half of an NBD session: whoever submits a request sends it, unless someone else is sending.
 *
 * <p><b>The send role.</b> A submitter (a queue worker, the synchronous calls, the reader re-queueing a FUA
 * emulation's flush) pushes its request onto an intrusive lock-free stack (one compare-and-set; a slot is on it
 * at most once, so nothing is allocated), then tries to take the send role with one more compare-and-set. A queue
 * worker pushes a whole batch of commands first ({@link #push}) and takes the role once for it ({@link #send}):
 * one gathering {@code sendmsg} then carries the batch, and the server reads it in one go. The
 * winner sends its request and whatever else the stack holds with non-blocking gathering {@code sendmsg}s straight
 * from guest memory, then gives the role back and looks at the stack once more (pushers store, then try the role;
 * the holder gives the role back, then loads the stack: one of the two always sees the other, so no request is
 * left behind). A loser returns at once: the holder sends its request. Nobody waits for anybody: a worker serves
 * other queues too. Only when the socket is full ({@code EAGAIN}, a partial send) does the holder pass the role,
 * with the rest, to the {@link #writer} thread, which waits for {@code POLLOUT} and finishes - so a worker never
 * blocks and the common case crosses no thread.
 *
 * <p><b>Order.</b> Requests leave in the order they were pushed, per submitter, and a request is sent whole
 * before the next begins. The protocol itself needs no more: NBD replies may come in any order. The one ordering
 * NVMe asks for, a Flush covering the writes that completed before it was submitted (NVMe 1.4 §6.8), holds because
 * those writes completed only after their replies arrived, i.e. after the server had received and executed them:
 * the FLUSH, pushed later, is necessarily sent after them, and the server flushes what it has executed (proto.md:
 * NBD_CMD_FLUSH covers every write whose reply was sent). A FUA emulation's flush is pushed by the reader after
 * the write's reply in the same way.
 *
 * <p><b>Teardown.</b> {@link #close} (the reader thread, last) marks the stack closed and takes the role for
 * good, after the holder of the moment gave it back - a holder sees the shut-down socket fail at once - so that no
 * thread sends, or touches a request, while the session fails every request it still holds.
 */
final class NbdSender {
    private static final System.Logger LOG = System.getLogger(NbdSender.class.getName());
    /** Marks the stack of a closed session: a push fails and the submitter completes its request itself. */
    private static final NbdRequest CLOSED = new NbdRequest(null, -1);
    /** The send role: nobody, a submitter, the writer thread, nobody ever again (torn down). */
    private static final int FREE = 0, SUBMITTER = 1, WRITER = 2, ENDED = 3;
    /** {@link #pump}'s outcome when the rest is the writer's: the socket is full, or the budget spent. */
    private static final int BLOCKED = -1;
    /** Batches one submitter sends before passing the rest to the writer (it has other queues to serve). */
    private static final int SUBMITTER_BATCHES = 16;
    private static final int MAX_IOV = 128, HEADER_SLOTS = 64;
    /** Bounce buffer size, for guest memory that is not native (unit tests' heap memory). */
    private static final int BOUNCE_BYTES = 256 * 1024;
    private static final MemorySegment ZEROES = Arena.global().allocate(NbdConnection.ZERO_BUFFER_BYTES, 4096);
    private static final ValueLayout.OfInt INT_BE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfLong LONG_BE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfShort SHORT_BE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final VarHandle HEAD, ROLE;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            HEAD = lookup.findVarHandle(NbdSender.class, "head", NbdRequest.class);
            ROLE = lookup.findVarHandle(NbdSender.class, "role", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final NbdConnection connection;
    private final NbdSocket socket;
    final Thread writer;
    @SuppressWarnings("unused") // through HEAD
    private volatile NbdRequest head;
    @SuppressWarnings("unused") // through ROLE
    private volatile int role;
    private volatile boolean writerParked;
    /** Times the rest was passed to the writer (a full socket, or a spent budget): a statistic; the holder writes it. */
    private volatile long handoffs;
    /** {@code sendmsg} calls so far: a statistic; the holder writes it. */
    private volatile long sendCalls;

    // The role holder's (handed over with the role: its volatile accesses order them).
    private final NbdOutbox outbox = new NbdOutbox();
    private final MemorySegment errno;
    private final MemorySegment message; // struct msghdr, then struct pollfd
    private final MemorySegment iov;
    private final MemorySegment headers;
    private final MemorySegment bounce;
    /** Per piece of the batch being sent: bytes in it, and whether they end the piece. */
    private final long[] batchBytes = new long[MAX_IOV];
    private final boolean[] batchEndsPiece = new boolean[MAX_IOV];

    NbdSender(NbdConnection connection, NbdSocket socket, String name) {
        this.connection = connection;
        this.socket = socket;
        Arena arena = Arena.ofAuto();
        this.errno = arena.allocate(SocketCalls.STATE_BYTES, 8);
        this.message = arena.allocate(SocketCalls.MSGHDR_BYTES + 8, 8);
        this.iov = arena.allocate((long) MAX_IOV * IoVector.IOVEC_BYTES, 8);
        this.headers = arena.allocate((long) HEADER_SLOTS * REQUEST_BYTES, 8);
        this.bounce = arena.allocate(BOUNCE_BYTES, 4096);
        message.set(JAVA_LONG, SocketCalls.MSG_IOV, iov.address());
        this.writer = Thread.ofPlatform().daemon().name("nbd-writer " + name).unstarted(this::writeLoop);
    }

    /** Sends {@code request} (or has it sent); false if this session has ended. Any thread; never blocks. */
    boolean submit(NbdRequest request) {
        if (!push(request)) {
            return false;
        }
        send();
        return true;
    }

    /**
     * Queues {@code request} for the next {@link #send} (by this submitter, or by whoever holds the role then);
     * false if this session has ended. Any thread; never blocks.
     */
    boolean push(NbdRequest request) {
        while (true) {
            NbdRequest top = (NbdRequest) HEAD.getVolatile(this);
            if (top == CLOSED) {
                return false;
            }
            request.next = top;
            if (HEAD.compareAndSet(this, top, request)) {
                return true;
            }
        }
    }

    /** Sends everything pushed so far, or leaves it to the holder of the role. Any thread; never blocks. */
    void send() {
        if (ROLE.compareAndSet(this, FREE, SUBMITTER)) {
            sendAsSubmitter();
        } else if (writerParked && (int) ROLE.getVolatile(this) == WRITER) {
            LockSupport.unpark(writer);
        }
    }

    /** Holds the role: sends until nothing is left, or passes the rest to the writer. */
    private void sendAsSubmitter() {
        for (int batches = 0; ; ) {
            int outcome = pump(SUBMITTER_BATCHES - batches);
            if (outcome == BLOCKED) {
                handoffs++; // only the role's holder writes it
                ROLE.setVolatile(this, WRITER);
                if (writerParked) {
                    LockSupport.unpark(writer);
                }
                return;
            }
            ROLE.setVolatile(this, FREE);
            NbdRequest top = (NbdRequest) HEAD.getVolatile(this);
            if (top == null || top == CLOSED || socket.isShut() || !ROLE.compareAndSet(this, FREE, SUBMITTER)) {
                return; // nothing left, the session is ending (its teardown fails the rest), or a pusher has the role
            }
            batches += outcome;
            if (batches >= SUBMITTER_BATCHES) {
                handoffs++;
                ROLE.setVolatile(this, WRITER);
                LockSupport.unpark(writer);
                return;
            }
        }
    }

    /**
     * Sends what the outbox and the stack hold, at most {@code maxBatches} sends: the number of sends done once
     * everything is out (or the session failed), {@link #BLOCKED} if the socket is full or the budget spent
     * with more to send.
     */
    private int pump(int maxBatches) {
        int sends = 0;
        try {
            while (!socket.isShut()) {
                if (outbox.isEmpty() && !outbox.take((NbdRequest) HEAD.getAndSet(this, null))) {
                    return sends;
                }
                if (sends == maxBatches) {
                    return BLOCKED;
                }
                int pieces = build();
                long sent = socket.sendNow(errno, message.address());
                sends++;
                sendCalls++; // only the role's holder writes it
                if (sent == -SocketCalls.EAGAIN) {
                    return BLOCKED;
                }
                if (sent < 0) {
                    connection.drop("sending failed: errno " + -sent);
                    return sends;
                }
                if (!advance(pieces, sent)) {
                    return BLOCKED; // a partial send: the socket is full
                }
            }
        } catch (RuntimeException | Error e) {
            LOG.log(System.Logger.Level.ERROR, "NBD sender of " + connection.name() + " failed", e);
            connection.drop("internal error in the sender: " + e);
        }
        return sends;
    }

    /** Fills the msghdr with the next pieces from the outbox; returns how many pieces it covers. */
    private int build() {
        int iovs = 0;
        int pieces = 0;
        boolean bounced = false;
        int position = 0;
        long done = outbox.headDone;
        int piece = outbox.headPiece;
        while (position < outbox.size() && iovs < MAX_IOV - 1 && pieces < HEADER_SLOTS && !bounced) {
            NbdRequest request = outbox.request(position);
            int command = outbox.command(position);
            long pieceLength = outbox.pieceLength(position);
            long at = piece * pieceLength;
            long n = Math.min(pieceLength, outbox.length(position) - at);
            long payload = command == CMD_WRITE ? n : 0;
            if (done == 0) {
                if (piece == 0) {
                    request.moveState(NbdRequest.QUEUED, NbdRequest.SENT); // release: the reader sees the fields
                }
                request.setSentPieces(piece + 1); // before the header leaves: its reply may come at once
            }
            long header = (long) pieces * REQUEST_BYTES;
            headers.set(INT_BE, header, REQUEST_MAGIC);
            headers.set(SHORT_BE, header + 4, (short) outbox.flags(position));
            headers.set(SHORT_BE, header + 6, (short) command);
            headers.set(LONG_BE, header + 8, outbox.cookie(position) | piece);
            headers.set(LONG_BE, header + 16, outbox.offset(position) + at);
            headers.set(INT_BE, header + 24, (int) n);
            long included = 0;
            if (done < REQUEST_BYTES) {
                iovs = addIov(iovs, headers.address() + header + done, REQUEST_BYTES - done);
                included += REQUEST_BYTES - done;
            }
            long skip = Math.max(0, done - REQUEST_BYTES);
            long left = payload - skip;
            if (left > 0 && outbox.zeroPayload(position)) {
                iovs = addIov(iovs, ZEROES.address(), left);
                included += left;
                left = 0;
            } else if (left > 0) {
                IoVector data = outbox.data(position);
                skip += at;
                for (int i = 0; i < data.count() && left > 0 && iovs < MAX_IOV && !bounced; i++) {
                    MemorySegment segment = data.segment(i);
                    long size = segment.byteSize();
                    if (skip >= size) {
                        skip -= size;
                        continue;
                    }
                    long take = Math.min(size - skip, left);
                    if (segment.isNative()) {
                        iovs = addIov(iovs, segment.address() + skip, take);
                    } else { // heap memory: through the bounce buffer, once per send
                        take = Math.min(take, BOUNCE_BYTES);
                        MemorySegment.copy(segment, skip, bounce, 0, take);
                        iovs = addIov(iovs, bounce.address(), take);
                        bounced = true;
                    }
                    included += take;
                    left -= take;
                    skip = 0;
                }
            }
            batchBytes[pieces] = included;
            batchEndsPiece[pieces] = left == 0;
            pieces++;
            if (left > 0) {
                break; // the iovecs or the bounce buffer ran out within this piece: the rest goes next time
            }
            done = 0;
            if (++piece == outbox.pieces(position)) {
                piece = 0;
                position++;
            }
        }
        message.set(JAVA_LONG, SocketCalls.MSG_IOVLEN, iovs);
        return pieces;
    }

    private int addIov(int index, long address, long length) {
        long at = (long) index * IoVector.IOVEC_BYTES;
        iov.set(JAVA_LONG, at, address);
        iov.set(JAVA_LONG, at + 8, length);
        return index + 1;
    }

    /** Moves the outbox past {@code sent} bytes of the batch's {@code pieces}; false if the batch went out only in part. */
    private boolean advance(int pieces, long sent) {
        for (int k = 0; k < pieces; k++) {
            long bytes = batchBytes[k];
            if (sent < bytes) {
                outbox.headDone += sent;
                return false;
            }
            sent -= bytes;
            if (batchEndsPiece[k]) {
                outbox.pieceSent(); // the request's fields are not read again once its last byte is out
            } else {
                outbox.headDone += bytes;
            }
        }
        return true;
    }

    // ------------------------------------------------------------------ writer thread

    private void writeLoop() {
        while (!socket.isShut()) {
            if ((int) ROLE.getVolatile(this) != WRITER) {
                writerParked = true;
                if ((int) ROLE.getVolatile(this) != WRITER && !socket.isShut()) {
                    LockSupport.park(this);
                }
                writerParked = false;
                continue;
            }
            int outcome = pump(Integer.MAX_VALUE);
            if (outcome == BLOCKED) {
                socket.awaitWritable(errno, message.asSlice(SocketCalls.MSGHDR_BYTES, 8), 50);
                continue;
            }
            ROLE.setVolatile(this, FREE);
            NbdRequest top = (NbdRequest) HEAD.getVolatile(this);
            if (top != null && top != CLOSED) {
                ROLE.compareAndSet(this, FREE, WRITER); // else a submitter took the role and sends it
            }
        }
        ROLE.compareAndSet(this, WRITER, FREE); // leaving: the session's teardown takes the role next
    }

    /**
     * Ends sending for good: the writer has stopped, the socket is shut, and from now on no thread holds the role
     * or can push. Reader thread, at teardown; the session's requests are failed afterwards.
     */
    void close() {
        LockSupport.unpark(writer);
        try {
            writer.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        while (!ROLE.compareAndSet(this, FREE, ENDED)
                && !(!writer.isAlive() && ROLE.compareAndSet(this, WRITER, ENDED))) {
            Thread.yield(); // a submitter's send on the shut socket fails at once; it may need this CPU to get there
        }
        HEAD.getAndSet(this, CLOSED);
    }

    /** How many {@code sendmsg} calls the session made. */
    long sends() {
        return sendCalls;
    }

    /** How often a submitter passed the rest to the writer thread. */
    long handoffs() {
        return handoffs;
    }

    /** Wakes the writer (the session is ending). */
    void wakeWriter() {
        LockSupport.unpark(writer);
    }
}
