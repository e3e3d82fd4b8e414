package io.javadevices.nvme.model;

import java.lang.foreign.MemorySegment;

import static io.javadevices.nvme.spec.LittleEndian.SHORT;
import static io.javadevices.nvme.spec.LittleEndian.INT;
import static io.javadevices.nvme.spec.LittleEndian.LONG;

/**
 * Error Information log (Get Log Page 01h, NVMe 1.4 §5.14.1.1, Figure 194): the last 64 errors, newest
 * first, each 64 bytes. Errors are rare, so a lock is fine here.
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
            long base = 64L * i;
            page.set(LONG, base, e[0]);                           // Error Count
            page.set(SHORT, base + 8, (short) e[1]);              // Submission Queue ID
            page.set(SHORT, base + 10, (short) e[2]);             // Command ID
            page.set(SHORT, base + 12, (short) (e[3] << 1));      // Status Field (bit 0 = phase, 0)
            page.set(SHORT, base + 14, (short) 0xFFFF);           // Parameter Error Location: n/a
            page.set(LONG, base + 16, e[4]);                      // LBA
            page.set(INT, base + 24, (int) e[5]);                 // Namespace
        }
    }
}
