package io.javadevices.nvme.spec;

import java.lang.foreign.StructLayout;

import static io.javadevices.nvme.spec.Fields.*;

/**
 * Timestamp feature data structure, 8 bytes (Set/Get Features 0Eh, NVMe 1.4 §5.21.1.14, Figure 300): bytes 5:0 the
 * Timestamp (milliseconds since 1970-01-01 00:00 UTC, 48 bits), byte 6 the attributes: bit 0 Synch (1: the
 * controller may have stopped counting, e.g. in a non-operational power state), bits 3:1 Timestamp Origin (000b
 * initialised to 0 by a Controller Level Reset, 001b set by the host with Set Features). QEMU's
 * {@code NvmeTimestamp}.
 */
public final class TimestampData {
    public static final long SIZE = 8;
    /** The Timestamp field is 48 bits wide. */
    public static final long TIMESTAMP_MASK = (1L << 48) - 1;
    /** Timestamp Origin values (byte 6 bits 3:1). */
    public static final int ORIGIN_RESET = 0, ORIGIN_SET_FEATURES = 1;

    public static final StructLayout LAYOUT = struct("TimestampData", SIZE,
            bytes("TIMESTAMP", 6),
            u8("ATTR"),
            reserved(1));

    /** The Timestamp with the attribute byte above it: write it first, then {@link #ATTR}; read it masked by {@link #TIMESTAMP_MASK}. */
    public static final U64 QWORD = new U64("TIMESTAMP", bytes(LAYOUT, "TIMESTAMP").offset());
    public static final U8 ATTR = u8(LAYOUT, "ATTR");

    /** Byte 6 for a counter that never stopped (Synch = 0) with {@code origin}. */
    public static byte attributes(int origin) {
        return (byte) ((origin & 7) << 1);
    }

    private TimestampData() {
    }
}
