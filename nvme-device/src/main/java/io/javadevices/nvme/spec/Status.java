package io.javadevices.nvme.spec;

/**
 * NVMe completion status values as the 15-bit Status Field of a completion queue entry (NVMe 1.4
 * §4.6.1, Figure 126): bits 7:0 SC, 10:8 SCT, 13 More, 14 DNR. {@link #SUCCESS} is 0.
 */
public final class Status {
    private Status() {
    }

    public static final int DNR = 1 << 14;
    private static final int SCT_GENERIC = 0, SCT_COMMAND_SPECIFIC = 1, SCT_MEDIA = 2;

    // Generic Command Status (SCT 0, NVMe 1.4 Figure 128).
    public static final int SUCCESS = 0;
    public static final int INVALID_OPCODE = 0x01 | DNR;
    public static final int INVALID_FIELD = 0x02 | DNR;
    public static final int DATA_TRANSFER_ERROR = 0x04;
    public static final int INTERNAL_ERROR = 0x06;
    public static final int ABORT_REQUESTED = 0x07;
    public static final int ABORTED_SQ_DELETION = 0x08;
    public static final int INVALID_NAMESPACE_OR_FORMAT = 0x0B | DNR;
    public static final int COMMAND_SEQUENCE_ERROR = 0x0C | DNR;
    public static final int INVALID_SGL_SEGMENT_DESCRIPTOR = 0x0D | DNR;
    public static final int INVALID_NUMBER_OF_SGL_DESCRIPTORS = 0x0E | DNR;
    public static final int DATA_SGL_LENGTH_INVALID = 0x0F | DNR;
    public static final int METADATA_SGL_LENGTH_INVALID = 0x10 | DNR;
    public static final int SGL_DESCRIPTOR_TYPE_INVALID = 0x11 | DNR;
    public static final int INVALID_PRP_OFFSET = 0x13 | DNR;
    public static final int SGL_OFFSET_INVALID = 0x16 | DNR;
    public static final int SGL_SUBTYPE_INVALID = 0x17 | DNR;
    /** A write to a write-protected namespace (NVMe 1.4 Figure 128, 20h): a read-only backend. */
    public static final int NAMESPACE_WRITE_PROTECTED = 0x20 | DNR;
    public static final int LBA_OUT_OF_RANGE = 0x80 | DNR;
    public static final int CAPACITY_EXCEEDED = 0x81 | DNR;
    public static final int NAMESPACE_NOT_READY = 0x82;
    public static final int FORMAT_IN_PROGRESS = 0x84;

    // Command Specific Status (SCT 1, NVMe 1.4 Figure 129).
    public static final int COMPLETION_QUEUE_INVALID = cmd(0x00) | DNR;
    public static final int INVALID_QUEUE_IDENTIFIER = cmd(0x01) | DNR;
    public static final int INVALID_QUEUE_SIZE = cmd(0x02) | DNR;
    public static final int AER_LIMIT_EXCEEDED = cmd(0x05) | DNR;
    public static final int INVALID_INTERRUPT_VECTOR = cmd(0x08) | DNR;
    public static final int INVALID_LOG_PAGE = cmd(0x09) | DNR;
    public static final int INVALID_QUEUE_DELETION = cmd(0x0C) | DNR;
    public static final int INVALID_FORMAT = cmd(0x0A) | DNR;
    public static final int FEATURE_NOT_SAVEABLE = cmd(0x0D) | DNR;
    public static final int FEATURE_NOT_CHANGEABLE = cmd(0x0E) | DNR;
    public static final int FEATURE_NOT_NAMESPACE_SPECIFIC = cmd(0x0F) | DNR;
    public static final int NAMESPACE_INSUFFICIENT_CAPACITY = cmd(0x15) | DNR;
    public static final int NAMESPACE_IDENTIFIER_UNAVAILABLE = cmd(0x16) | DNR;
    public static final int NAMESPACE_ALREADY_ATTACHED = cmd(0x18) | DNR;
    public static final int NAMESPACE_IS_PRIVATE = cmd(0x19) | DNR;
    public static final int NAMESPACE_NOT_ATTACHED = cmd(0x1A) | DNR;
    public static final int THIN_PROVISIONING_NOT_SUPPORTED = cmd(0x1B) | DNR;
    public static final int CONTROLLER_LIST_INVALID = cmd(0x1C) | DNR;
    public static final int INVALID_CONTROLLER_IDENTIFIER = cmd(0x1F) | DNR;

    // Command Specific Status of the NVM command set (SCT 1, NVMe 1.4 Figure 130; Copy: NVMe 2.0 NVM Command Set).
    public static final int CONFLICTING_ATTRIBUTES = cmd(0x80) | DNR;
    public static final int INVALID_PROTECTION_INFORMATION = cmd(0x81) | DNR;
    public static final int ATTEMPTED_WRITE_TO_READ_ONLY_RANGE = cmd(0x82) | DNR;
    public static final int COMMAND_SIZE_LIMIT_EXCEEDED = cmd(0x83) | DNR;

    // Media and Data Integrity Errors (SCT 2, NVMe 1.4 Figure 130).
    public static final int WRITE_FAULT = media(0x80);
    public static final int UNRECOVERED_READ_ERROR = media(0x81);
    public static final int COMPARE_FAILURE = media(0x85) | DNR;
    public static final int ACCESS_DENIED = media(0x86) | DNR;
    public static final int DEALLOCATED_OR_UNWRITTEN_BLOCK = media(0x87) | DNR;

    private static int cmd(int sc) {
        return SCT_COMMAND_SPECIFIC << 8 | sc;
    }

    private static int media(int sc) {
        return SCT_MEDIA << 8 | sc;
    }

    /** Status Code (bits 7:0). */
    public static int sc(int status) {
        return status & 0xFF;
    }

    /** Status Code Type (bits 10:8). */
    public static int sct(int status) {
        return (status >>> 8) & 0x7;
    }

    public static boolean dnr(int status) {
        return (status & DNR) != 0;
    }

    public static String describe(int status) {
        return String.format("SCT %d SC 0x%02x%s", sct(status), sc(status), dnr(status) ? " DNR" : "");
    }
}
