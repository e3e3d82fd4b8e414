package io.javadevices.vfiouser.device;

import io.javadevices.pci.Bar;
import io.javadevices.pci.ConfigSpace;
import io.javadevices.vfiouser.irq.EventfdInterrupts;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.IRQ_ERR;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.IRQ_INFO_AUTOMASKED;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.IRQ_INFO_EVENTFD;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.IRQ_INFO_MASKABLE;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.IRQ_INTX;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.IRQ_MSIX;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.IRQ_REQ;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.NUM_IRQS;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.NUM_REGIONS;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.REGION_CONFIG;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.REGION_FLAG_READ;
import static io.javadevices.vfiouser.protocol.VfioUserProtocol.REGION_FLAG_WRITE;

/**
 * The device as the client sees it: the 9 PCI regions and 5 IRQ indices, derived once from the device's
 * {@link ConfigSpace} when the server starts (BARs are immutable). Answers DEVICE_GET_REGION_INFO and
 * DEVICE_GET_IRQ_INFO and gives the region-access path an array lookup from region index to {@link Bar}.
 *
 * <p>IRQ flags (decision recorded here; QEMU vfio_msix_enable / vfio_msix_vector_do_use): MSI-X is reported as EVENTFD
 * <em>without</em> NORESIZE. Without NORESIZE QEMU enables MSI-X with no vectors and then sends one
 * SET_IRQS per vector as the guest starts using it ({@code vfio_msix_vector_do_use}); with NORESIZE it
 * would disable the whole index and resend the full array whenever the vector count grows, a window in
 * which completions of already-running queues lose their interrupts. The server supports arbitrary
 * start/count updates, so the dynamic mode is the better fit (libvfio-user reports the same flags).
 * INTx is EVENTFD|MASKABLE|AUTOMASKED like vfio-pci; ERR and REQ have one eventfd vector each (never
 * signalled today); MSI is not offered (count 0).
 *
 * <p>Immutable and thread-safe.
 */
public final class DeviceLayout {
    private final Bar[] bars = new Bar[6];
    private final RegionInfo[] regions = new RegionInfo[NUM_REGIONS];
    private final int[] irqFlags = new int[NUM_IRQS];
    private final int[] irqCounts = new int[NUM_IRQS];
    private final int configSize;

    /** @param windows the BAR windows the device asked for while it was created (reported as sparse mmaps) */
    public DeviceLayout(ConfigSpace config, EventfdInterrupts interrupts, MemfdBarWindows windows) {
        for (int i = 0; i < NUM_REGIONS; i++) {
            regions[i] = RegionInfo.absent(i);
        }
        for (int i = 0; i < 6; i++) {
            Bar bar = config.bar(i);
            bars[i] = bar;
            if (bar != null) {
                regions[i] = windows.regionInfo(RegionInfo.trapped(i, REGION_FLAG_READ | REGION_FLAG_WRITE, bar.size()));
            }
        }
        // Index 6 (ROM) and 8 (VGA) stay absent: size 0 makes QEMU skip the ROM (vfio_pci_size_rom).
        configSize = config.size();
        regions[REGION_CONFIG] = RegionInfo.trapped(REGION_CONFIG, REGION_FLAG_READ | REGION_FLAG_WRITE, configSize);
        for (int i = 0; i < NUM_IRQS; i++) {
            irqCounts[i] = interrupts.vectorCount(i);
            if (irqCounts[i] > 0) {
                irqFlags[i] = IRQ_INFO_EVENTFD;
            }
        }
        if (irqCounts[IRQ_INTX] > 0) {
            irqFlags[IRQ_INTX] |= IRQ_INFO_MASKABLE | IRQ_INFO_AUTOMASKED;
        }
        irqFlags[IRQ_MSIX] = irqCounts[IRQ_MSIX] > 0 ? IRQ_INFO_EVENTFD : 0;
        irqFlags[IRQ_ERR] = IRQ_INFO_EVENTFD;
        irqFlags[IRQ_REQ] = IRQ_INFO_EVENTFD;
    }

    /** The BAR behind region {@code index}, or null (absent BAR, upper half of a 64-bit BAR, not a BAR). */
    public Bar bar(int index) {
        return index >= 0 && index < 6 ? bars[index] : null;
    }

    /** Region info for {@code index}, or null if the index is not below {@link #regionCount()}. */
    public RegionInfo region(int index) {
        return index >= 0 && index < NUM_REGIONS ? regions[index] : null;
    }

    /** Size of region {@code index} (0 if absent or invalid). */
    public long regionSize(int index) {
        RegionInfo r = region(index);
        return r == null ? 0 : r.size();
    }

    public int regionCount() {
        return NUM_REGIONS;
    }

    public int irqCount() {
        return NUM_IRQS;
    }

    /** Config space size (256 or 4096). */
    public int configSize() {
        return configSize;
    }

    /** DEVICE_GET_IRQ_INFO flags of an index. */
    public int irqFlags(int index) {
        return irqFlags[index];
    }

    /** Vector count of an IRQ index. */
    public int irqVectors(int index) {
        return irqCounts[index];
    }
}
