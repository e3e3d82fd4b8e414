package io.javadevices.nvme.spec;

import java.lang.foreign.StructLayout;

import static io.javadevices.nvme.spec.Fields.*;

/**
 * Submission queue entry, 64 bytes (NVMe 1.4 §4.2, Figure 105); QEMU's {@code NvmeCmd}. FLAGS is CDW0 bits 15:8
 * (FUSE in bits 1:0, PSDT in bits 7:6); the data pointer is PRP1 and PRP2. The SQE is read once per command, so
 * the hot path uses these offsets with a plain {@code get} rather than a var handle.
 */
public final class SqeLayout {
    public static final long SIZE = 64;

    public static final StructLayout LAYOUT = struct("Sqe", SIZE,
            u8("OPC"),
            u8("FLAGS"),
            u16("CID"),
            u32("NSID"),
            u32("CDW2"),
            u32("CDW3"),
            u64("MPTR"),
            u64("PRP1"),
            u64("PRP2"),
            u32("CDW10"),
            u32("CDW11"),
            u32("CDW12"),
            u32("CDW13"),
            u32("CDW14"),
            u32("CDW15"));

    public static final long OPC = offset(LAYOUT, "OPC");
    public static final long FLAGS = offset(LAYOUT, "FLAGS");
    public static final long CID = offset(LAYOUT, "CID");
    public static final long NSID = offset(LAYOUT, "NSID");
    public static final long MPTR = offset(LAYOUT, "MPTR");
    public static final long PRP1 = offset(LAYOUT, "PRP1");
    public static final long PRP2 = offset(LAYOUT, "PRP2");
    public static final long CDW10 = offset(LAYOUT, "CDW10");
    public static final long CDW11 = offset(LAYOUT, "CDW11");
    public static final long CDW12 = offset(LAYOUT, "CDW12");
    public static final long CDW13 = offset(LAYOUT, "CDW13");
    public static final long CDW14 = offset(LAYOUT, "CDW14");
    public static final long CDW15 = offset(LAYOUT, "CDW15");

    private SqeLayout() {
    }
}
