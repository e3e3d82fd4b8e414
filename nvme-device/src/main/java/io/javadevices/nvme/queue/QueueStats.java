package io.javadevices.nvme.queue;

/**
 * Counters of one queue worker: plain fields written only by that worker's thread and summed by the
 * {@link QueueTable} (racy but monotonic reads are fine for observability); no shared atomics on the
 * I/O path. The command sets count through the {@code count*} methods; the worker and its queues (this
 * package) bump their own fields directly.
 */
public final class QueueStats {
    long adminCommands, dbbufAccepted, dbbufRejected;
    long ioCommands, reads, writes, flushes, bytesRead, bytesWritten, ioErrors;
    /** I/O commands whose data pointer was an SGL (PSDT 01b or 10b). */
    long sglCommands;
    long shadowSq, shadowCq, polledSq, interrupts, naps;
    /** Commands by opcode: admin opcodes (counted by the admin queue's worker) and I/O opcodes. */
    final long[] adminByOpcode = new long[256], ioByOpcode = new long[256];

    // ------------------------------------------------------------------ counting (the worker's thread)

    public void countAdminCommand() {
        adminCommands++;
    }

    /** A Doorbell Buffer Config command, accepted or rejected. */
    public void countDbbuf(boolean accepted) {
        if (accepted) {
            dbbufAccepted++;
        } else {
            dbbufRejected++;
        }
    }

    public void countIoCommand() {
        ioCommands++;
    }

    public void countIoError() {
        ioErrors++;
    }

    /** An I/O command that came with an SGL data pointer. */
    public void countSgl() {
        sglCommands++;
    }

    public void countRead(long bytes) {
        reads++;
        bytesRead += bytes;
    }

    public void countWrite(long bytes) {
        writes++;
        bytesWritten += bytes;
    }

    public void countFlush() {
        flushes++;
    }

    public void countInterrupt() {
        interrupts++;
    }

    /** How many counters {@link #moveTransfersTo} moves: reads, bytes read, writes, bytes written, flushes. */
    static final int TRANSFER_COUNTS = 5;

    /**
     * Moves what an offloaded command counted ({@link CommandOffload}: these stats are that thread's scratch) into
     * {@code into} and zeroes it here, for the queue's worker to add ({@link #addTransfers}) when it completes.
     */
    void moveTransfersTo(long[] into) {
        into[0] = reads;
        into[1] = bytesRead;
        into[2] = writes;
        into[3] = bytesWritten;
        into[4] = flushes;
        reads = bytesRead = writes = bytesWritten = flushes = 0;
    }

    /** Adds what {@link #moveTransfersTo} took. Worker thread. */
    void addTransfers(long[] from) {
        reads += from[0];
        bytesRead += from[1];
        writes += from[2];
        bytesWritten += from[3];
        flushes += from[4];
    }

    // ------------------------------------------------------------------ reading (statistics, SMART log)

    public long adminCommands() {
        return adminCommands;
    }

    public long dbbufAccepted() {
        return dbbufAccepted;
    }

    public long dbbufRejected() {
        return dbbufRejected;
    }

    public long ioCommands() {
        return ioCommands;
    }

    public long sglCommands() {
        return sglCommands;
    }

    public long reads() {
        return reads;
    }

    public long writes() {
        return writes;
    }

    public long flushes() {
        return flushes;
    }

    public long bytesRead() {
        return bytesRead;
    }

    public long bytesWritten() {
        return bytesWritten;
    }

    public long ioErrors() {
        return ioErrors;
    }

    public long shadowSq() {
        return shadowSq;
    }

    public long shadowCq() {
        return shadowCq;
    }

    public long polledSq() {
        return polledSq;
    }

    public long interrupts() {
        return interrupts;
    }

    public long naps() {
        return naps;
    }

    public long adminByOpcode(int opcode) {
        return adminByOpcode[opcode];
    }

    public long ioByOpcode(int opcode) {
        return ioByOpcode[opcode];
    }

    public void addTo(QueueStats total) {
        total.adminCommands += adminCommands;
        total.dbbufAccepted += dbbufAccepted;
        total.dbbufRejected += dbbufRejected;
        total.ioCommands += ioCommands;
        total.reads += reads;
        total.writes += writes;
        total.flushes += flushes;
        total.bytesRead += bytesRead;
        total.bytesWritten += bytesWritten;
        total.ioErrors += ioErrors;
        total.sglCommands += sglCommands;
        total.shadowSq += shadowSq;
        total.shadowCq += shadowCq;
        total.polledSq += polledSq;
        total.naps += naps;
        total.interrupts += interrupts;
        for (int op = 0; op < 256; op++) {
            total.adminByOpcode[op] += adminByOpcode[op];
            total.ioByOpcode[op] += ioByOpcode[op];
        }
    }
}
