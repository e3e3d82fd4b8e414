package io.javadevices.nvme.backend;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.atomic.LongAdder;

/**
 * The durability state of one {@link FileBackend}, shared by every path that makes its data durable: the
 * synchronous path and the thread pool (through the backend's {@code sync} and {@code writeDurable}) and each
 * queue's io_uring ring ({@link UringFileIo}). It is the one place that
 * <ul>
 * <li>counts durability points: every successful {@code fdatasync} (Flush, a durable zeroing, a durable write
 *     without {@code RWF_DSYNC}) and every successful {@code RWF_DSYNC} write is one sync ({@code nsN.syncs}),
 *     whichever path did it; failed and refused ones are {@code nsN.sync.errors};</li>
 * <li>keeps the sticky first failure (see FileBackend's class comment: after a failed write-back Linux reports the
 *     error once per open file, so every later sync must fail with it, as QEMU's file-posix keeps
 *     {@code page_cache_inconsistent});</li>
 * <li>holds the fault-injection seam ({@link #failNext}): the next durability point of any path fails as if the
 *     kernel had returned the error, so a test drives the same failure through every engine.</li>
 * </ul>
 * Lock-free on the success path but for {@link #sync}'s one-at-a-time fdatasync; the counters are
 * {@link LongAdder}s, so queues counting at once do not contend on one cache line.
 */
final class SyncState {
    private static final System.Logger LOG = System.getLogger(FileBackend.class.getName());

    private final Path path;
    private final LongAdder syncs = new LongAdder();
    private final LongAdder errors = new LongAdder();
    /** Of {@link #syncs}: the durable writes done with RWF_DSYNC (what a test asks to see which call was used). */
    private final LongAdder dsyncWrites = new LongAdder();
    private final Object lock = new Object();
    /** The first failure of a durability point; once set, every sync and durable write fails with it. */
    private volatile IOException failure;
    /** The fault-injection seam: the next durability point fails with this instead of what the kernel said. */
    private volatile IOException injected;

    SyncState(Path path) {
        this.path = path;
    }

    /**
     * One fdatasync at a time per namespace, like QEMU's {@code bdrv_co_flush} queue: Linux reports a write-back
     * error once per open file, so a sync overlapping a failing one could return success for pages that were
     * just lost. Only Flush, FUA and write-through writes come here; cached writes never take this lock.
     */
    void sync(int fd) throws IOException {
        synchronized (lock) {
            if (failure == null) {
                IOException next = takeInjected();
                if (next == null) {
                    int rc = Posix.fdatasync(fd);
                    if (rc == 0) {
                        syncs.increment();
                        return;
                    }
                    next = Posix.ioError("fdatasync of " + path, rc);
                }
                record(next);
            }
            errors.increment();
            throw failure;
        }
    }

    /**
     * Before a durable write of the synchronous paths: throws (counted) once a sync has failed, since the write
     * could not be made durable, or if a failure is injected (then it is the sticky failure from now on).
     */
    void beforeDurableWrite() throws IOException {
        IOException next = takeInjected();
        if (next != null) {
            failed(next);
        }
        IOException first = failure;
        if (first != null) {
            if (next == null) {
                errors.increment();
            }
            throw first;
        }
    }

    /** An {@code RWF_DSYNC} write returned having written everything: a durability point of its own. */
    void dsyncWritten() {
        dsyncWrites.increment();
        syncs.increment();
    }

    /** An fsync ({@code IORING_FSYNC_DATASYNC}) of an io_uring queue's descriptor succeeded. */
    void ringSynced() {
        syncs.increment();
    }

    /** A durable operation was refused because an earlier sync failed. */
    void refused() {
        errors.increment();
    }

    /**
     * A durability point failed (a failed RWF_DSYNC write: its implicit sync may have taken the only report of a
     * lost write-back; a failed fsync of a ring): counted, and the first such failure is sticky.
     */
    void failed(IOException e) {
        synchronized (lock) {
            if (failure == null) {
                record(e);
            }
            errors.increment();
        }
    }

    private void record(IOException e) {
        failure = e;
        // Logged once: every later sync fails with this same error, silently.
        LOG.log(System.Logger.Level.ERROR, "durable write-back of " + path + " failed: " + e.getMessage()
                + "; writes since the last good sync may be lost, so every Flush and FUA write on this"
                + " namespace fails from now on until it is opened again");
    }

    /** Fault injection: the next durability point, on whichever path, fails with {@code e}. */
    void failNext(IOException e) {
        injected = e;
    }

    /**
     * The injected failure if one is waiting (then consumed: it fails exactly one durability point), else null.
     * One volatile read when none is: cheap enough for the completion of every durable operation.
     */
    IOException takeInjected() {
        if (injected == null) {
            return null;
        }
        synchronized (lock) {
            IOException e = injected;
            injected = null;
            return e;
        }
    }

    long syncs() {
        return syncs.sum();
    }

    long dsyncWrites() {
        return dsyncWrites.sum();
    }

    long errors() {
        return errors.sum();
    }

    boolean failed() {
        return failure != null;
    }
}
