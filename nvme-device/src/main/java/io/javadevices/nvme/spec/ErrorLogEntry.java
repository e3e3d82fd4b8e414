package io.javadevices.nvme.spec;

import java.lang.foreign.StructLayout;

import static io.javadevices.nvme.spec.Fields.*;

/**
 * One Error Information log entry, 64 bytes (Get Log Page 01h, NVMe 1.4 §5.14.1.1); QEMU's
 * {@code NvmeErrorLog}. The log is an array of these, so a field is set with the entry's byte offset in the page:
 * {@code ErrorLogEntry.SQID.set(page, entryOffset, value)}.
 */
public final class ErrorLogEntry {
    public static final long SIZE = 64;

    public static final StructLayout LAYOUT = struct("ErrorLogEntry", SIZE,
            u64("ERRCNT"),
            u16("SQID"),
            u16("CID"),
            u16("STATUS"),
            u16("PEL"),
            u64("LBA"),
            u32("NSID"),
            u8("VSIA"),
            u8("TRTYPE"),
            reserved(2),
            u64("CSI"),
            u16("TTSI"),
            reserved(22));

    /** Error Count: this error's sequence number, never 0. */
    public static final U64 ERRCNT = u64(LAYOUT, "ERRCNT");
    public static final U16 SQID = u16(LAYOUT, "SQID");
    public static final U16 CID = u16(LAYOUT, "CID");
    /** Status Field: bits 15:1 the status as in the CQE, bit 0 the phase tag. */
    public static final U16 STATUS = u16(LAYOUT, "STATUS");
    /** Parameter Error Location; FFFFh = not specific to a parameter. */
    public static final U16 PEL = u16(LAYOUT, "PEL");
    public static final U64 LBA = u64(LAYOUT, "LBA");
    public static final U32 NSID = u32(LAYOUT, "NSID");

    private ErrorLogEntry() {
    }
}
