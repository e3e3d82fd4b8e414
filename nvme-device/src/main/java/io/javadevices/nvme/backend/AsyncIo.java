package io.javadevices.nvme.backend;

/**
 * The asynchronous path of one namespace's backend for one queue worker ({@link BlockBackend#openAsync}). Each
 * call prepares one operation with the worker's {@code tag}; it starts at the latest on the engine's next
 * {@link IoEngine#submit}, which the worker follows with {@link #submit} on every path it opened, and completes
 * through the engine, in any order relative to the others. Calls come from
 * the worker's thread only; an implementation keeps no per-call allocation and no lock shared across queues.
 *
 * <p>A call never throws for an I/O failure: the failure is the operation's result (a negated errno), so the
 * worker turns every outcome into one NVMe status in one place. Ordering is what NVMe promises, nothing more: an
 * operation covers the writes that <em>completed</em> before it was prepared (a Flush makes those durable, as
 * {@code fdatasync} and NBD's {@code NBD_CMD_FLUSH} do), and operations in flight together may finish in any order.
 */
public interface AsyncIo {

    /** Reads {@code data.bytes()} bytes at {@code offset} into {@code data}'s buffers. */
    void read(int tag, long offset, IoVector data);

    /**
     * Writes {@code data} at {@code offset}. {@code durable}: a FUA write or any write while the volatile write
     * cache is disabled: it completes only once the data is on stable media ({@code RWF_DSYNC}, NBD's
     * {@code NBD_CMD_FLAG_FUA}, or a write followed by a flush).
     */
    void write(int tag, long offset, IoVector data, boolean durable);

    /** Makes every completed write durable (NVMe Flush: {@code fdatasync}, {@code NBD_CMD_FLUSH}). */
    void flush(int tag);

    /** Sets {@code length} bytes at {@code offset} to zero; {@code durable} as for {@link #write}. */
    void writeZeroes(int tag, long offset, long length, boolean durable);

    /**
     * Deallocates a range (Dataset Management deallocate, Write Zeroes with DEAC); afterwards the range reads
     * zeroes if the backend's {@link BlockBackend#deallocatedReadsZero()} says so.
     */
    void deallocate(int tag, long offset, long length);

    /**
     * Starts what the calls since the last {@code submit} prepared, for a path that holds operations back to
     * start a batch together (NBD: one gathering send for the batch). The worker calls it once per batch, right
     * after {@link IoEngine#submit}. Default: nothing is held back.
     */
    default void submit() {
    }
}
