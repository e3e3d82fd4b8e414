package io.javadevices.nvme.driver;

import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.GuestMemoryException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** A submission queue entry as the host builds it (NVMe 1.4 Figure 105). Mutable; the CID is set on submit. */
public final class Command {
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private final int[] dw = new int[16];

    public static Command of(int opcode) {
        Command c = new Command();
        c.dw[0] = opcode & 0xFF;
        return c;
    }

    public Command flags(int flags) {
        dw[0] = (dw[0] & ~0xFF00) | (flags & 0xFF) << 8;
        return this;
    }

    public Command cid(int cid) {
        dw[0] = (dw[0] & 0xFFFF) | cid << 16;
        return this;
    }

    public int cid() {
        return dw[0] >>> 16;
    }

    public int opcode() {
        return dw[0] & 0xFF;
    }

    public Command nsid(int nsid) {
        dw[1] = nsid;
        return this;
    }

    public Command prp1(long prp) {
        dw[6] = (int) prp;
        dw[7] = (int) (prp >>> 32);
        return this;
    }

    public Command prp2(long prp) {
        dw[8] = (int) prp;
        dw[9] = (int) (prp >>> 32);
        return this;
    }

    /**
     * Makes DPTR the SGL descriptor {@code sgl1} and PSDT 01b ("SGLs are used for this transfer", CDW0 bits 15:14),
     * as Linux nvme_pci_setup_data_sgl does (flags = NVME_CMD_SGL_METABUF).
     */
    public Command sgl(Sgl.Descriptor sgl1) {
        return psdt(1).prp1(sgl1.address()).prp2((sgl1.length() & 0xFFFF_FFFFL) | (long) sgl1.identifier() << 56);
    }

    /** Sets PSDT (CDW0 bits 15:14), keeping the other flags. */
    public Command psdt(int psdt) {
        dw[0] = (dw[0] & ~0xC000) | (psdt & 3) << 14;
        return this;
    }

    public Command cdw(int index, int value) {
        dw[index] = value;
        return this;
    }

    public int cdw(int index) {
        return dw[index];
    }

    public Command slba(long lba) {
        dw[10] = (int) lba;
        dw[11] = (int) (lba >>> 32);
        return this;
    }

    public void writeTo(GuestMemory memory, long address) throws GuestMemoryException {
        MemorySegment s = MemorySegment.ofArray(new byte[64]);
        for (int i = 0; i < 16; i++) {
            s.set(INT, 4L * i, dw[i]);
        }
        memory.write(address, s, 0, 64);
    }

    // ---- common commands

    public static Command read(int nsid, long slba, int blocks, long prp1, long prp2) {
        return of(0x02).nsid(nsid).slba(slba).cdw(12, blocks - 1).prp1(prp1).prp2(prp2);
    }

    public static Command write(int nsid, long slba, int blocks, long prp1, long prp2) {
        return of(0x01).nsid(nsid).slba(slba).cdw(12, blocks - 1).prp1(prp1).prp2(prp2);
    }

    public static Command flush(int nsid) {
        return of(0x00).nsid(nsid);
    }

    public static Command identify(int cns, int nsid, long prp1) {
        return of(0x06).nsid(nsid).cdw(10, cns).prp1(prp1);
    }

    public static Command getLogPage(int lid, int nsid, int bytes, long prp1) {
        return of(0x02).nsid(nsid).cdw(10, lid | ((bytes / 4 - 1) << 16)).prp1(prp1);
    }

    public static Command setFeatures(int fid, int value) {
        return of(0x09).cdw(10, fid).cdw(11, value);
    }

    public static Command getFeatures(int fid, int sel, int cdw11) {
        return of(0x0A).cdw(10, fid | sel << 8).cdw(11, cdw11);
    }

    public static Command createCq(int qid, int entries, long base, int vector, boolean ien) {
        return of(0x05).prp1(base).cdw(10, qid | (entries - 1) << 16).cdw(11, 1 | (ien ? 2 : 0) | vector << 16);
    }

    public static Command createSq(int qid, int entries, long base, int cqid) {
        return of(0x01).prp1(base).cdw(10, qid | (entries - 1) << 16).cdw(11, 1 | cqid << 16);
    }

    public static Command deleteSq(int qid) {
        return of(0x00).cdw(10, qid);
    }

    public static Command deleteCq(int qid) {
        return of(0x04).cdw(10, qid);
    }

    public static Command dbbuf(long shadow, long eventIdx) {
        return of(0x7C).prp1(shadow).prp2(eventIdx);
    }
}
