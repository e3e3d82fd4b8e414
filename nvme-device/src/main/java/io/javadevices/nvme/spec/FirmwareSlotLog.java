package io.javadevices.nvme.spec;

import java.lang.foreign.StructLayout;

import static io.javadevices.nvme.spec.Fields.*;

/**
 * Firmware Slot Information log, 512 bytes (Get Log Page 03h, NVMe 1.4 §5.14.1.3); QEMU's
 * {@code NvmeFwSlotInfoLog}. AFI bits 2:0 name the active slot; FRS1 to FRS7 hold each slot's revision (ASCII).
 */
public final class FirmwareSlotLog {
    public static final long SIZE = 512;

    public static final StructLayout LAYOUT = struct("FirmwareSlotLog", SIZE,
            u8("AFI"),
            reserved(7),
            array("FRS", 7, bytes("FRS", 8)),
            reserved(448));

    public static final U8 AFI = u8(LAYOUT, "AFI");
    /** Firmware Revision for Slot 1. */
    public static final Bytes FRS1 = bytes(LAYOUT, "FRS", 0);

    private FirmwareSlotLog() {
    }
}
