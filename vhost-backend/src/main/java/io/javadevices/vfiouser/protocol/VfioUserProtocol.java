package io.javadevices.vfiouser.protocol;

/**
 * Every vfio-user wire constant in one place: the 16-byte header, command numbers, flags, and the byte
 * offsets of each message's fields. Sources: QEMU {@code docs/interop/vfio-user.rst} ("the spec"), QEMU
 * {@code hw/vfio-user/protocol.h}, Linux {@code include/uapi/linux/vfio.h}; see
 * the team's vfio-user.md research note (kept beside this repository) §1 for the annotated tables.
 *
 * <p>All integers are host-endian (little-endian on every platform this runs on). Payload offsets are
 * relative to the end of the header (i.e. to the message body); {@code *_SIZE} constants are body sizes
 * unless they say otherwise.
 */
public final class VfioUserProtocol {
    private VfioUserProtocol() {
    }

    // ------------------------------------------------------------------ header (spec "Header")
    public static final int HEADER_SIZE = 16;
    public static final int HDR_MSG_ID = 0;       // u16, echoed in the reply
    public static final int HDR_COMMAND = 2;      // u16
    public static final int HDR_MSG_SIZE = 4;     // u32, whole message including the header
    public static final int HDR_FLAGS = 8;        // u32
    public static final int HDR_ERROR = 12;       // u32, positive errno when FLAG_ERROR

    public static final int FLAG_TYPE_MASK = 0xF;
    public static final int FLAG_TYPE_COMMAND = 0;
    public static final int FLAG_TYPE_REPLY = 1;
    public static final int FLAG_NO_REPLY = 0x10;
    public static final int FLAG_ERROR = 0x20;

    // ------------------------------------------------------------------ commands (spec "Commands")
    public static final int CMD_VERSION = 1;
    public static final int CMD_DMA_MAP = 2;
    public static final int CMD_DMA_UNMAP = 3;
    public static final int CMD_DEVICE_GET_INFO = 4;
    public static final int CMD_DEVICE_GET_REGION_INFO = 5;
    public static final int CMD_DEVICE_GET_REGION_IO_FDS = 6;
    public static final int CMD_DEVICE_GET_IRQ_INFO = 7;
    public static final int CMD_DEVICE_SET_IRQS = 8;
    public static final int CMD_REGION_READ = 9;
    public static final int CMD_REGION_WRITE = 10;
    public static final int CMD_DMA_READ = 11;
    public static final int CMD_DMA_WRITE = 12;
    public static final int CMD_DEVICE_RESET = 13;
    public static final int CMD_DIRTY_PAGES = 14;
    public static final int CMD_REGION_WRITE_MULTI = 15;
    public static final int CMD_DEVICE_FEATURE = 16;
    public static final int CMD_MIG_DATA_READ = 17;
    public static final int CMD_MIG_DATA_WRITE = 18;
    /** Highest command number the statistics table tracks. */
    public static final int CMD_MAX = 18;

    // ------------------------------------------------------------------ VERSION (1)
    public static final int VERSION_MAJOR = 0;   // u16
    public static final int VERSION_MINOR = 2;   // u16
    public static final int VERSION_JSON = 4;    // NUL-terminated UTF-8 JSON follows
    public static final int VERSION_MIN_SIZE = 4;
    /** The protocol version this server speaks (QEMU 10.1+ requires major 0, minor ≤ 0 from the server). */
    public static final int SUPPORTED_MAJOR = 0;
    public static final int SUPPORTED_MINOR = 0;

    // ------------------------------------------------------------------ DMA_MAP (2)
    public static final int DMA_MAP_ARGSZ = 0;    // u32
    public static final int DMA_MAP_FLAGS = 4;    // u32
    public static final int DMA_MAP_OFFSET = 8;   // u64, file offset into the passed fd
    public static final int DMA_MAP_ADDRESS = 16; // u64, IOVA (guest-physical without vIOMMU)
    public static final int DMA_MAP_SIZE_FIELD = 24; // u64
    public static final int DMA_MAP_SIZE = 32;
    public static final int DMA_FLAG_READ = 0x1;
    public static final int DMA_FLAG_WRITE = 0x2;

