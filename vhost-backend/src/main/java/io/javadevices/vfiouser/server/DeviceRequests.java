package io.javadevices.vfiouser.server;

import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.MmioAccess;
import io.javadevices.pci.PciDevice;
import io.javadevices.vfiouser.device.DeviceLayout;
import io.javadevices.vfiouser.device.RegionInfo;
import io.javadevices.vfiouser.dma.DmaMappings;
import io.javadevices.vfiouser.irq.EventfdInterrupts;
import io.javadevices.vfiouser.protocol.Field;
import io.javadevices.vfiouser.protocol.Messages.DeviceGetInfo;
import io.javadevices.vfiouser.protocol.Messages.DmaMap;
import io.javadevices.vfiouser.protocol.Messages.DmaUnmap;
import io.javadevices.vfiouser.protocol.Messages.IrqInfoRequest;
import io.javadevices.vfiouser.protocol.Messages.RegionAccess;
import io.javadevices.vfiouser.protocol.Messages.RegionInfoRequest;
import io.javadevices.vfiouser.protocol.Messages.SetIrqs;
import io.javadevices.vfiouser.protocol.Messages.WriteMulti;
import io.javadevices.vfiouser.protocol.ReceivedFds;
import io.javadevices.vfiouser.protocol.VfioUserError;
import io.javadevices.vfiouser.protocol.WireStructs;
import io.javadevices.vfiouser.sys.Errno;

import java.lang.foreign.MemorySegment;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * The device side of a session (rust-vmm vfio-user's {@code ServerBackend}: region read/write, DMA
 * map/unmap, set IRQs, reset; plus the region and IRQ info libvfio-user answers in
 * {@code handle_device_get_region_info} / {@code handle_device_get_irq_info}). Each request arrives
 * decoded by {@link io.javadevices.vfiouser.protocol.Messages}; a handler writes its reply body into
 * {@code out} and returns its length, or throws {@link VfioUserError}. Checks here are only those that
 * need the device (indices, ranges). Called from the session thread only.
 */
final class DeviceRequests {
    private static final System.Logger LOG = System.getLogger(VfioUserServer.class.getName());
    private static final int REGION_INFO_SIZE = (int) WireStructs.REGION_INFO.byteSize();
    private static final Field.U16 CAP_ID = Field.U16.of(WireStructs.SPARSE_MMAP_CAP, "id");
    private static final Field.U16 CAP_VERSION = Field.U16.of(WireStructs.SPARSE_MMAP_CAP, "version");
    private static final Field.U32 CAP_NEXT = Field.U32.of(WireStructs.SPARSE_MMAP_CAP, "next");
    private static final Field.U32 CAP_NR_AREAS = Field.U32.of(WireStructs.SPARSE_MMAP_CAP, "nr_areas");
    private static final Field.U32 CAP_RESERVED = Field.U32.of(WireStructs.SPARSE_MMAP_CAP, "reserved");
    private static final Field.U64 AREA_OFFSET = Field.U64.of(WireStructs.SPARSE_AREA, "offset");
    private static final Field.U64 AREA_SIZE = Field.U64.of(WireStructs.SPARSE_AREA, "size");

    /** Region accesses the device threw on (session thread only). */
    private long deviceFailures;
    private final PciDevice device;
    private final ConfigSpace config;
    private final DeviceLayout layout;
    private final DmaMappings dma;
    private final EventfdInterrupts interrupts;
    private final int maxDataXferSize;
    private final byte[] configScratch;
    /** The fd the next reply carries (a region's mmap fd), or -1. */
    private int replyFd = -1;

    DeviceRequests(VfioUserServer server) {
        this.device = server.device();
        this.config = device.config();
        this.layout = server.layout();
        this.dma = server.dma();
        this.interrupts = server.interrupts();
        this.maxDataXferSize = server.limits().maxDataXferSize();
        this.configScratch = new byte[Math.max(4096, config.size())];
    }

