package io.javadevices.nvme.nbd;

import io.javadevices.nvme.backend.AsyncIo;
import io.javadevices.nvme.backend.IoEngine;
import io.javadevices.nvme.backend.IoVector;

import static io.javadevices.nvme.nbd.NbdProtocol.*;

/**
 * The NBD backend's asynchronous path for one queue worker: turns each operation into NBD requests in the
 * slot of its tag and pushes the slot to the namespace's connection; {@link #submit}, once per batch, sends the
 * batch (the worker sends it itself with one non-blocking gathering send unless another thread is sending, see
 * {@code NbdSender}; the reader thread completes it through the worker's engine). No allocation and no lock: a
 * compare-and-set per request to publish it, one per batch to claim the send.
 * Without a connection, or once it is lost, operations complete at once with {@code -ENOTCONN}.
 */
final class NbdAsync implements AsyncIo {
    final NbdBackend backend;
    final IoEngine engine;
    /** This worker's number in the backend's registry: the top 16 bits of its cookies. */
    final int id;
    final NbdRequest[] slots;
    /** Completions queued quietly for this worker in the reader's current burst (that reader's thread only). */
    boolean signalPending;
    /**
     * True for a queue worker's path: requests wait for {@link #submit}. False for the synchronous methods' path,
     * which many threads share and each call of which waits for its own request: sent at once.
     */
    private final boolean batched;
    /** The session this worker's current batch was pushed to, until {@link #submit} sends it (worker thread only). */
    private NbdConnection pushedTo;

    NbdAsync(NbdBackend backend, IoEngine engine, int id, boolean batched) {
        this.batched = batched;
        this.backend = backend;
        this.engine = engine;
        this.id = id;
        this.slots = new NbdRequest[engine.capacity()];
        for (int tag = 0; tag < slots.length; tag++) {
            slots[tag] = new NbdRequest(this, tag);
        }
    }

    @Override
    public void read(int tag, long offset, IoVector data) {
        NbdConnection connection = connected(tag);
        if (connection != null) {
            start(connection, tag, CMD_READ, 0, offset, data.bytes(), data, false, false);
        }
    }

    @Override
    public void write(int tag, long offset, IoVector data, boolean durable) {
        NbdConnection connection = writable(tag);
        if (connection != null) {
            NbdExport export = connection.export();
            boolean fua = durable && export.canFua();
            // No FUA: the write, then NBD_CMD_FLUSH, before the completion (what QEMU's block layer does).
            start(connection, tag, CMD_WRITE, fua ? CMD_FLAG_FUA : 0, offset, data.bytes(), data,
                    durable && !fua && export.canFlush(), false);
        }
    }

    @Override
    public void flush(int tag) {
        NbdConnection connection = connected(tag);
        if (connection == null) {
            return;
        }
        if (!connection.export().canFlush()) {
            engine.complete(tag, 0); // the server has no volatile cache to flush (QEMU's NBD client does the same)
            return;
        }
        start(connection, tag, CMD_FLUSH, 0, 0, 0, null, false, false);
    }

    @Override
    public void writeZeroes(int tag, long offset, long length, boolean durable) {
        NbdConnection connection = writable(tag);
        if (connection == null) {
            return;
        }
        NbdExport export = connection.export();
        boolean fua = durable && export.canFua();
        boolean flushAfter = durable && !fua && export.canFlush();
        if (export.canWriteZeroes()) {
            // NO_HOLE: the blocks stay allocated, as a Write Zeroes without DEAC asks (NVMe 1.4 §6.16).
            start(connection, tag, CMD_WRITE_ZEROES, CMD_FLAG_NO_HOLE | (fua ? CMD_FLAG_FUA : 0), offset, length,
                    null, flushAfter, false);
        } else {
            start(connection, tag, CMD_WRITE, fua ? CMD_FLAG_FUA : 0, offset, length, null, flushAfter, true);
        }
    }

