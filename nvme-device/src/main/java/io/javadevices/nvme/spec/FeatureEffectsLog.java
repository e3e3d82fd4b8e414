package io.javadevices.nvme.spec;

import io.javadevices.pci.LittleEndian;

import java.lang.foreign.MemoryLayout.PathElement;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static io.javadevices.nvme.spec.Fields.*;

/**
 * Feature Identifiers Supported and Effects log, 1024 bytes (Get Log Page 12h, NVMe 2.0): one 32-bit entry per
 * Feature Identifier 00h-FFh: bit 0 FSUPP, bits 4:1 what a Set changes (UDCC user data, NCC namespace capability,
 * NIC namespace inventory, CCC controller capability), bit 19 USS (UUID selection), bits 31:20 FSP, the scope
 * (bit 20 namespace, bit 21 controller, ...). libnvme's {@code struct nvme_fid_supported_effects_log}.
 */
public final class FeatureEffectsLog {
    public static final long SIZE = 1024;

    /** Entry bit 0: the feature is supported. */
    public static final int FSUPP = 1;
    /** Entry bits 31:20 FSP: bit 20 namespace scope, bit 21 controller scope. */
    public static final int SCOPE_NAMESPACE = 1 << 20, SCOPE_CONTROLLER = 1 << 21;

    public static final StructLayout LAYOUT = struct("FeatureEffectsLog", SIZE,
            array("FIDSUP", 256, u32("FIDSUP")));

    /** Sets the entry of feature {@code fid}. */
    public static void entry(MemorySegment page, int fid, int entry) {
        page.set(LittleEndian.INT, LAYOUT.byteOffset(PathElement.groupElement("FIDSUP"), PathElement.sequenceElement(fid)),
                entry);
    }

    private FeatureEffectsLog() {
    }
}