    /** The fd to attach to the reply of the request just handled (-1 for none); clears it. */
    int takeReplyFd() {
        int fd = replyFd;
        replyFd = -1;
        return fd;
    }

    int dmaMap(DmaMap m, ReceivedFds fds) throws VfioUserError {
        int fd = m.hasFd() ? fds.take(0) : -1;
        check(dma.map(m.address(), m.size(), m.offset(), m.flags(), fd));
        return 0;
    }

    int dmaUnmap(DmaUnmap m, MemorySegment out) throws VfioUserError {
        if (m.all()) {
            // The kernel wants address = size = 0 with UNMAP_ALL; QEMU sends that, but the intent of the
            // flag is unambiguous, so other values are not worth a (fatal for QEMU) error.
            dma.unmapAll();
        } else {
            check(dma.unmap(m.address(), m.size()));
        }
        DmaUnmap.ARGSZ.set(out, WireStructs.DMA_UNMAP.byteSize());
        DmaUnmap.FLAGS.set(out, m.flags());
        DmaUnmap.ADDRESS.set(out, m.address());
        DmaUnmap.SIZE.set(out, m.size());
        return (int) WireStructs.DMA_UNMAP.byteSize();
    }

    int deviceInfo(MemorySegment out) {
        DeviceGetInfo.ARGSZ.set(out, WireStructs.DEVICE_INFO.byteSize());
        DeviceGetInfo.FLAGS.set(out, DEVICE_FLAGS_PCI | DEVICE_FLAGS_RESET);
        DeviceGetInfo.NUM_REGIONS.set(out, layout.regionCount());
        DeviceGetInfo.NUM_IRQS.set(out, layout.irqCount());
        return (int) WireStructs.DEVICE_INFO.byteSize();
    }

    int regionInfo(RegionInfoRequest m, MemorySegment out) throws VfioUserError {
        if (m.index() >= layout.regionCount()) {
            throw new VfioUserError(Errno.EINVAL);
        }
        RegionInfo r = layout.region((int) m.index());
        // A region with sparse areas needs the 32-byte struct plus a sparse-mmap capability. QEMU asks
        // with argsz = 32 first: then the reply says the full argsz and carries neither caps nor fd, and
        // QEMU asks again with the bigger argsz (QEMU vfio_user_get_region_info; libvfio-user's
        // handle_device_get_region_info does the same).
        int areas = r.sparseAreas().size();
        int capBytes = areas == 0 ? 0 : (int) (WireStructs.SPARSE_MMAP_CAP.byteSize()
                + areas * WireStructs.SPARSE_AREA.byteSize());
        int full = REGION_INFO_SIZE + capBytes;
        boolean complete = m.argsz() >= full;
        boolean withCaps = capBytes > 0 && complete;
        RegionInfoRequest.ARGSZ.set(out, full);
        RegionInfoRequest.FLAGS.set(out, r.flags() | (withCaps ? REGION_FLAG_CAPS : 0));
        RegionInfoRequest.INDEX.set(out, m.index());
        RegionInfoRequest.CAP_OFFSET.set(out, withCaps ? REGION_INFO_SIZE : 0);
        RegionInfoRequest.SIZE.set(out, r.size());
        RegionInfoRequest.OFFSET.set(out, r.offset());
        if (!complete) {
            return REGION_INFO_SIZE;
        }
        if (withCaps) {
            CAP_ID.set(out, REGION_INFO_SIZE, CAP_ID_SPARSE_MMAP);
            CAP_VERSION.set(out, REGION_INFO_SIZE, 1);
            CAP_NEXT.set(out, REGION_INFO_SIZE, 0); // the last capability
            CAP_NR_AREAS.set(out, REGION_INFO_SIZE, areas);
            CAP_RESERVED.set(out, REGION_INFO_SIZE, 0);
            long first = REGION_INFO_SIZE + WireStructs.SPARSE_MMAP_CAP.byteSize();
            for (int i = 0; i < areas; i++) {
                RegionInfo.SparseArea a = r.sparseAreas().get(i);
                long at = first + i * WireStructs.SPARSE_AREA.byteSize();
                AREA_OFFSET.set(out, at, a.offset());
                AREA_SIZE.set(out, at, a.size());
            }
        }
        if ((r.flags() & REGION_FLAG_MMAP) != 0 && r.mmapFd() >= 0) {
            replyFd = r.mmapFd(); // exactly one fd per region; sendmsg duplicates it into the client
        }
        return full;
    }

