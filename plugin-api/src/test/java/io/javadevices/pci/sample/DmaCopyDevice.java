package io.javadevices.pci.sample;

import io.javadevices.pci.Bar;
import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.GuestMemoryException;
import io.javadevices.pci.MmioHandler;
import io.javadevices.pci.MsixTable;
import io.javadevices.pci.PciDevice;

import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A tiny sample device that shows the whole plugin API in about a hundred lines: a few registers in
 * BAR0, one DMA (copy LEN bytes from SRC to DST in guest memory) done by a worker thread, and an MSI-X
 * interrupt when it finishes. Used by the test host's own tests and as a template for new devices.
 *
 * <pre>
 * BAR0 (4 KiB, 32-bit memory)            BAR2 (4 KiB): MSI-X table at 0, PBA at 0x800
 *   0x00 ID       RO  0x5A4D0001
 *   0x08 SRC      RW  64-bit guest address
 *   0x10 DST      RW  64-bit guest address
 *   0x18 LEN      RW  bytes to copy (at most 1 MiB)
 *   0x1C DOORBELL WO  write 1: start the copy
 *   0x20 STATUS   RO  0 idle, 1 busy, 2 done, 3 DMA error
 *   0x24 SCRATCH  RW
 * </pre>
 */
public final class DmaCopyDevice implements PciDevice {
    public static final int ID = 0x5A4D0001;
    public static final int REG_ID = 0x00, REG_SRC = 0x08, REG_DST = 0x10, REG_LEN = 0x18, REG_DOORBELL = 0x1C,
            REG_STATUS = 0x20, REG_SCRATCH = 0x24;
    public static final int STATUS_IDLE = 0, STATUS_BUSY = 1, STATUS_DONE = 2, STATUS_ERROR = 3;
    public static final int MAX_LEN = 1 << 20;

    private final DeviceContext context;
    private final MsixTable msix = new MsixTable(2);
    private final ConfigSpace config;
    private final BlockingQueue<long[]> work = new ArrayBlockingQueue<>(1);
    private final Thread worker;
    private final AtomicLong copies = new AtomicLong();
    private volatile long src, dst;
    private volatile int len, scratch;
    private volatile int status = STATUS_IDLE;

    public DmaCopyDevice(DeviceContext context) {
        this.context = context;
        this.config = ConfigSpace.builder()
                .vendorId(0x4E58).deviceId(0x0001).subsystemVendorId(0x4E58).subsystemId(0x0001)
                .classCode(0xFF, 0x00, 0x00)
                .bar(Bar.memory32(0, 4096, new Registers()))
                .bar(Bar.memory32(2, 4096, msix.asBarHandler(0, 0x800)))
                .msix(2, 2, 0, 2, 0x800)
                .pciExpress()
                .powerManagement()
                .build();
        config.addFunctionLevelResetListener(this::resetState); // the config space has reset itself
        this.worker = Thread.ofPlatform().daemon().name("dma-copy").start(this::run);
    }

    public MsixTable msixTable() {
        return msix;
    }

    @Override
    public ConfigSpace config() {
        return config;
    }

    private final class Registers implements MmioHandler {
        @Override
        public long read(long offset, int size) {
            long v = switch ((int) offset) {
                case REG_ID -> ID & 0xFFFF_FFFFL;
                case REG_SRC -> src;
                case REG_DST -> dst;
                case REG_LEN -> len;
                case REG_STATUS -> status;
                case REG_SCRATCH -> scratch & 0xFFFF_FFFFL;
                default -> 0;
            };
            return size == 8 ? v : v & ((1L << (8 * size)) - 1);
        }

        @Override
        public void write(long offset, int size, long value) {
            switch ((int) offset) {
                case REG_SRC -> src = size == 8 ? value : (src & ~0xFFFF_FFFFL) | (value & 0xFFFF_FFFFL);
                case REG_SRC + 4 -> src = (src & 0xFFFF_FFFFL) | (value << 32);
                case REG_DST -> dst = size == 8 ? value : (dst & ~0xFFFF_FFFFL) | (value & 0xFFFF_FFFFL);
                case REG_DST + 4 -> dst = (dst & 0xFFFF_FFFFL) | (value << 32);
                case REG_LEN -> len = (int) value;
                case REG_SCRATCH -> scratch = (int) value;
                case REG_DOORBELL -> {
                    // Return at once: the worker does the DMA. A second doorbell while busy is ignored.
                    // BUSY is set before the hand-off, or a fast worker's DONE could be overwritten.
                    if ((value & 1) != 0 && status != STATUS_BUSY) {
                        status = STATUS_BUSY;
                        work.offer(new long[] {src, dst, len});
                    }
                }
                default -> {
                }
            }
        }
    }

    private void run() {
        try {
            while (true) {
                long[] job = work.take();
                status = copy(job[0], job[1], job[2]) ? STATUS_DONE : STATUS_ERROR;
                copies.incrementAndGet();
                context.interrupts().signalMsix(0);
            }
        } catch (InterruptedException closed) {
            Thread.currentThread().interrupt();
        }
    }

    private boolean copy(long from, long to, long length) {
        if (length < 0 || length > MAX_LEN || !config.isBusMasterEnabled()) {
            return false;
        }
        byte[] buffer = new byte[(int) length];
        try {
            context.memory().read(from, buffer, 0, buffer.length);
            context.memory().write(to, buffer, 0, buffer.length);
            return true;
        } catch (GuestMemoryException e) {
            return false;
        }
    }

    /** {@link PciDevice#reset}: the config space too, as the contract says, then the device state. */
    @Override
    public void reset() {
        config.reset();
        resetState();
    }

    private void resetState() {
        work.clear();
        src = 0;
        dst = 0;
        len = 0;
        scratch = 0;
        status = STATUS_IDLE;
        msix.reset();
    }

    @Override
    public Map<String, Long> statistics() {
        return Map.of("copies", copies.get());
    }

    @Override
    public void close() {
        worker.interrupt();
    }
}
