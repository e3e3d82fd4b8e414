package io.javadevices.nvme.spec;

import java.lang.foreign.MemoryLayout.PathElement;
import java.lang.foreign.StructLayout;

import static io.javadevices.nvme.spec.Fields.*;

/**
 * Identify Namespace data structure, 4096 bytes (Identify CNS 00h, NVM command set, NVMe 1.4 §5.15, Figure 245);
 * QEMU's {@code NvmeIdNs}. LBA format n is set with {@code LbaFormat.LBADS.set(page, IdNs.lbaf(n), value)}.
 */
public final class IdNs {
    public static final long SIZE = 4096;
    public static final int LBA_FORMATS = 16;

    public static final StructLayout LAYOUT = struct("IdNs", SIZE,
            u64("NSZE"),
            u64("NCAP"),
            u64("NUSE"),
            u8("NSFEAT"),
            u8("NLBAF"),
            u8("FLBAS"),
            u8("MC"),
            u8("DPC"),
            u8("DPS"),
            u8("NMIC"),
            u8("RESCAP"),
            u8("FPI"),
            u8("DLFEAT"),
            u16("NAWUN"),
            u16("NAWUPF"),
            u16("NACWU"),
            u16("NABSN"),
            u16("NABO"),
            u16("NABSPF"),
            u16("NOIOB"),
            bytes("NVMCAP", 16),
            u16("NPWG"),
            u16("NPWA"),
            u16("NPDG"),
            u16("NPDA"),
            u16("NOWS"),
            u16("MSSRL"),             // NVMe 2.0 NVM Command Set: Copy limits (reserved in 1.4)
            u32("MCL"),
            u8("MSRC"),
            reserved(11),
            u32("ANAGRPID"),
            reserved(3),
            u8("NSATTR"),
            u16("NVMSETID"),
            u16("ENDGID"),
            bytes("NGUID", 16),
            bytes("EUI64", 8),
            array("LBAF", LBA_FORMATS, LbaFormat.LAYOUT),
            reserved(192),
            bytes("VS", 3712));

    public static final U64 NSZE = u64(LAYOUT, "NSZE");
    public static final U64 NCAP = u64(LAYOUT, "NCAP");
    public static final U64 NUSE = u64(LAYOUT, "NUSE");
    /** Number of LBA formats, 0-based. */
    public static final U8 NLBAF = u8(LAYOUT, "NLBAF");
    public static final U8 FLBAS = u8(LAYOUT, "FLBAS");
    public static final U8 DLFEAT = u8(LAYOUT, "DLFEAT");
    public static final U8 NSFEAT = u8(LAYOUT, "NSFEAT");
    public static final U8 MC = u8(LAYOUT, "MC");
    public static final U8 DPC = u8(LAYOUT, "DPC");
    public static final U8 DPS = u8(LAYOUT, "DPS");
    public static final U8 NMIC = u8(LAYOUT, "NMIC");
    /** Namespace Attributes (NVMe 1.4 Figure 245): bit 0 the namespace is write protected. */
    public static final U8 NSATTR = u8(LAYOUT, "NSATTR");
    public static final U16 NPWG = u16(LAYOUT, "NPWG");
    public static final U16 NPWA = u16(LAYOUT, "NPWA");
    public static final U16 NPDG = u16(LAYOUT, "NPDG");
    public static final U16 NPDA = u16(LAYOUT, "NPDA");
    public static final U16 NOWS = u16(LAYOUT, "NOWS");
    /** NVM Capacity, bytes, 128-bit: the low 64 bits. */
    public static final U64 NVMCAP_LOW = new U64("NVMCAP", bytes(LAYOUT, "NVMCAP").offset());
    public static final U16 MSSRL = u16(LAYOUT, "MSSRL");
    public static final U32 MCL = u32(LAYOUT, "MCL");
    public static final U8 MSRC = u8(LAYOUT, "MSRC");
    public static final Bytes NGUID = bytes(LAYOUT, "NGUID");
    public static final Bytes EUI64 = bytes(LAYOUT, "EUI64");

    /** Where LBA format {@code index} (0 to 15) starts: the base for the {@link LbaFormat} fields. */
    public static long lbaf(int index) {
        return LAYOUT.byteOffset(PathElement.groupElement("LBAF"), PathElement.sequenceElement(index));
    }

    private IdNs() {
    }
}