    int irqInfo(IrqInfoRequest m, MemorySegment out) throws VfioUserError {
        if (m.index() >= layout.irqCount()) {
            throw new VfioUserError(Errno.EINVAL);
        }
        int index = (int) m.index();
        IrqInfoRequest.ARGSZ.set(out, WireStructs.IRQ_INFO.byteSize());
        IrqInfoRequest.FLAGS.set(out, layout.irqFlags(index));
        IrqInfoRequest.INDEX.set(out, index);
        IrqInfoRequest.COUNT.set(out, layout.irqVectors(index));
        return (int) WireStructs.IRQ_INFO.byteSize();
    }

    /** VFIO_USER_DEVICE_SET_IRQS with the semantics of VFIO_DEVICE_SET_IRQS (Linux vfio_pci_set_irqs_ioctl). */
    int setIrqs(SetIrqs m, ReceivedFds fds) throws VfioUserError {
        int ix = m.index();
        if (m.start() + m.count() > interrupts.vectorCount(ix) && !(m.count() == 0 && m.data() == IRQ_SET_DATA_NONE)) {
            throw new VfioUserError(Errno.EINVAL);
        }
        int s = (int) m.start();
        int c = (int) m.count();
        int action = m.action();
        switch (m.data()) {
            case IRQ_SET_DATA_NONE -> {
                if (c == 0) {
                    check(action == IRQ_SET_ACTION_TRIGGER ? interrupts.disable(ix) : 0);
                } else {
                    check(apply(ix, action, s, c));
                }
            }
            case IRQ_SET_DATA_BOOL -> {
                for (int i = 0; i < c; i++) {
                    if (m.bools().get(JAVA_BYTE, i) != 0) {
                        check(apply(ix, action, s + i, 1));
                    }
                }
            }
            default -> { // DATA_EVENTFD: one fd per vector, or none to de-assign them
                if (action == IRQ_SET_ACTION_TRIGGER) {
                    if (fds.count() == 0) {
                        check(interrupts.deassign(ix, s, c));
                    } else {
                        int[] taken = new int[c];
                        for (int i = 0; i < c; i++) {
                            taken[i] = fds.take(i);
                        }
                        check(interrupts.assign(ix, s, c, taken));
                    }
                } else if (action == IRQ_SET_ACTION_UNMASK && ix == IRQ_INTX && c <= 1) {
                    check(interrupts.setResampleFd(fds.count() == 1 ? fds.take(0) : -1));
                } else {
                    throw new VfioUserError(Errno.EINVAL);
                }
            }
        }
        return 0;
    }

    private int apply(int index, int action, int start, int count) {
        return switch (action) {
            case IRQ_SET_ACTION_TRIGGER -> interrupts.trigger(index, start, count);
            case IRQ_SET_ACTION_MASK -> interrupts.mask(index, start, count);
            default -> interrupts.unmask(index, start, count);
        };
    }

    /** VFIO_USER_REGION_READ: the reply echoes the request and carries {@code count} data bytes. */
    int regionRead(RegionAccess m, MemorySegment out) throws VfioUserError {
        checkAccess(m.region(), m.offset(), m.count());
        int count = (int) m.count();
        echo(m, out);
        try {
            if (m.region() == REGION_CONFIG) {
                config.read((int) m.offset(), configScratch, 0, count);
                MemorySegment.copy(configScratch, 0, out, JAVA_BYTE, RegionAccess.DATA, count);
            } else {
                MmioAccess.read(layout.bar((int) m.region()), m.offset(), out, RegionAccess.DATA, count);
            }
        } catch (RuntimeException e) {
            throw deviceFailure("read", m.region(), m.offset(), e);
        }
        return RegionAccess.DATA + count;
    }

