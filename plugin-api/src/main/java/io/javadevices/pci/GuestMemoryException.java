package io.javadevices.pci;

/**
 * A DMA access touched guest-physical memory that is not mapped (or was unmapped while in use).
 *
 * <p>Thrown by {@link GuestMemory} on the calling (device worker) thread. It is checked on purpose:
 * a device must turn it into a device-level error (for NVMe: a Data Transfer Error status), never
 * let it crash the device or the server.
 */
public final class GuestMemoryException extends Exception {
    private final long address;
    private final long length;

    public GuestMemoryException(String message, long address, long length) {
        super(message + String.format(" [gpa 0x%x, length %d]", address, length), null, false, false);
        this.address = address;
        this.length = length;
    }

    /** The guest-physical address of the failed access. */
    public long address() {
        return address;
    }

    /** The length in bytes of the failed access. */
    public long length() {
        return length;
    }
}
