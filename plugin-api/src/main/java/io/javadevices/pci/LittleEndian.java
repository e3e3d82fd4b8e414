package io.javadevices.pci;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The one set of little-endian value layouts of the house. PCI configuration space and BARs (PCI Local Bus 3.0
 * §6.1), NVMe structures (NVMe 1.4 §1.5, "byte order": queue entries, PRP lists, Identify data, log pages) and
 * vfio-user messages are all little-endian, whatever the host's order.
 *
 * <p>{@link #SHORT}, {@link #INT} and {@link #LONG} accept any byte offset (a SMART log's composite temperature
 * sits at byte 1), so they also serve as the members of byte-packed {@code StructLayout}s. {@link #INT_ALIGNED}
 * is for the atomic access modes ({@code getAcquire}, {@code setRelease}), which need a naturally aligned offset.
 */
public final class LittleEndian {
    public static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfInt INT_ALIGNED = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);

    private LittleEndian() {
    }
}
