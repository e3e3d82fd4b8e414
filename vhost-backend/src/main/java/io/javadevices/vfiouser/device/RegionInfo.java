package io.javadevices.vfiouser.device;

import java.util.List;

/**
 * What DEVICE_GET_REGION_INFO reports for one region (spec "VFIO_USER_DEVICE_GET_REGION_INFO").
 *
 * @param index       region index (0-5 BARs, 6 ROM, 7 config, 8 VGA)
 * @param flags       READ/WRITE/MMAP flags ({@code REGION_FLAG_*}; CAPS is added by the encoder)
 * @param size        region size in bytes, 0 if the region does not exist
 * @param offset      base offset into {@code mmapFd} for client mmaps (0 without an fd)
 * @param sparseAreas the mmappable parts (empty = whole region when MMAP is set); from
 *                    {@link MemfdBarWindows}, e.g. the NVMe doorbell page with {@code doorbells=polled}
 * @param mmapFd      the fd sent with the reply when MMAP is set, else -1 (exactly one per region)
 */
public record RegionInfo(int index, int flags, long size, long offset, List<SparseArea> sparseAreas, int mmapFd) {

    /** One mmappable area, page-aligned, relative to the region start. */
    public record SparseArea(long offset, long size) {
    }

    public RegionInfo {
        sparseAreas = List.copyOf(sparseAreas);
    }

    /** A region accessed only through REGION_READ/WRITE messages. */
    public static RegionInfo trapped(int index, int flags, long size) {
        return new RegionInfo(index, flags, size, 0, List.of(), -1);
    }

    /** An absent region (size 0, no flags). */
    public static RegionInfo absent(int index) {
        return trapped(index, 0, 0);
    }
}
