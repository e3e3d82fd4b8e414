package io.javadevices.nvme.queue;

import io.javadevices.nvme.spec.SqeLayout;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.javadevices.pci.LittleEndian.INT;
import static io.javadevices.pci.LittleEndian.SHORT;
import static io.javadevices.pci.LittleEndian.LONG;

/**
 * A reusable 64-byte submission queue entry buffer (NVMe 1.4 §4.2 Figure 105, {@link SqeLayout}), one per worker: the
 * worker copies each SQE from guest memory into it, so handlers read a stable copy (the guest may
 * overwrite its slot) and nothing is allocated per command.
 */
public final class Sqe {
    private final MemorySegment segment = MemorySegment.ofArray(new long[(int) SqeLayout.SIZE / Long.BYTES]);

    /** The 64 bytes (for copying in). */
    public MemorySegment segment() {
        return segment;
    }

    public int dword(int index) {
        return segment.get(INT, 4L * index);
    }

    public int opcode() {
        return segment.get(ValueLayout.JAVA_BYTE, SqeLayout.OPC) & 0xFF;
    }

    /** FUSE field, CDW0 bits 9:8. */
    public int fused() {
        return segment.get(ValueLayout.JAVA_BYTE, SqeLayout.FLAGS) & 0x3;
    }

    /** PSDT field, CDW0 bits 15:14 (0 = PRPs). */
    public int psdt() {
        return (segment.get(ValueLayout.JAVA_BYTE, SqeLayout.FLAGS) >>> 6) & 0x3;
    }

    public int cid() {
        return segment.get(SHORT, SqeLayout.CID) & 0xFFFF;
    }

    public int nsid() {
        return segment.get(INT, SqeLayout.NSID);
    }

    public long prp1() {
        return segment.get(LONG, SqeLayout.PRP1);
    }

    public long prp2() {
        return segment.get(LONG, SqeLayout.PRP2);
    }

    public int cdw10() {
        return segment.get(INT, SqeLayout.CDW10);
    }

    public int cdw11() {
        return segment.get(INT, SqeLayout.CDW11);
    }

    public int cdw12() {
        return segment.get(INT, SqeLayout.CDW12);
    }

    public int cdw13() {
        return segment.get(INT, SqeLayout.CDW13);
    }

    public int cdw14() {
        return segment.get(INT, SqeLayout.CDW14);
    }

    public int cdw15() {
        return segment.get(INT, SqeLayout.CDW15);
    }

    /** CDW10 and CDW11 as one 64-bit value (e.g. Starting LBA). */
    public long cdw10and11() {
        return segment.get(LONG, SqeLayout.CDW10);
    }
}
