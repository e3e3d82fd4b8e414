package io.javadevices.vfiouser.protocol;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The vfio-user message structures, each declared once with the field names of the vfio-user spec (QEMU
 * {@code docs/interop/vfio-user.rst}) and Linux {@code include/uapi/linux/vfio.h}; handlers read and write
 * fields by name through {@link Field}. All integers are little-endian (the spec says host-endian; every
 * supported host is little-endian) and unaligned, so a struct may start anywhere in a buffer.
 *
 * <p>Sizes are checked when the class loads, as QEMU's {@code _nvme_check_size()} does with
 * {@code QEMU_BUILD_BUG_ON}: a field added or dropped by mistake fails the first use, not a guest.
 * Body structs start at the end of the header.
 */
public final class WireStructs {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private WireStructs() {
    }

    /** Spec "Header": every message starts with it; {@code error} is a positive errno in error replies. */
    public static final StructLayout HEADER = check(16, MemoryLayout.structLayout(
            U16.withName("msg_id"), U16.withName("command"), U32.withName("msg_size"),
            U32.withName("flags"), U32.withName("error")));

    /** VFIO_USER_VERSION: then a NUL-terminated JSON capabilities string. */
    public static final StructLayout VERSION = check(4, MemoryLayout.structLayout(
            U16.withName("major"), U16.withName("minor")));

    /** VFIO_USER_DMA_MAP ({@code struct vfio_user_dma_map}): {@code offset} is into the fd passed with it. */
    public static final StructLayout DMA_MAP = check(32, MemoryLayout.structLayout(
            U32.withName("argsz"), U32.withName("flags"), U64.withName("offset"),
            U64.withName("address"), U64.withName("size")));

    /** VFIO_USER_DMA_UNMAP ({@code struct vfio_user_dma_unmap}, without the dirty bitmap). */
    public static final StructLayout DMA_UNMAP = check(24, MemoryLayout.structLayout(
            U32.withName("argsz"), U32.withName("flags"), U64.withName("address"), U64.withName("size")));

    /** VFIO_USER_DEVICE_GET_INFO ({@code struct vfio_device_info}). */
    public static final StructLayout DEVICE_INFO = check(16, MemoryLayout.structLayout(
            U32.withName("argsz"), U32.withName("flags"), U32.withName("num_regions"), U32.withName("num_irqs")));

    /** VFIO_USER_DEVICE_GET_REGION_INFO ({@code struct vfio_region_info}); capabilities follow at cap_offset. */
    public static final StructLayout REGION_INFO = check(32, MemoryLayout.structLayout(
            U32.withName("argsz"), U32.withName("flags"), U32.withName("index"), U32.withName("cap_offset"),
            U64.withName("size"), U64.withName("offset")));

    /** {@code struct vfio_region_info_cap_sparse_mmap}: a {@code vfio_info_cap_header} (id, version, next), then nr_areas. */
    public static final StructLayout SPARSE_MMAP_CAP = check(16, MemoryLayout.structLayout(
            U16.withName("id"), U16.withName("version"), U32.withName("next"),
            U32.withName("nr_areas"), U32.withName("reserved")));

    /** {@code struct vfio_region_sparse_mmap_area}: nr_areas of these follow {@link #SPARSE_MMAP_CAP}. */
    public static final StructLayout SPARSE_AREA = check(16, MemoryLayout.structLayout(
            U64.withName("offset"), U64.withName("size")));

    /** VFIO_USER_DEVICE_GET_IRQ_INFO ({@code struct vfio_irq_info}). */
    public static final StructLayout IRQ_INFO = check(16, MemoryLayout.structLayout(
            U32.withName("argsz"), U32.withName("flags"), U32.withName("index"), U32.withName("count")));

    /** VFIO_USER_DEVICE_SET_IRQS ({@code struct vfio_irq_set}): DATA_BOOL bytes follow; eventfds ride as SCM_RIGHTS. */
    public static final StructLayout SET_IRQS = check(20, MemoryLayout.structLayout(
            U32.withName("argsz"), U32.withName("flags"), U32.withName("index"), U32.withName("start"),
            U32.withName("count")));

    /** VFIO_USER_REGION_READ / VFIO_USER_REGION_WRITE: {@code count} data bytes follow. */
    public static final StructLayout REGION_ACCESS = check(16, MemoryLayout.structLayout(
            U64.withName("offset"), U32.withName("region"), U32.withName("count")));

    /** VFIO_USER_REGION_WRITE_MULTI: {@code wr_cnt} entries follow. */
    public static final StructLayout WRITE_MULTI = check(8, MemoryLayout.structLayout(U64.withName("wr_cnt")));

    /** One VFIO_USER_REGION_WRITE_MULTI entry (QEMU's {@code VFIOUserWROne}): at most 8 data bytes. */
    public static final StructLayout WRITE_MULTI_ENTRY = check(24, MemoryLayout.structLayout(
            U64.withName("offset"), U32.withName("region"), U32.withName("count"),
            MemoryLayout.sequenceLayout(8, ValueLayout.JAVA_BYTE).withName("data")));

    public static final int HEADER_SIZE = (int) HEADER.byteSize();

    private static StructLayout check(long size, StructLayout layout) {
        if (layout.byteSize() != size) {
            throw new AssertionError(layout + " is " + layout.byteSize() + " bytes, the spec says " + size);
        }
        return layout;
    }
}
