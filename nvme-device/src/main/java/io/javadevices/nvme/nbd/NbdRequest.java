package io.javadevices.nvme.nbd;

import io.javadevices.nvme.backend.IoVector;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * One in-flight slot of one worker's {@link NbdAsync}: the NBD request(s) carrying the operation with that tag,
 * allocated once and reused. An operation larger than the server's maximum payload travels as several NBD
 * requests ("pieces", each its own cookie); it completes when the last piece's reply arrives.
 *
 * <p>Ownership moves with {@link #state}: the worker fills the fields and publishes the slot (QUEUED) on the
 * connection's submission stack; the sender (whoever holds the send role, see {@code NbdSender}) copies them and
 * marks it SENT (a release compare-and-set, so the reader sees what the worker wrote); the reader thread then owns the reply bookkeeping; whoever moves the state back
 * to IDLE by compare-and-set reports the completion, exactly once.
 */
final class NbdRequest {
    static final int IDLE = 0, QUEUED = 1, SENT = 2;
    private static final VarHandle STATE, SENT_PIECES;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            STATE = lookup.findVarHandle(NbdRequest.class, "state", int.class);
            SENT_PIECES = lookup.findVarHandle(NbdRequest.class, "sentPieces", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    final NbdAsync owner;
    final int tag;

    // Written by the worker (or by the reader for a FUA emulation's flush) before publishing.
    int command;
    int commandFlags;
    long offset;
    long length;
    IoVector data;
    /** Bytes per piece. */
    int pieceLength;
    int pieces;
    /** After a successful write: send NBD_CMD_FLUSH before completing (a durable write on a server without FUA). */
    boolean flushAfter;
    /** Write Zeroes emulated by writes of a zero buffer. */
    boolean zeroPayload;
    int result;
    int generation;
    NbdConnection connection;
    /** System.nanoTime() after which the connection is dropped (volatile: read by the monitor thread). */
    volatile long deadline;
    /** The next request on the submission stack. */
    NbdRequest next;

    private volatile int state;
    /** Pieces whose request the sender has begun to send; a reply for a later one is a server error. */
    private volatile int sentPieces;

    // Reader thread only (after the SENT edge).
    int remaining;
    int error;
    long[] answered = new long[1];

    NbdRequest(NbdAsync owner, int tag) {
        this.owner = owner;
        this.tag = tag;
    }

    int state() {
        return state;
    }

    void setState(int value) {
        STATE.setRelease(this, value);
    }

    boolean moveState(int from, int to) {
        return STATE.compareAndSet(this, from, to);
    }

    int sentPieces() {
        return (int) SENT_PIECES.getAcquire(this);
    }

    void setSentPieces(int n) {
        SENT_PIECES.setRelease(this, n);
    }

    /** The cookie of piece {@code piece}: async id, tag, generation, piece (16 bits each). */
    long cookie(int piece) {
        return (long) owner.id << 48 | (long) tag << 32 | (long) (generation & 0xFFFF) << 16 | piece;
    }

    /** Prepares the reply bookkeeping for {@code pieces} pieces (worker or reader, before publishing). */
    void resetPieces(int pieces) {
        this.pieces = pieces;
        this.remaining = pieces;
        this.error = 0;
        int words = (pieces + 63) >>> 6;
        if (answered.length < words) {
            answered = new long[words]; // only for the largest operation so far: once per slot at most a few times
        } else {
            for (int i = 0; i < words; i++) {
                answered[i] = 0;
            }
        }
        generation++;
        SENT_PIECES.setRelease(this, 0);
    }

    /** Marks {@code piece} answered; false if it already was. Reader thread. */
    boolean answer(int piece) {
        long bit = 1L << (piece & 63);
        long word = answered[piece >>> 6];
        if ((word & bit) != 0) {
            return false;
        }
        answered[piece >>> 6] = word | bit;
        return true;
    }

    /**
     * As {@link #finish}, without waking the worker: the reader signals each worker once after a burst of replies
     * ({@code IoEngine.completeQuietly}). Reader thread.
     */
    boolean finishQuietly(int from, int value) {
        if (!moveState(from, IDLE)) {
            return false;
        }
        data = null;
        owner.engine.completeQuietly(tag, value);
        return true;
    }

    /** Completes the operation with {@code value} if it is still in flight in state {@code from}. */
    boolean finish(int from, int value) {
        if (!moveState(from, IDLE)) {
            return false;
        }
        data = null; // no reference to the guest buffers past the completion
        owner.engine.complete(tag, value);
        return true;
    }
}
