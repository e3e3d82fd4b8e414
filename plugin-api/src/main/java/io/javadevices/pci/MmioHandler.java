package io.javadevices.pci;

/**
 * Behaviour of one BAR: the device's answer to guest loads and stores in that BAR.
 *
 * <p><b>Who calls it.</b> The host (a VMM's vCPU exit path, or the vfio-user transport's socket
 * thread) calls it, one access at a time per device and in the order the guest issued them. The
 * host has already checked that {@code offset + size} lies within the BAR and splits larger or
 * unaligned accesses into naturally aligned pieces (see {@link MmioAccess}).
 *
 * <p><b>Rules.</b> Return quickly: never block on I/O or on a lock held by a worker. A doorbell write
 * should only record the value and wake the worker that owns the queue. Values are little-endian,
 * zero-extended to 64 bits; {@code size} is 1, 2, 4 or 8. Implementations must not throw for any
 * offset/size/value the host can pass: unknown registers read as 0 and ignore writes.
 */
public interface MmioHandler {

    /** Reads {@code size} bytes at {@code offset} within the BAR. */
    long read(long offset, int size);

    /** Writes the low {@code size} bytes of {@code value} at {@code offset} within the BAR. */
    void write(long offset, int size, long value);

    /** A handler for BARs whose contents are owned by the host (e.g. an MSI-X table in vfio-user). */
    MmioHandler ZERO = new MmioHandler() {
        @Override
        public long read(long offset, int size) {
            return 0;
        }

        @Override
        public void write(long offset, int size, long value) {
        }
    };
}
