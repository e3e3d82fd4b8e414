package io.javadevices.nvme.spec;

import io.javadevices.pci.LittleEndian;

import java.lang.foreign.MemoryLayout.PathElement;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static io.javadevices.nvme.spec.Fields.*;

/**
 * Supported Log Pages log, 1024 bytes (Get Log Page 00h, NVMe 2.0 §5.16.1.1): one 32-bit LID Supported and Effects
 * entry per Log Identifier 00h-FFh (NVMe 2.0 Figure 203). libnvme's {@code struct nvme_supported_log_pages}.
 */
public final class SupportedLogPagesLog {
    public static final long SIZE = 1024;

    /** Entry bit 0 LSUPP: the log page is supported. */
    public static final int LSUPP = 1;
    /** Entry bit 1 IOS: Get Log Page accepts an index offset (CDW14 OT = 1) for this log page. */
    public static final int IOS = 1 << 1;

    public static final StructLayout LAYOUT = struct("SupportedLogPagesLog", SIZE,
            array("LIDSUP", 256, u32("LIDSUP")));

    /** Sets the LID Supported and Effects entry of log page {@code lid}. */
    public static void entry(MemorySegment page, int lid, int entry) {
        page.set(LittleEndian.INT, LAYOUT.byteOffset(PathElement.groupElement("LIDSUP"), PathElement.sequenceElement(lid)),
                entry);
    }

    private SupportedLogPagesLog() {
    }
}
