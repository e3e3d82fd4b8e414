package io.javadevices.pci;

import java.util.Objects;

/**
 * Declaration of one Base Address Register: its index, size, kind and the {@link MmioHandler} that
 * implements its contents. Immutable; part of a device's {@link ConfigSpace}.
 *
 * @param index        BAR number 0..5 (a 64-bit BAR also occupies {@code index + 1})
 * @param size         size in bytes, a power of two (at least 16 for memory, 4 for I/O)
 * @param kind         32/64-bit memory or I/O
 * @param prefetchable memory BAR prefetchable bit
 * @param handler      the BAR's behaviour
 */
public record Bar(int index, long size, Kind kind, boolean prefetchable, MmioHandler handler) {

    /** What kind of address space a BAR decodes. */
    public enum Kind {
        MEMORY32, MEMORY64, IO
    }

    public Bar {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(handler, "handler");
        int last = kind == Kind.MEMORY64 ? 4 : 5;
        if (index < 0 || index > last) {
            throw new IllegalArgumentException("BAR index " + index + " invalid for " + kind);
        }
        long min = kind == Kind.IO ? 4 : 16;
        if (size < min || Long.bitCount(size) != 1) {
            throw new IllegalArgumentException("BAR size must be a power of two >= " + min + ": " + size);
        }
        if (kind == Kind.MEMORY32 && size > (1L << 31)) {
            throw new IllegalArgumentException("32-bit memory BAR larger than 2 GiB: " + size);
        }
        if (kind == Kind.IO && (size > 256 || prefetchable)) {
            throw new IllegalArgumentException("I/O BARs are at most 256 bytes and never prefetchable");
        }
    }

    public static Bar memory64(int index, long size, MmioHandler handler) {
        return new Bar(index, size, Kind.MEMORY64, false, handler);
    }

    public static Bar memory32(int index, long size, MmioHandler handler) {
        return new Bar(index, size, Kind.MEMORY32, false, handler);
    }

    public static Bar io(int index, long size, MmioHandler handler) {
        return new Bar(index, size, Kind.IO, false, handler);
    }

    /** The read-only low bits of the BAR register (type and prefetchable flags), PCI 3.0 §6.2.5.1. */
    public int flagBits() {
        return switch (kind) {
            case IO -> 0x1;
            case MEMORY32 -> prefetchable ? 0x8 : 0x0;
            case MEMORY64 -> 0x4 | (prefetchable ? 0x8 : 0x0);
        };
    }
}
