package io.javadevices.vfiouser.server;

/**
 * Resource limits of a {@link VfioUserServer}: what one client may make the server allocate or hold.
 * Every size the client sends is checked against these before anything is allocated.
 *
 * @param maxMessageBytes  largest accepted message, header included; larger headers get an E2BIG reply
 *                         and a disconnect (the rest of such a message cannot be trusted). The receive buffer
 *                         is allocated once per connection at this size, so it is capped at 128 MiB
 * @param maxDmaMaps       most DMA mappings (fd-backed and fd-less) at a time; advertised as
 *                         {@code max_dma_maps} (≤ 65535, QEMU's check)
 * @param maxMappedBytes   most bytes mmapped from the client's fds at a time
 * @param maxFdsPerMessage most fds accepted in one message; advertised as {@code max_msg_fds} (≤ 16, QEMU's
 *                         check; QEMU assumes 8 without it and chunks SET_IRQS by it)
 * @param maxDataXferSize  largest REGION_READ/WRITE data; advertised as {@code max_data_xfer_size}
 *                         (≥ 4096 so QEMU can read a 4 KiB config space in one message, ≤ 64 MiB)
 * @param maxMsixVectors   most MSI-X vectors served (the device's table size is capped by it)
 */
public record Limits(int maxMessageBytes, int maxDmaMaps, long maxMappedBytes, int maxFdsPerMessage,
                     int maxDataXferSize, int maxMsixVectors) {

    /** Upper bound of {@link #maxMessageBytes}: the per-connection receive buffer has this size. */
    public static final int MAX_MESSAGE_BYTES_CAP = 128 << 20;

    public Limits {
        if (maxDataXferSize < 4096 || maxDataXferSize > (64 << 20)) {
            throw new IllegalArgumentException("maxDataXferSize must be 4096..64 MiB: " + maxDataXferSize);
        }
        if (maxMessageBytes < maxDataXferSize + 64) {
            throw new IllegalArgumentException("maxMessageBytes must be at least maxDataXferSize + 64 ("
                    + (maxDataXferSize + 64) + "): " + maxMessageBytes);
        }
        if (maxMessageBytes > MAX_MESSAGE_BYTES_CAP) {
            throw new IllegalArgumentException("maxMessageBytes must be at most 128 MiB: " + maxMessageBytes);
        }
        if (maxDmaMaps < 1 || maxDmaMaps > 65535) {
            throw new IllegalArgumentException("maxDmaMaps must be 1..65535: " + maxDmaMaps);
        }
        if (maxMappedBytes < 0) {
            throw new IllegalArgumentException("maxMappedBytes must not be negative");
        }
        if (maxFdsPerMessage < 1 || maxFdsPerMessage > 16) {
            throw new IllegalArgumentException("maxFdsPerMessage must be 1..16: " + maxFdsPerMessage);
        }
        if (maxMsixVectors < 0 || maxMsixVectors > 2048) {
            throw new IllegalArgumentException("maxMsixVectors must be 0..2048: " + maxMsixVectors);
        }
    }

    /**
     * 1 MiB transfers (QEMU's own default), 16 fds per message (QEMU's maximum), 4096 DMA maps (a VM
     * without vIOMMU needs a handful), 1 TiB of mapped guest RAM, 2048 MSI-X vectors.
     */
    public static Limits defaults() {
        return new Limits((1 << 20) + 4096, 4096, 1L << 40, 16, 1 << 20, 2048);
    }

    public Limits withMaxMessageBytes(int value) {
        return new Limits(value, maxDmaMaps, maxMappedBytes, maxFdsPerMessage, maxDataXferSize, maxMsixVectors);
    }

    public Limits withMaxDmaMaps(int value) {
        return new Limits(maxMessageBytes, value, maxMappedBytes, maxFdsPerMessage, maxDataXferSize, maxMsixVectors);
    }

    public Limits withMaxMappedBytes(long value) {
        return new Limits(maxMessageBytes, maxDmaMaps, value, maxFdsPerMessage, maxDataXferSize, maxMsixVectors);
    }
}
