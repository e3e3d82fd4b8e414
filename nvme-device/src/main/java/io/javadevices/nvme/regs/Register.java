package io.javadevices.nvme.regs;

import java.util.function.IntSupplier;

/**
 * One BAR0 controller register (NVMe 1.4 §3.1, Figure 67), in the style of {@code ConfigSpace}'s
 * per-byte masks: where it sits, how wide it is, which bits the host may change and what it resets to.
 *
 * @param name     the spec's mnemonic (CAP, CC, ...)
 * @param offset   byte offset in BAR0, dword aligned
 * @param width    4 or 8 bytes
 * @param writable bits a host write changes; 0 = read-only (writes are ignored)
 * @param reset    value after a controller reset
 * @param live     non-null for a register whose value lives elsewhere (CSTS, INTMS/INTMC): read through
 *                 it, nothing stored, and sub-dword writes are ignored (they would set or clear bits the
 *                 host did not address)
 * @param onWrite  called after a write with the old and the new value (for a {@code live} register: the
 *                 written dword itself); null = store only
 */
public record Register(String name, int offset, int width, long writable, long reset, IntSupplier live, WriteHook onWrite) {
    /** What a write to the register does beyond storing its writable bits. */
    @FunctionalInterface
    public interface WriteHook {
        void written(long old, long value);
    }

    public Register {
        if ((offset & 3) != 0 || (width != 4 && width != 8)) {
            throw new IllegalArgumentException(name + ": offset " + offset + " width " + width);
        }
    }

    static Register stored(String name, int offset, int width, long writable, long reset, WriteHook onWrite) {
        return new Register(name, offset, width, writable, reset, null, onWrite);
    }

    static Register live(String name, int offset, IntSupplier read, WriteHook onWrite) {
        return new Register(name, offset, 4, onWrite == null ? 0 : 0xFFFF_FFFFL, 0, read, onWrite);
    }

    boolean contains(int dword) {
        return dword >= offset && dword < offset + width;
    }
}
