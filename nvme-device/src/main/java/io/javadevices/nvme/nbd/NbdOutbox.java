package io.javadevices.nvme.nbd;

import io.javadevices.nvme.backend.IoVector;

/**
 * The requests the send role's holder has taken off the submission stack and not yet sent completely, oldest
 * first, with a copy of each one's fields taken while it was still unsent: once a request's last byte is out, its
 * reply may complete it and its worker reuse the slot at once, so the sender must never read the slot again - and
 * a server that answers before the request was sent must not make the sender read fields of another command.
 * Only the role's holder touches it; the role's hand-over orders the accesses. Grows (rarely: to the most
 * requests queued at once) and never shrinks, so a steady state allocates nothing.
 */
final class NbdOutbox {
    private NbdRequest[] requests = new NbdRequest[64];
    private int[] command = new int[64];
    private int[] flags = new int[64];
    private long[] offset = new long[64];
    private long[] length = new long[64];
    private long[] pieceLength = new long[64];
    private int[] pieces = new int[64];
    private long[] cookie = new long[64];
    private IoVector[] data = new IoVector[64];
    private boolean[] zeroPayload = new boolean[64];
    private int first;
    private int size;
    /** The oldest request's piece being sent, and the bytes of that piece (header, then payload) already sent. */
    int headPiece;
    long headDone;

    boolean isEmpty() {
        return size == 0;
    }

    int size() {
        return size;
    }

    /**
     * Appends the requests of a stack taken by swap ({@code top}: newest first, linked by {@link NbdRequest#next});
     * false if there were none.
     */
    boolean take(NbdRequest top) {
        if (top == null) {
            return false;
        }
        NbdRequest fifo = null; // newest first: reverse into submission order
        while (top != null) {
            NbdRequest next = top.next;
            top.next = fifo;
            fifo = top;
            top = next;
        }
        while (fifo != null) {
            NbdRequest next = fifo.next; // read before anything is sent: a completed slot may be pushed again
            fifo.next = null;
            append(fifo);
            fifo = next;
        }
        return true;
    }

    private void append(NbdRequest request) {
        if (size == requests.length) {
            grow();
        }
        int at = index(size);
        requests[at] = request;
        command[at] = request.command;
        flags[at] = request.commandFlags;
        offset[at] = request.offset;
        length[at] = request.length;
        pieceLength[at] = request.pieceLength;
        pieces[at] = request.pieces;
        cookie[at] = request.cookie(0);
        data[at] = request.data;
        zeroPayload[at] = request.zeroPayload;
        size++;
    }

    /** One more piece of the oldest request is out; the request leaves once its last one is. */
    void pieceSent() {
        headDone = 0;
        if (++headPiece < pieces[first]) {
            return;
        }
        headPiece = 0;
        requests[first] = null;
        data[first] = null; // no reference to guest buffers past the send
        first = first + 1 == requests.length ? 0 : first + 1;
        size--;
    }

    private int index(int position) {
        int at = first + position;
        return at >= requests.length ? at - requests.length : at;
    }

    NbdRequest request(int position) {
        return requests[index(position)];
    }

    int command(int position) {
        return command[index(position)];
    }

    int flags(int position) {
        return flags[index(position)];
    }

    long offset(int position) {
        return offset[index(position)];
    }

    long length(int position) {
        return length[index(position)];
    }

    long pieceLength(int position) {
        return pieceLength[index(position)];
    }

    int pieces(int position) {
        return pieces[index(position)];
    }

    long cookie(int position) {
        return cookie[index(position)];
    }

    IoVector data(int position) {
        return data[index(position)];
    }

    boolean zeroPayload(int position) {
        return zeroPayload[index(position)];
    }

    /** Doubles every array, the oldest request first again. */
    private void grow() {
        int n = requests.length;
        requests = (NbdRequest[]) unwrap(requests, new NbdRequest[2 * n], n);
        data = (IoVector[]) unwrap(data, new IoVector[2 * n], n);
        command = (int[]) unwrap(command, new int[2 * n], n);
        flags = (int[]) unwrap(flags, new int[2 * n], n);
        pieces = (int[]) unwrap(pieces, new int[2 * n], n);
        offset = (long[]) unwrap(offset, new long[2 * n], n);
        length = (long[]) unwrap(length, new long[2 * n], n);
        pieceLength = (long[]) unwrap(pieceLength, new long[2 * n], n);
        cookie = (long[]) unwrap(cookie, new long[2 * n], n);
        zeroPayload = (boolean[]) unwrap(zeroPayload, new boolean[2 * n], n);
        first = 0;
    }

    /** Copies the full ring {@code array} into {@code grown}, oldest first. */
    private Object unwrap(Object array, Object grown, int n) {
        System.arraycopy(array, first, grown, 0, n - first);
        System.arraycopy(array, 0, grown, n - first, first);
        return grown;
    }
}
