package io.javadevices.nvme.backend;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * Storage behind one namespace, addressed in bytes. Called concurrently from several queue workers:
 * implementations are thread-safe without a global lock. {@code dst}/{@code src} are usually zero-copy
 * slices of guest memory; implementations read or write them directly.
 */
public interface BlockBackend extends AutoCloseable {

    /** Capacity in bytes. */
    long size();

    /** Fills {@code dst} (all of it) with the bytes at {@code offset}. */
    void read(long offset, MemorySegment dst) throws IOException;

    /** Stores all of {@code src} at {@code offset}. */
    void write(long offset, MemorySegment src) throws IOException;

    /**
     * Makes completed writes durable (NVMe Flush). Once a backend's write-back has failed, this keeps failing
     * until the backend is opened again: the lost writes cannot be recovered by trying again.
     */
    void flush() throws IOException;

    /**
     * Makes the completed write of {@code [offset, offset + length)} durable: a FUA write, or any write while
     * the volatile write cache is disabled. Backends that cannot sync a range sync everything (the default).
     */
    default void sync(long offset, long length) throws IOException {
        flush();
    }

    /**
     * Writes {@code data} (its buffers in order) at {@code offset} and returns once it is durable: a FUA write, or
     * any write while the volatile write cache is disabled. Every engine's durable write of a backend's own
     * blocking methods comes here (the synchronous path, the thread pool, io_uring's synchronous fallback).
     * Default: the plain writes, then {@link #sync} of the range. A file writes it with {@code RWF_DSYNC} instead
     * ({@link FileBackend}). A failure may have lost the write's durability: it is a failed sync.
     */
    default void writeDurable(long offset, IoVector data) throws IOException {
        DurableWrites.writePlainly(this, offset, data, 0);
        sync(offset, data.bytes());
    }

    /**
     * True if a completed write can be lost unless it is flushed (a host page cache in front of the media):
     * the controller then advertises a volatile write cache (Identify VWC). A RAM disk has none: its data is
     * lost with the process whatever the guest flushes, and survives anything short of that.
     */
    default boolean volatileWriteCache() {
        return false;
    }

    /** Successful syncs so far (fdatasync calls and RWF_DSYNC writes, on every path), for the statistics. */
    default long syncs() {
        return 0;
    }

    /** Failed syncs so far, including those refused because an earlier one failed. */
    default long syncErrors() {
        return 0;
    }

    /** True once a sync has failed: every later flush and sync fails too. */
    default boolean syncFailed() {
        return false;
    }

    /** Sets {@code length} bytes at {@code offset} to zero. */
    void writeZeroes(long offset, long length) throws IOException;

    /**
     * Deallocates (trims) a range. After it, reads of the range return zeroes if {@link #deallocatedReadsZero()}.
     */
    void deallocate(long offset, long length) throws IOException;

    /** True if deallocated blocks read as zero (Identify Namespace DLFEAT bits 2:0 = 001b). */
    boolean deallocatedReadsZero();

    /**
     * True if every read returns zeroes whatever was written (the {@code null} backend): the controller
     * then zero-fills the guest buffer itself through {@code GuestMemory.fill}, without a buffer slice.
     */
    default boolean readsOnlyZeroes() {
        return false;
    }

    /**
     * The asynchronous path of this backend for one queue worker's {@code engine}, or null: the worker then runs
     * this backend's commands synchronously with the methods above (RAM and null backends, whose work is a memory
     * copy that would gain nothing from a hand-off). Called on the worker's thread the first time that worker
     * executes a command of this namespace; the result is used by that worker only.
     */
    default AsyncIo openAsync(IoEngine engine) {
        return null;
    }

    /**
     * True if a call of the blocking methods above may take long (storage, a network: an {@code fdatasync} on busy
     * storage, an NBD server's timeout). An I/O queue on a shared polling thread never runs such a call itself: it
     * hands the command to its controller's offload thread ({@code CommandOffload}). False for a backend whose
     * work is a memory copy (RAM, null). Default: true, the safe answer for storage not known here.
     */
    default boolean mayBlock() {
        return true;
    }

    /**
     * True if writes are refused (a read-only NBD export, a read-only image): the namespace is then reported
     * write protected (Identify Namespace NSATTR bit 0) and every write gets Namespace Is Write Protected.
     */
    default boolean readOnly() {
        return false;
    }

    /**
     * Why this backend's size cannot change (e.g. an NBD export's size belongs to its server), or null if
     * {@link #resize} works. Default: a fixed size.
     */
    default String notResizable() {
        return "its backend (" + describe() + ") has a fixed size";
    }

    /**
     * Changes the capacity to {@code newSize} bytes (the control plane's {@code namespace_resize}); a grown range
     * reads zero. The caller grows before the namespace shows the new size and shrinks only once no command can
     * reach past the new end (it has waited for the commands in flight). Only if {@link #notResizable()} is null.
     */
    default void resize(long newSize) throws IOException {
        throw new IOException(notResizable());
    }

    /** Short description for logs, e.g. {@code ram:1G}. */
    String describe();

    @Override
    void close();
}