    /** VFIO_USER_REGION_WRITE (the doorbell path: allocates nothing). */
    int regionWrite(RegionAccess m, MemorySegment body, MemorySegment out) throws VfioUserError {
        checkAccess(m.region(), m.offset(), m.count());
        write((int) m.region(), m.offset(), body, m.dataAt(), (int) m.count());
        echo(m, out);
        return RegionAccess.DATA;
    }

    /**
     * VFIO_USER_REGION_WRITE_MULTI. Never advertised (see {@link VfioUserServer}), but handled in case a
     * client sends it: every entry is checked before any is applied, then applied in order.
     */
    int regionWriteMulti(WriteMulti m, MemorySegment out) throws VfioUserError {
        for (int i = 0; i < m.entries(); i++) {
            checkAccess(m.region(i), m.offset(i), m.count(i));
        }
        for (int i = 0; i < m.entries(); i++) {
            write((int) m.region(i), m.offset(i), m.body(), m.dataAt(i), m.count(i));
        }
        WriteMulti.WR_CNT.set(out, m.entries());
        return (int) WireStructs.WRITE_MULTI.byteSize();
    }

    /**
     * VFIO_USER_DEVICE_RESET: a function-level reset ({@link PciDevice#reset}: config space and device
     * state). It joins the device's workers, so the eventfds are drained throughout: that wakes a worker a
     * hostile client blocked in an interrupt write, which the reset (and this session's teardown) would
     * otherwise wait for forever.
     */
    int reset() throws VfioUserError {
        try (var drain = interrupts.drainDuringReset()) {
            device.reset();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "device reset failed", e);
            throw new VfioUserError(Errno.EIO);
        }
        return 0;
    }

    private static void echo(RegionAccess m, MemorySegment out) {
        RegionAccess.OFFSET.set(out, m.offset());
        RegionAccess.REGION.set(out, m.region());
        RegionAccess.COUNT.set(out, m.count());
    }

    /** A REGION_READ/WRITE target must be an existing region and lie inside it. */
    private void checkAccess(long region, long offset, long count) throws VfioUserError {
        if (region >= layout.regionCount() || count > maxDataXferSize) {
            throw new VfioUserError(Errno.EINVAL);
        }
        long size = layout.regionSize((int) region);
        if (offset < 0 || offset > size || count > size - offset || (count == 0 && size == 0)
                || region != REGION_CONFIG && layout.bar((int) region) == null) {
            throw new VfioUserError(Errno.EINVAL);
        }
    }

    private void write(int region, long offset, MemorySegment body, long dataAt, int count) throws VfioUserError {
        try {
            if (region == REGION_CONFIG) {
                MemorySegment.copy(body, JAVA_BYTE, dataAt, configScratch, 0, count);
                config.write((int) offset, configScratch, 0, count);
            } else {
                MmioAccess.write(layout.bar(region), offset, body, dataAt, count);
            }
        } catch (RuntimeException e) {
            throw deviceFailure("write", region, offset, e);
        }
    }

    /**
     * A device access that threw: EIO to the client. Logged with its stack trace for the 1st, 2nd, 4th, 8th...
     * failure only, with the running count: a guest that found an access the device mishandles could
     * otherwise repeat it and flood the log.
     */
    private VfioUserError deviceFailure(String what, long region, long offset, RuntimeException e) {
        long n = ++deviceFailures; // one session thread
        if (Long.bitCount(n) == 1) {
            LOG.log(System.Logger.Level.WARNING, String.format("device %s of region %d at 0x%x failed (%d so far): %s",
                    what, region, offset, n, e), e);
        }
        return new VfioUserError(Errno.EIO);
    }

    private static void check(int errno) throws VfioUserError {
        if (errno != 0) {
            throw new VfioUserError(errno);
        }
    }
}