    // ------------------------------------------------------------------ DMA_UNMAP (3)
    public static final int DMA_UNMAP_ARGSZ = 0;    // u32
    public static final int DMA_UNMAP_FLAGS = 4;    // u32
    public static final int DMA_UNMAP_ADDRESS = 8;  // u64
    public static final int DMA_UNMAP_SIZE_FIELD = 16; // u64
    public static final int DMA_UNMAP_SIZE = 24;
    /** VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP: not supported (QEMU's client does not use it). */
    public static final int DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 0x1;
    /** VFIO_DMA_UNMAP_FLAG_ALL, with address = size = 0 (QEMU hw/vfio/listener.c). */
    public static final int DMA_UNMAP_FLAG_ALL = 0x2;

    // ------------------------------------------------------------------ DEVICE_GET_INFO (4)
    public static final int DEVICE_INFO_ARGSZ = 0;       // u32
    public static final int DEVICE_INFO_FLAGS = 4;       // u32
    public static final int DEVICE_INFO_NUM_REGIONS = 8; // u32
    public static final int DEVICE_INFO_NUM_IRQS = 12;   // u32
    public static final int DEVICE_INFO_SIZE = 16;
    public static final int DEVICE_FLAGS_RESET = 0x1;
    public static final int DEVICE_FLAGS_PCI = 0x2;

    // ------------------------------------------------------------------ DEVICE_GET_REGION_INFO (5)
    public static final int REGION_INFO_ARGSZ = 0;       // u32
    public static final int REGION_INFO_FLAGS = 4;       // u32
    public static final int REGION_INFO_INDEX = 8;       // u32
    public static final int REGION_INFO_CAP_OFFSET = 12; // u32, relative to the struct start
    public static final int REGION_INFO_SIZE_FIELD = 16; // u64
    public static final int REGION_INFO_OFFSET = 24;     // u64, mmap offset into the region's fd
    public static final int REGION_INFO_SIZE = 32;
    public static final int REGION_FLAG_READ = 0x1;
    public static final int REGION_FLAG_WRITE = 0x2;
    public static final int REGION_FLAG_MMAP = 0x4;
    public static final int REGION_FLAG_CAPS = 0x8;
    /** Capability header: id u16, version u16, next u32 (offset from the struct start, 0 = last). */
    public static final int CAP_HEADER_SIZE = 8;
    public static final int CAP_ID_SPARSE_MMAP = 1;
    public static final int CAP_SPARSE_NR_AREAS = 8;     // u32 after the cap header
    public static final int CAP_SPARSE_AREAS = 16;       // then nr_areas × {offset u64, size u64}
    public static final int CAP_SPARSE_AREA_SIZE = 16;

    // ------------------------------------------------------------------ DEVICE_GET_IRQ_INFO (7)
    public static final int IRQ_INFO_ARGSZ = 0;  // u32
    public static final int IRQ_INFO_FLAGS = 4;  // u32
    public static final int IRQ_INFO_INDEX = 8;  // u32
    public static final int IRQ_INFO_COUNT = 12; // u32
    public static final int IRQ_INFO_SIZE = 16;
    public static final int IRQ_INFO_EVENTFD = 0x1;
    public static final int IRQ_INFO_MASKABLE = 0x2;
    public static final int IRQ_INFO_AUTOMASKED = 0x4;
    public static final int IRQ_INFO_NORESIZE = 0x8;

    // ------------------------------------------------------------------ DEVICE_SET_IRQS (8)
    public static final int SET_IRQS_ARGSZ = 0;  // u32
    public static final int SET_IRQS_FLAGS = 4;  // u32
    public static final int SET_IRQS_INDEX = 8;  // u32
    public static final int SET_IRQS_START = 12; // u32
    public static final int SET_IRQS_COUNT = 16; // u32
    public static final int SET_IRQS_DATA = 20;  // DATA_BOOL: count bytes; DATA_EVENTFD: fds via SCM_RIGHTS
    public static final int SET_IRQS_SIZE = 20;
    public static final int IRQ_SET_DATA_NONE = 0x1;
    public static final int IRQ_SET_DATA_BOOL = 0x2;
    public static final int IRQ_SET_DATA_EVENTFD = 0x4;
    public static final int IRQ_SET_ACTION_MASK = 0x8;
    public static final int IRQ_SET_ACTION_UNMASK = 0x10;
    public static final int IRQ_SET_ACTION_TRIGGER = 0x20;
    public static final int IRQ_SET_DATA_MASK = IRQ_SET_DATA_NONE | IRQ_SET_DATA_BOOL | IRQ_SET_DATA_EVENTFD;
    public static final int IRQ_SET_ACTION_MASK_ALL = IRQ_SET_ACTION_MASK | IRQ_SET_ACTION_UNMASK | IRQ_SET_ACTION_TRIGGER;

