package io.javadevices.vfiouser.protocol;

/**
 * The vfio-user numbers: command numbers, header and per-command flags, region and IRQ indices. Sources:
 * QEMU {@code docs/interop/vfio-user.rst} (the vfio-user spec), QEMU {@code hw/vfio-user/protocol.h},
 * Linux {@code include/uapi/linux/vfio.h}. The message structures (field offsets and sizes) are
 * {@link WireStructs}.
 */
public final class VfioUserProtocol {
    private VfioUserProtocol() {
    }

    // ------------------------------------------------------------------ header flags (spec "Header")

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
    /** The protocol version this server speaks (QEMU 10.1+ requires major 0, minor ≤ 0 from the server). */
    public static final int SUPPORTED_MAJOR = 0;
    public static final int SUPPORTED_MINOR = 0;

    // ------------------------------------------------------------------ DMA_MAP (2)
    public static final int DMA_FLAG_READ = 0x1;
    public static final int DMA_FLAG_WRITE = 0x2;

    // ------------------------------------------------------------------ DMA_UNMAP (3)
    /** VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP: not supported (QEMU's client does not use it). */
    public static final int DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 0x1;
    /** VFIO_DMA_UNMAP_FLAG_ALL, with address = size = 0 (QEMU hw/vfio/listener.c). */
    public static final int DMA_UNMAP_FLAG_ALL = 0x2;

    // ------------------------------------------------------------------ DEVICE_GET_INFO (4)
    public static final int DEVICE_FLAGS_RESET = 0x1;
    public static final int DEVICE_FLAGS_PCI = 0x2;

    // ------------------------------------------------------------------ DEVICE_GET_REGION_INFO (5)
    public static final int REGION_FLAG_READ = 0x1;
    public static final int REGION_FLAG_WRITE = 0x2;
    public static final int REGION_FLAG_MMAP = 0x4;
    public static final int REGION_FLAG_CAPS = 0x8;
    public static final int CAP_ID_SPARSE_MMAP = 1;

    // ------------------------------------------------------------------ DEVICE_GET_IRQ_INFO (7)
    public static final int IRQ_INFO_EVENTFD = 0x1;
    public static final int IRQ_INFO_MASKABLE = 0x2;
    public static final int IRQ_INFO_AUTOMASKED = 0x4;
    public static final int IRQ_INFO_NORESIZE = 0x8;

    // ------------------------------------------------------------------ DEVICE_SET_IRQS (8)
    public static final int IRQ_SET_DATA_NONE = 0x1;
    public static final int IRQ_SET_DATA_BOOL = 0x2;
    public static final int IRQ_SET_DATA_EVENTFD = 0x4;
    public static final int IRQ_SET_ACTION_MASK = 0x8;
    public static final int IRQ_SET_ACTION_UNMASK = 0x10;
    public static final int IRQ_SET_ACTION_TRIGGER = 0x20;
    public static final int IRQ_SET_DATA_MASK = IRQ_SET_DATA_NONE | IRQ_SET_DATA_BOOL | IRQ_SET_DATA_EVENTFD;
    public static final int IRQ_SET_ACTION_MASK_ALL = IRQ_SET_ACTION_MASK | IRQ_SET_ACTION_UNMASK | IRQ_SET_ACTION_TRIGGER;

    // ------------------------------------------------------------------ REGION_WRITE_MULTI (15)
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
