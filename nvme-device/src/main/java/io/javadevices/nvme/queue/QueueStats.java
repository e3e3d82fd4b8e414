package io.javadevices.nvme.queue;

/**
 * Counters of one queue worker: plain fields written only by that worker's thread and summed by
 * {@code NvmeController.statistics()} (racy but monotonic reads are fine for observability); no shared
 * atomics on the I/O path.
 */
public final class QueueStats {
    public long adminCommands, dbbufAccepted, dbbufRejected;
    public long ioCommands, reads, writes, flushes, bytesRead, bytesWritten, ioErrors;
    public long shadowSq, shadowCq, polledSq, interrupts, naps;
    /** Commands by opcode: admin opcodes (counted by the admin queue's worker) and I/O opcodes. */
    public final long[] adminByOpcode = new long[256], ioByOpcode = new long[256];

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
