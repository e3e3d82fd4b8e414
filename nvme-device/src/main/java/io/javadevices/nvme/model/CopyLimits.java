package io.javadevices.nvme.model;

/**
 * The Copy command's limits (NVMe 2.0 NVM Command Set, Copy command; Identify Namespace MSSRL, MCL, MSRC), one
 * source of truth for what Identify advertises and what Copy enforces. Copy reads every source range into a
 * worker-owned buffer of {@link #BUFFER_BYTES} before it writes the destination, so MCL is that buffer in blocks.
 */
public final class CopyLimits {
    /** The copy buffer of each I/O worker: MCL blocks. Independent of MDTS (Copy transfers no data to the host). */
    public static final int BUFFER_BYTES = 1 << 20;
    /** MSRC, 0-based: 128 source ranges of 32 bytes, one 4 KiB page of range entries. */
    public static final int MSRC = 127;
    /** Size of one source range entry, format 0. */
    public static final int RANGE_ENTRY_BYTES = 32;

    private CopyLimits() {
    }

    /** MCL: the most blocks one Copy may copy in total. */
    public static int maxCopyLength(int lbaShift) {
        return BUFFER_BYTES >>> lbaShift;
    }

    /** MSSRL: the most blocks of one source range (the field is 16 bits wide). */
    public static int maxSourceRangeLength(int lbaShift) {
        return Math.min(maxCopyLength(lbaShift), 0xFFFF);
    }

    /** The most source ranges one Copy may have (MSRC + 1). */
    public static int maxSourceRanges() {
        return MSRC + 1;
    }
}
