package io.javadevices.nvme.backend;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.atomic.LongAdder;

/**
 * The durability state of one {@link FileBackend}: its fdatasync calls, their counts, and the sticky first
 * failure (see FileBackend's class comment: after a failed write-back Linux reports the error once per open
 * file, so every later sync must fail with it, as QEMU's file-posix keeps {@code page_cache_inconsistent}).
 */
final class SyncState {
    private static final System.Logger LOG = System.getLogger(FileBackend.class.getName());

    private final LongAdder syncs = new LongAdder();
    private final LongAdder errors = new LongAdder();
    private final Object lock = new Object();
    /** The first fdatasync failure; once set, every sync fails with it. */
    private volatile IOException failure;
    /** Fault injection for tests: the next sync fails with this instead of calling fdatasync. */
    private volatile IOException injected;

    /**
     * One fdatasync at a time per namespace, like QEMU's {@code bdrv_co_flush} queue: Linux reports a write-back
     * error once per open file, so a sync overlapping a failing one could return success for pages that were
     * just lost. Only Flush, FUA and write-through writes come here; cached writes never take this lock.
     */
    void sync(int fd, Path path) throws IOException {
        synchronized (lock) {
            if (failure == null) {
                IOException next = injected;
                if (next != null) {
                    injected = null;
                } else {
                    int rc = Posix.fdatasync(fd);
                    if (rc == 0) {
                        syncs.increment();
                        return;
                    }
                    next = Posix.ioError("fdatasync of " + path, rc);
                }
                record(next, path);
            }
            errors.increment();
            throw failure;
        }
    }

    /** A durable write (RWF_DSYNC) failed: its implicit sync may have taken the only report of a lost write-back. */
    void failed(IOException e, Path path) {
        synchronized (lock) {
            if (failure == null) {
                record(e, path);
            }
            errors.increment();
        }
    }

    private void record(IOException e, Path path) {
        failure = e;
        // Logged once: every later sync fails with this same error, silently.
        LOG.log(System.Logger.Level.ERROR, "durable write-back of " + path + " failed: " + e.getMessage()
                + "; writes since the last good sync may be lost, so every Flush and FUA write on this"
                + " namespace fails from now on until it is opened again");
    }

    void failNext(IOException e) {
        injected = e;
    }

    /** A test's injected failure is waiting for the next sync ({@link FileBackend#failNextSync}). */
    boolean failurePending() {
        return injected != null;
    }

    long syncs() {
        return syncs.sum();
    }

    long errors() {
        return errors.sum();
    }

    boolean failed() {
        return failure != null;
    }
}
