package io.javadevices.nvme.spec;

import java.lang.foreign.StructLayout;

import static io.javadevices.nvme.spec.Fields.*;

/**
 * LBA Format data structure, 4 bytes (NVMe 1.4 §5.15, Identify Namespace bytes 191:128): MS metadata bytes per LBA, LBADS the LBA
 * data size as a power of two, RP relative performance in bits 1:0 of the last byte. Identify Namespace holds
 * sixteen (LBAF0 to LBAF15).
 */
public final class LbaFormat {
    public static final long SIZE = 4;

    public static final StructLayout LAYOUT = struct("LbaFormat", SIZE,
            u16("MS"),
            u8("LBADS"),
            u8("RP"));

    public static final U16 MS = u16(LAYOUT, "MS");
    public static final U8 LBADS = u8(LAYOUT, "LBADS");
    public static final U8 RP = u8(LAYOUT, "RP");

    private LbaFormat() {
    }
}
