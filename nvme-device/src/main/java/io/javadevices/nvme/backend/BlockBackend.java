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

    /** Makes completed writes durable. */
    void flush() throws IOException;

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

    /** Short description for logs, e.g. {@code ram:1G}. */
    String describe();

    @Override
    void close();
}