    /**
     * With NBD_FLAG_SEND_WRITE_ZEROES: NBD_CMD_WRITE_ZEROES without NO_HOLE, which lets the server punch a hole
     * and still promises zeroes on read (proto.md) - so the namespace reports DLFEAT "reads zeroes". Otherwise
     * NBD_CMD_TRIM, which promises nothing about the contents; without either, nothing (deallocation is advisory).
     */
    @Override
    public void deallocate(int tag, long offset, long length) {
        NbdConnection connection = writable(tag);
        if (connection == null) {
            return;
        }
        NbdExport export = connection.export();
        if (export.canWriteZeroes()) {
            start(connection, tag, CMD_WRITE_ZEROES, 0, offset, length, null, false, false);
        } else if (export.canTrim()) {
            start(connection, tag, CMD_TRIM, 0, offset, length, null, false, false);
        } else {
            engine.complete(tag, 0);
        }
    }

    /** The live connection, or null once {@code tag} has been completed with -ENOTCONN. */
    private NbdConnection connected(int tag) {
        NbdConnection connection = backend.connection();
        if (connection == null) {
            engine.complete(tag, -ENOTCONN);
        }
        return connection;
    }

    /** The live connection to a writable export, or null once {@code tag} has been failed. */
    private NbdConnection writable(int tag) {
        NbdConnection connection = connected(tag);
        if (connection != null && connection.export().readOnly()) {
            engine.complete(tag, -EROFS);
            return null;
        }
        return connection;
    }

    private void start(NbdConnection connection, int tag, int command, int flags, long offset, long length,
                       IoVector data, boolean flushAfter, boolean zeroPayload) {
        NbdExport export = connection.export();
        if (offset < 0 || length < 0 || offset > export.size() - length) {
            engine.complete(tag, -EINVAL);
            return;
        }
        NbdRequest request = slots[tag];
        long pieceLength = pieceLength(command, zeroPayload, export);
        long pieces = length == 0 ? 1 : (length + pieceLength - 1) / pieceLength;
        if (pieces > 0xFFFF) {
            engine.complete(tag, -EINVAL); // beyond 65535 pieces (a 64 TiB trim): the cookie cannot number them
            return;
        }
        request.command = command;
        request.commandFlags = flags;
        request.offset = offset;
        request.length = length;
        request.data = data;
        request.pieceLength = (int) pieceLength;
        request.flushAfter = flushAfter;
        request.zeroPayload = zeroPayload;
        request.result = command == CMD_READ || command == CMD_WRITE && !zeroPayload
                ? (int) Math.min(length, Integer.MAX_VALUE) : 0;
        request.connection = connection;
        request.resetPieces((int) pieces);
        request.deadline = System.nanoTime() + backend.timeoutNanos();
        request.setState(NbdRequest.QUEUED);
        if (!batched) {
            if (!connection.submit(request)) {
                request.finish(NbdRequest.QUEUED, -ENOTCONN); // the connection closed meanwhile
            }
            return;
        }
        if (!connection.push(request)) {
            request.finish(NbdRequest.QUEUED, -ENOTCONN); // the connection closed meanwhile
            return;
        }
        if (pushedTo != connection) {
            submit(); // a reconnection within the batch: what went to the old session leaves first (or fails)
            pushedTo = connection;
        }
    }

    /** Sends the batch pushed since the last call: one send role, one gathering {@code sendmsg} for all of it. */
    @Override
    public void submit() {
        NbdConnection connection = pushedTo;
        if (connection != null) {
            pushedTo = null;
            connection.send();
        }
    }

    /** Payload commands are split at the server's maximum block size, the others at 1 GiB. */
    static long pieceLength(int command, boolean zeroPayload, NbdExport export) {
        if (zeroPayload) {
            return Math.min(export.maxPayload(), NbdConnection.ZERO_BUFFER_BYTES);
        }
        return command == CMD_READ || command == CMD_WRITE ? export.maxPayload() : MAX_EFFECT_LENGTH;
    }
}
