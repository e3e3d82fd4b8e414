package io.javadevices.nvme.spec;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The layouts of NVMe's data structures (SQEs, CQEs, PRP lists, Identify data, log pages): little-endian
 * (NVMe 1.4 §1.5 "byte order") and at any byte offset, whatever the host's order.
 */
public final class LittleEndian {
    public static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private LittleEndian() {
    }
}
