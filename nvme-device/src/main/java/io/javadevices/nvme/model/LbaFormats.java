package io.javadevices.nvme.model;

/**
 * The LBA formats every namespace offers (Identify Namespace LBAF0..NLBAF, NVMe 1.4 Figure 245): format 0
 * 512-byte and format 1 4096-byte blocks, neither with metadata. Format NVM (§5.23) chooses among them by
 * index; Identify reports the current one in FLBAS.
 */
public final class LbaFormats {
    /** log2 of the data size of each format, by index. */
    private static final int[] SHIFTS = {9, 12};

    private LbaFormats() {
    }

    /** How many formats there are (Identify NLBAF is this minus one). */
    public static int count() {
        return SHIFTS.length;
    }

    /** log2 of the LBA data size of format {@code index}; the index must be below {@link #count()}. */
    public static int shift(int index) {
        return SHIFTS[index];
    }

    /** The index of the format with 2^{@code shift}-byte blocks, or -1 if there is none. */
    public static int index(int shift) {
        for (int i = 0; i < SHIFTS.length; i++) {
            if (SHIFTS[i] == shift) {
                return i;
            }
        }
        return -1;
    }
}
