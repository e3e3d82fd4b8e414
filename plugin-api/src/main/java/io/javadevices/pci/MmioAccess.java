package io.javadevices.pci;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Splits a byte-range access to a BAR into naturally aligned 1/2/4/8-byte {@link MmioHandler} calls, as
 * a PCI bus would. Used by transports whose messages carry arbitrary (offset, count) pairs.
 */
public final class MmioAccess {
    private MmioAccess() {
    }

    /**
     * Reads {@code length} bytes at {@code offset} of a BAR of {@code barSize} bytes into {@code dst}.
     *
     * @throws IllegalArgumentException if the range is outside the BAR
     */
    public static void read(Bar bar, long offset, MemorySegment dst, long dstOffset, int length) {
        check(bar, offset, length);
        long done = 0;
        while (done < length) {
            int size = chunk(offset + done, length - done);
            long value = bar.handler().read(offset + done, size);
            for (int i = 0; i < size; i++) {
                dst.set(ValueLayout.JAVA_BYTE, dstOffset + done + i, (byte) (value >>> (8 * i)));
            }
            done += size;
        }
    }

    /** Writes {@code length} bytes from {@code src} at {@code offset} of the BAR. */
    public static void write(Bar bar, long offset, MemorySegment src, long srcOffset, int length) {
        check(bar, offset, length);
        long done = 0;
        while (done < length) {
            int size = chunk(offset + done, length - done);
            long value = 0;
            for (int i = 0; i < size; i++) {
                value |= (src.get(ValueLayout.JAVA_BYTE, srcOffset + done + i) & 0xFFL) << (8 * i);
            }
            bar.handler().write(offset + done, size, value);
            done += size;
        }
    }

    /** True if {@code [offset, offset+length)} lies inside the BAR. */
    public static boolean inside(Bar bar, long offset, long length) {
        return offset >= 0 && length >= 0 && offset + length >= 0 && offset + length <= bar.size();
    }

    private static void check(Bar bar, long offset, int length) {
        if (!inside(bar, offset, length)) {
            throw new IllegalArgumentException(String.format(
                    "access [0x%x, +%d) outside BAR%d of %d bytes", offset, length, bar.index(), bar.size()));
        }
    }

    /** Largest naturally aligned power-of-two access (≤ 8) that starts at {@code at} and fits {@code left}. */
    private static int chunk(long at, long left) {
        int size = 8;
        while (size > 1 && ((at & (size - 1)) != 0 || size > left)) {
            size >>= 1;
        }
        return size;
    }
}
