package io.javadevices.vfiouser.protocol;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Little-endian field access on message buffers (vfio-user integers are host-endian; every supported
 * host is little-endian). Unsigned 16/32-bit fields come back widened to int/long so callers never see
 * a negative size. No allocation.
 */
public final class Wire {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Wire() {
    }

    public static int u16(MemorySegment s, long offset) {
        return s.get(U16, offset) & 0xFFFF;
    }

    /** An unsigned 32-bit field as a non-negative long. */
    public static long u32(MemorySegment s, long offset) {
        return s.get(U32, offset) & 0xFFFF_FFFFL;
    }

    /** A 32-bit field as raw int bits (for flags and indices compared with constants). */
    public static int i32(MemorySegment s, long offset) {
        return s.get(U32, offset);
    }

    /** A 64-bit field; callers treat it as unsigned (compare with {@link Long#compareUnsigned}). */
    public static long u64(MemorySegment s, long offset) {
        return s.get(U64, offset);
    }

    public static void putU16(MemorySegment s, long offset, int value) {
        s.set(U16, offset, (short) value);
    }

    public static void putU32(MemorySegment s, long offset, long value) {
        s.set(U32, offset, (int) value);
    }

    public static void putU64(MemorySegment s, long offset, long value) {
        s.set(U64, offset, value);
    }
}
