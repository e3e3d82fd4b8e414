package io.javadevices.nvme.spec;

import io.javadevices.pci.LittleEndian;

import java.lang.foreign.MemoryLayout.PathElement;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static io.javadevices.nvme.spec.Fields.*;

/**
 * Commands Supported and Effects log, 4096 bytes (Get Log Page 05h, NVMe 1.4 §5.14.1.5); QEMU's
 * {@code NvmeEffectsLog}. One 32-bit Commands Supported and Effects entry per opcode, admin (ACS) then I/O
 * (IOCS).
 */
public final class EffectsLog {
    public static final long SIZE = 4096;

    /** Entry bit 0: Command Supported. */
    public static final int CSUPP = 1;
    /** Entry bit 1: Logical Block Content Change (the command may change media contents). */
    public static final int LBCC = 1 << 1;

    public static final StructLayout LAYOUT = struct("EffectsLog", SIZE,
            array("ACS", 256, u32("ACS")),
            array("IOCS", 256, u32("IOCS")),
            reserved(2048));

    /** Sets the entry of admin command {@code opcode}. */
    public static void admin(MemorySegment page, int opcode, int entry) {
        page.set(LittleEndian.INT, entryOffset("ACS", opcode), entry);
    }

    /** Sets the entry of I/O command {@code opcode}. */
    public static void io(MemorySegment page, int opcode, int entry) {
        page.set(LittleEndian.INT, entryOffset("IOCS", opcode), entry);
    }

    private static long entryOffset(String set, int opcode) {
        return LAYOUT.byteOffset(PathElement.groupElement(set), PathElement.sequenceElement(opcode));
    }

    private EffectsLog() {
    }
}
