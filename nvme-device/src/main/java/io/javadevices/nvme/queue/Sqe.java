package io.javadevices.nvme.queue;

import io.javadevices.nvme.spec.Nvme;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.javadevices.nvme.spec.LittleEndian.INT;
import static io.javadevices.nvme.spec.LittleEndian.LONG;

/**
 * A reusable 64-byte submission queue entry buffer (NVMe 1.4 §4.2 Figure 105), one per worker: the
 * worker copies each SQE from guest memory into it, so handlers read a stable copy (the guest may
 * overwrite its slot) and nothing is allocated per command.
 */
public final class Sqe {
    private final MemorySegment segment = MemorySegment.ofArray(new long[8]);

    /** The 64 bytes (for copying in). */
    public MemorySegment segment() {
        return segment;
    }

    public int dword(int index) {
        return segment.get(INT, 4L * index);
    }

    public int opcode() {
        return segment.get(ValueLayout.JAVA_BYTE, Nvme.SQE_OPCODE) & 0xFF;
    }

    /** FUSE field, CDW0 bits 9:8. */
    public int fused() {
        return segment.get(ValueLayout.JAVA_BYTE, Nvme.SQE_FLAGS) & 0x3;
    }

    /** PSDT field, CDW0 bits 15:14 (0 = PRPs). */
    public int psdt() {
        return (segment.get(ValueLayout.JAVA_BYTE, Nvme.SQE_FLAGS) >>> 6) & 0x3;
    }

    public int cid() {
        return (dword(0) >>> 16) & 0xFFFF;
    }

    public int nsid() {
        return segment.get(INT, Nvme.SQE_NSID);
    }

    public long prp1() {
        return segment.get(LONG, Nvme.SQE_PRP1);
    }

    public long prp2() {
        return segment.get(LONG, Nvme.SQE_PRP2);
    }

    public int cdw10() {
        return segment.get(INT, Nvme.SQE_CDW10);
    }

    public int cdw11() {
        return segment.get(INT, Nvme.SQE_CDW11);
    }

    public int cdw12() {
        return segment.get(INT, Nvme.SQE_CDW12);
    }

    public int cdw13() {
        return segment.get(INT, Nvme.SQE_CDW13);
    }

    public int cdw14() {
        return segment.get(INT, Nvme.SQE_CDW14);
    }

    public int cdw15() {
        return segment.get(INT, Nvme.SQE_CDW15);
    }

    /** CDW10 and CDW11 as one 64-bit value (e.g. Starting LBA). */
    public long cdw10and11() {
        return segment.get(LONG, Nvme.SQE_CDW10);
    }
}
