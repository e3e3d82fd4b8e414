package io.javadevices.nvme.spec;

import java.lang.foreign.StructLayout;

import static io.javadevices.nvme.spec.Fields.*;

/**
 * Identify Controller data structure, 4096 bytes (Identify CNS 01h, NVMe 1.4 §5.15, Figure 247); QEMU's
 * {@code NvmeIdCtrl}. Field names are the spec's abbreviations. Each field is set with {@code IdCtrl.X.set(page, value)}.
 */
public final class IdCtrl {
    public static final long SIZE = 4096;

    public static final StructLayout LAYOUT = struct("IdCtrl", SIZE,
            // Controller capabilities and features
            u16("VID"),
            u16("SSVID"),
            bytes("SN", 20),
            bytes("MN", 40),
            bytes("FR", 8),
            u8("RAB"),
            bytes("IEEE", 3),
            u8("CMIC"),
            u8("MDTS"),
            u16("CNTLID"),
            u32("VER"),
            u32("RTD3R"),
            u32("RTD3E"),
            u32("OAES"),
            u32("CTRATT"),
            u16("RRLS"),
            reserved(9),
            u8("CNTRLTYPE"),
            bytes("FGUID", 16),
            u16("CRDT1"),
            u16("CRDT2"),
            u16("CRDT3"),
            reserved(106),
            reserved(16), // 255:240 defined by the NVMe Management Interface specification
            // Admin command set attributes and optional controller capabilities
            u16("OACS"),
            u8("ACL"),
            u8("AERL"),
            u8("FRMW"),
            u8("LPA"),
            u8("ELPE"),
            u8("NPSS"),
            u8("AVSCC"),
            u8("APSTA"),
            u16("WCTEMP"),
            u16("CCTEMP"),
            u16("MTFA"),
            u32("HMPRE"),
            u32("HMMIN"),
            bytes("TNVMCAP", 16),
            bytes("UNVMCAP", 16),
            u32("RPMBS"),
            u16("EDSTT"),
            u8("DSTO"),
            u8("FWUG"),
            u16("KAS"),
            u16("HCTMA"),
            u16("MNTMT"),
            u16("MXTMT"),
            u32("SANICAP"),
            u32("HMMINDS"),
            u16("HMMAXD"),
            u16("NSETIDMAX"),
            u16("ENDGIDMAX"),
            u8("ANATT"),
            u8("ANACAP"),
            u32("ANAGRPMAX"),
            u32("NANAGRPID"),
            u32("PELS"),
            reserved(156),
            // NVM command set attributes
            u8("SQES"),
            u8("CQES"),
            u16("MAXCMD"),
            u32("NN"),
            u16("ONCS"),
            u16("FUSES"),
            u8("FNA"),
            u8("VWC"),
            u16("AWUN"),
            u16("AWUPF"),
            u8("NVSCC"),
            u8("NWPC"),
            u16("ACWU"),
            u16("OCFS"),              // NVMe 2.0: Optional Copy Formats Supported (reserved in 1.4)
            u32("SGLS"),
            u32("MNAN"),
            reserved(224),
            bytes("SUBNQN", 256),
            reserved(768),
            reserved(256), // 2047:1792 defined by the NVMe over Fabrics specification
            array("PSD", 32, PowerStateDescriptor.LAYOUT),
            bytes("VS", 1024));

    public static final U16 VID = u16(LAYOUT, "VID");
    public static final U16 SSVID = u16(LAYOUT, "SSVID");
    public static final Bytes SN = bytes(LAYOUT, "SN");
    public static final Bytes MN = bytes(LAYOUT, "MN");
    public static final Bytes FR = bytes(LAYOUT, "FR");
    public static final U8 RAB = u8(LAYOUT, "RAB");
    /** IEEE OUI, least significant byte first. */
    public static final Bytes IEEE = bytes(LAYOUT, "IEEE");
    public static final U8 MDTS = u8(LAYOUT, "MDTS");
    public static final U16 CNTLID = u16(LAYOUT, "CNTLID");
    public static final U32 VER = u32(LAYOUT, "VER");
    public static final U32 OAES = u32(LAYOUT, "OAES");
    public static final U8 CNTRLTYPE = u8(LAYOUT, "CNTRLTYPE");
    public static final U16 OACS = u16(LAYOUT, "OACS");
    public static final U8 ACL = u8(LAYOUT, "ACL");
    public static final U8 AERL = u8(LAYOUT, "AERL");
    public static final U8 FRMW = u8(LAYOUT, "FRMW");
    public static final U8 LPA = u8(LAYOUT, "LPA");
    public static final U8 ELPE = u8(LAYOUT, "ELPE");
    public static final U8 NPSS = u8(LAYOUT, "NPSS");
    public static final U16 WCTEMP = u16(LAYOUT, "WCTEMP");
    public static final U16 CCTEMP = u16(LAYOUT, "CCTEMP");
    public static final U8 SQES = u8(LAYOUT, "SQES");
    public static final U8 CQES = u8(LAYOUT, "CQES");
    public static final U32 NN = u32(LAYOUT, "NN");
    public static final U16 ONCS = u16(LAYOUT, "ONCS");
    public static final U8 VWC = u8(LAYOUT, "VWC");
    public static final U32 SGLS = u32(LAYOUT, "SGLS");
    public static final U32 MNAN = u32(LAYOUT, "MNAN");
    public static final U16 OCFS = u16(LAYOUT, "OCFS");
    public static final U16 FUSES = u16(LAYOUT, "FUSES");
    /** Format NVM Attributes: bit 0 format all namespaces together, bit 1 secure erase all together, bit 2 crypto erase. */
    public static final U8 FNA = u8(LAYOUT, "FNA");
    public static final U16 MAXCMD = u16(LAYOUT, "MAXCMD");
    public static final U32 CTRATT = u32(LAYOUT, "CTRATT");
    public static final U8 CMIC = u8(LAYOUT, "CMIC");
    public static final U8 APSTA = u8(LAYOUT, "APSTA");
    /** Total NVM Capacity, bytes, 128-bit: the low 64 bits (the high half stays 0 below 16 EiB). */
    public static final U64 TNVMCAP_LOW = new U64("TNVMCAP", bytes(LAYOUT, "TNVMCAP").offset());
    /** Unallocated NVM Capacity, bytes, 128-bit: the low 64 bits. */
    public static final U64 UNVMCAP_LOW = new U64("UNVMCAP", bytes(LAYOUT, "UNVMCAP").offset());
    public static final Bytes SUBNQN = bytes(LAYOUT, "SUBNQN");
    /** PSD0's maximum power (MP), in 0.01 W units. */
    public static final U16 PSD0_MP = u16(LAYOUT, "PSD", 0, "MP");

    private IdCtrl() {
    }
}
