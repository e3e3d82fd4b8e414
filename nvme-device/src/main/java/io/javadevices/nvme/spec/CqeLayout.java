package io.javadevices.nvme.spec;

import java.lang.foreign.StructLayout;

import static io.javadevices.nvme.spec.Fields.*;

/**
 * Completion queue entry, 16 bytes (NVMe 1.4 §4.6, Figure 124); QEMU's {@code NvmeCqe}. STATUS holds the phase
 * tag in bit 0 and the status field in bits 15:1. The poster writes DW0/DW1 and SQHD/SQID first and the CID/STATUS
 * dword last, with release semantics, so these are byte offsets for plain guest-memory accesses.
 */
public final class CqeLayout {
    public static final long SIZE = 16;

    public static final StructLayout LAYOUT = struct("Cqe", SIZE,
            u32("DW0"),
            u32("DW1"),
            u16("SQHD"),
            u16("SQID"),
            u16("CID"),
            u16("STATUS"));

    public static final long DW0 = offset(LAYOUT, "DW0");
    public static final long SQHD = offset(LAYOUT, "SQHD");
    public static final long SQID = offset(LAYOUT, "SQID");
    public static final long CID = offset(LAYOUT, "CID");
    public static final long STATUS = offset(LAYOUT, "STATUS");

    private CqeLayout() {
    }
}
