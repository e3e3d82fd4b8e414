package io.javadevices.nvme.spec;

import java.lang.foreign.StructLayout;

import static io.javadevices.nvme.spec.Fields.*;

/**
 * Power State Descriptor, 32 bytes (NVMe 1.4 §5.15, Identify Controller bytes 3071:2048); Identify Controller holds 32 of them (PSD0 to
 * PSD31). MP is the maximum power in 0.01 W units (MXPS = 0); FLAGS holds MXPS (bit 0) and NOPS (bit 1).
 */
public final class PowerStateDescriptor {
    public static final long SIZE = 32;

    public static final StructLayout LAYOUT = struct("PowerStateDescriptor", SIZE,
            u16("MP"),
            reserved(1),
            u8("FLAGS"),
            u32("ENLAT"),
            u32("EXLAT"),
            u8("RRT"),
            u8("RRL"),
            u8("RWT"),
            u8("RWL"),
            u16("IDLP"),
            u8("IPS"),
            reserved(1),
            u16("ACTP"),
            u8("APW_APS"),
            reserved(9));

    private PowerStateDescriptor() {
    }
}