    // ------------------------------------------------------------------ REGION_READ (9) / REGION_WRITE (10)
    public static final int REGION_RW_OFFSET = 0;  // u64, offset within the region
    public static final int REGION_RW_REGION = 8;  // u32, region index
    public static final int REGION_RW_COUNT = 12;  // u32, data bytes
    public static final int REGION_RW_DATA = 16;   // data (READ reply / WRITE request)
    public static final int REGION_RW_SIZE = 16;

    // ------------------------------------------------------------------ REGION_WRITE_MULTI (15)
    public static final int WRITE_MULTI_COUNT = 0;        // u64 wr_cnt
    public static final int WRITE_MULTI_ENTRIES = 8;      // wr_cnt × 24-byte entries
    public static final int WRITE_MULTI_ENTRY_SIZE = 24;
    public static final int WRITE_MULTI_E_OFFSET = 0;     // u64
    public static final int WRITE_MULTI_E_REGION = 8;     // u32
    public static final int WRITE_MULTI_E_COUNT = 12;     // u32, ≤ 8
    public static final int WRITE_MULTI_E_DATA = 16;      // 8 bytes
    public static final int WRITE_MULTI_MAX_DATA = 8;
    /** QEMU's VFIO_USER_MULTI_MAX (hw/vfio-user/protocol.h). */
    public static final int WRITE_MULTI_MAX_ENTRIES = 200;

    // ------------------------------------------------------------------ PCI region and IRQ indices (vfio.h)
    public static final int REGION_BAR0 = 0;
    public static final int REGION_BAR5 = 5;
    public static final int REGION_ROM = 6;
    public static final int REGION_CONFIG = 7;
    public static final int REGION_VGA = 8;
    public static final int NUM_REGIONS = 9;

    public static final int IRQ_INTX = 0;
    public static final int IRQ_MSI = 1;
    public static final int IRQ_MSIX = 2;
    public static final int IRQ_ERR = 3;
    public static final int IRQ_REQ = 4;
    public static final int NUM_IRQS = 5;

    /** A readable name for a command number, for log lines. */
    public static String commandName(int command) {
        return switch (command) {
            case CMD_VERSION -> "VERSION";
            case CMD_DMA_MAP -> "DMA_MAP";
            case CMD_DMA_UNMAP -> "DMA_UNMAP";
            case CMD_DEVICE_GET_INFO -> "DEVICE_GET_INFO";
            case CMD_DEVICE_GET_REGION_INFO -> "DEVICE_GET_REGION_INFO";
            case CMD_DEVICE_GET_REGION_IO_FDS -> "DEVICE_GET_REGION_IO_FDS";
            case CMD_DEVICE_GET_IRQ_INFO -> "DEVICE_GET_IRQ_INFO";
            case CMD_DEVICE_SET_IRQS -> "DEVICE_SET_IRQS";
            case CMD_REGION_READ -> "REGION_READ";
            case CMD_REGION_WRITE -> "REGION_WRITE";
            case CMD_DMA_READ -> "DMA_READ";
            case CMD_DMA_WRITE -> "DMA_WRITE";
            case CMD_DEVICE_RESET -> "DEVICE_RESET";
            case CMD_DIRTY_PAGES -> "DIRTY_PAGES";
            case CMD_REGION_WRITE_MULTI -> "REGION_WRITE_MULTI";
            case CMD_DEVICE_FEATURE -> "DEVICE_FEATURE";
            case CMD_MIG_DATA_READ -> "MIG_DATA_READ";
            case CMD_MIG_DATA_WRITE -> "MIG_DATA_WRITE";
            default -> "command " + command;
        };
    }
}
