package io.javadevices.nvme.spec;

/** Register offsets, opcodes and field layouts of NVMe 1.4 used across the controller. */
public final class Nvme {
    private Nvme() {
    }

    /** PCI vendor and device id (also Identify Controller VID/SSVID). */
    public static final int VENDOR_ID = 0x4E58, DEVICE_ID = 0x4A56;
    /** CAP.MPSMAX: host pages up to 64 KiB. */
    public static final int MPS_MAX = 4;

    // Controller registers (NVMe 1.4 §3.1, Figure 67); the register table is regs/Bar0Registers.
    public static final int REG_CAP = 0x00, REG_VS = 0x08, REG_INTMS = 0x0C, REG_INTMC = 0x10, REG_CC = 0x14,
            REG_CSTS = 0x1C, REG_NSSR = 0x20, REG_AQA = 0x24, REG_ASQ = 0x28, REG_ACQ = 0x30,
            REG_CMBLOC = 0x38, REG_CMBSZ = 0x3C;
    /** First doorbell (SQ0 tail); with CAP.DSTRD = 0 each doorbell is 4 bytes, SQ y at 8y, CQ y at 8y+4. */
    public static final int DOORBELL_BASE = 0x1000;
    public static final int BAR0_SIZE = 16 * 1024;
    public static final int VERSION_1_4 = 0x0001_0400;

    public static final int CC_EN = 1;
    public static final int CSTS_RDY = 1, CSTS_CFS = 1 << 1, CSTS_SHST_MASK = 3 << 2, CSTS_SHST_COMPLETE = 2 << 2,
            CSTS_SHST_OCCURRING = 1 << 2;

    /** Queue entry sizes as powers of two (CC.IOSQES/IOCQES, Identify SQES/CQES): SqeLayout 2^6, CqeLayout 2^4 bytes. */
    public static final int SQES_LOG2 = 6, CQES_LOG2 = 4;

    // Admin opcodes (NVMe 1.4 Figure 139).
    public static final int ADM_DELETE_SQ = 0x00, ADM_CREATE_SQ = 0x01, ADM_GET_LOG_PAGE = 0x02, ADM_DELETE_CQ = 0x04,
            ADM_CREATE_CQ = 0x05, ADM_IDENTIFY = 0x06, ADM_ABORT = 0x08, ADM_SET_FEATURES = 0x09,
            ADM_GET_FEATURES = 0x0A, ADM_ASYNC_EVENT_REQUEST = 0x0C, ADM_NAMESPACE_MANAGEMENT = 0x0D,
            ADM_NAMESPACE_ATTACHMENT = 0x15, ADM_KEEP_ALIVE = 0x18, ADM_DOORBELL_BUFFER_CONFIG = 0x7C,
            ADM_FORMAT_NVM = 0x80, ADM_GET_LBA_STATUS = 0x86;

    // NVM command set opcodes (NVMe 1.4 Figure 346).
    public static final int IO_FLUSH = 0x00, IO_WRITE = 0x01, IO_READ = 0x02, IO_WRITE_UNCORRECTABLE = 0x04,
            IO_COMPARE = 0x05, IO_WRITE_ZEROES = 0x08, IO_DSM = 0x09, IO_VERIFY = 0x0C, IO_COPY = 0x19;

    public static final int BROADCAST_NSID = 0xFFFF_FFFF;

    /** OACS bit 8: Doorbell Buffer Config supported (Linux NVME_CTRL_OACS_DBBUF_SUPP). */
    public static final int OACS_DBBUF = 1 << 8;
    /** OACS bit 3: Namespace Management and Namespace Attachment supported. */
    public static final int OACS_NS_MANAGEMENT = 1 << 3;

    /**
     * Whether a doorbell value (SQ tail or CQ head, raw 32 bits as written) indexes a queue of
     * {@code entries} slots; anything else is an Invalid Doorbell Write Value (NVMe 1.4 §3.1.10/§3.1.11,
     * async event 01h/01h). The one check for MMIO, shadow and polled doorbells alike.
     */
    public static boolean validDoorbell(int value, int entries) {
        return Integer.compareUnsigned(value, entries) < 0;
    }
}
