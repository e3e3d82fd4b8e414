package io.javadevices.nvme.model;

import io.javadevices.nvme.spec.ErrorLogEntry;

import java.lang.foreign.MemorySegment;

/**
 * Error Information log (Get Log Page 01h, NVMe 1.4 §5.14.1.1): the last 64 errors, newest first, each one
 * {@link ErrorLogEntry} of 64 bytes. Errors are rare, so a lock is fine here.
 */
public final class ErrorLog {
    public static final int ENTRIES = 64;

    private final long[][] entries = new long[ENTRIES][];
    private long count;

    /** Records an error: submission queue, command, status, LBA, namespace. */
    public synchronized void record(int sqid, int cid, int status, long lba, int nsid) {
        count++;
        entries[(int) (count % ENTRIES)] = new long[] {count, sqid, cid, status, lba, nsid};
    }

    public synchronized long count() {
        return count;
    }

    /** Writes up to 64 entries (newest first) into {@code page} (at least 4096 bytes). */
    public synchronized void render(MemorySegment page) {
        for (int i = 0; i < ENTRIES && i < count; i++) {
            long[] e = entries[(int) ((count - i) % ENTRIES)];
            long base = ErrorLogEntry.SIZE * i;
            ErrorLogEntry.ERRCNT.set(page, base, e[0]);
            ErrorLogEntry.SQID.set(page, base, (short) e[1]);
            ErrorLogEntry.CID.set(page, base, (short) e[2]);
            ErrorLogEntry.STATUS.set(page, base, (short) (e[3] << 1));     // phase tag (bit 0) reads 0
            ErrorLogEntry.PEL.set(page, base, (short) 0xFFFF);            // not specific to a parameter
            ErrorLogEntry.LBA.set(page, base, e[4]);
            ErrorLogEntry.NSID.set(page, base, (int) e[5]);
        }
    }
}
