package io.javadevices.nvme.spec;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;

import static io.javadevices.nvme.spec.Fields.*;

/**
 * SMART / Health Information log, 512 bytes (Get Log Page 02h, NVMe 1.4 §5.14.1.2); QEMU's
 * {@code NvmeSmartLog}. The counters are 128-bit; the fields named {@code *_LOW} are their low 64 bits, which is
 * all this controller ever counts (the high half stays zero).
 */
public final class SmartLog {
    public static final long SIZE = 512;

    public static final StructLayout LAYOUT = struct("SmartLog", SIZE,
            u8("CW"),
            u16("CTEMP"),
            u8("AVSP"),
            u8("AVSPT"),
            u8("PUSED"),
            u8("EGCWS"),
            reserved(25),
            counter("DUR"),
            counter("DUW"),
            counter("HRC"),
            counter("HWC"),
            counter("CBT"),
            counter("PWRC"),
            counter("POH"),
            counter("UNSAFE"),
            counter("MEDERR"),
            counter("NUMERR"),
            u32("WCTT"),
            u32("CCTT"),
            array("TS", 8, u16("TS")),
            u32("TMT1TC"),
            u32("TMT2TC"),
            u32("TTTMT1"),
            u32("TTTMT2"),
            reserved(280));

    /** Critical Warning. */
    public static final U8 CW = u8(LAYOUT, "CW");
    /** Composite Temperature, in kelvins. */
    public static final U16 CTEMP = u16(LAYOUT, "CTEMP");
    /** Available Spare, percent. */
    public static final U8 AVSP = u8(LAYOUT, "AVSP");
    /** Available Spare Threshold, percent. */
    public static final U8 AVSPT = u8(LAYOUT, "AVSPT");
    /** Data Units Read, in thousands of 512-byte units, rounded up. */
    public static final U64 DUR_LOW = low("DUR");
    public static final U64 DUW_LOW = low("DUW");
    /** Host Read Commands. */
    public static final U64 HRC_LOW = low("HRC");
    /** Host Write Commands. */
    public static final U64 HWC_LOW = low("HWC");
    /** Power Cycles. */
    public static final U64 PWRC_LOW = low("PWRC");
    /** Number of Error Information Log Entries over the controller's life. */
    public static final U64 NUMERR_LOW = low("NUMERR");

    private static MemoryLayout counter(String name) {
        return array(name, 2, u64("QWORD"));
    }

    private static U64 low(String name) {
        return u64(LAYOUT, name, 0, null);
    }

    private SmartLog() {
    }
}
