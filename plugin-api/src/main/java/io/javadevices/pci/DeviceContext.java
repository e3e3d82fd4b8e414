package io.javadevices.pci;

import java.util.Objects;

/**
 * What a host gives a device when it creates it: guest memory for DMA, an interrupt sink and, where
 * the host can map BAR memory into the guest, {@link DirectBarMemory}. The same context lives as long as
 * the device; the host changes the memory map in place (see {@link GuestMemory#map}) and re-points
 * interrupts inside its sink, so devices never need a new one.
 *
 * @param memory     guest-physical memory for DMA
 * @param interrupts interrupt delivery
 * @param barMemory  BAR windows the guest accesses directly ({@link DirectBarMemory#NONE} if unsupported)
 * @param workers    the host's shared queue-polling threads, or null: the device makes its own
 */
public record DeviceContext(GuestMemory memory, InterruptSink interrupts, DirectBarMemory barMemory,
                            WorkerPool workers) {
    public DeviceContext {
        Objects.requireNonNull(memory, "memory");
        Objects.requireNonNull(interrupts, "interrupts");
        Objects.requireNonNull(barMemory, "barMemory");
    }

    /** A context without a shared worker pool. */
    public DeviceContext(GuestMemory memory, InterruptSink interrupts, DirectBarMemory barMemory) {
        this(memory, interrupts, barMemory, null);
    }

    /** A context for a host without directly mapped BAR memory. */
    public DeviceContext(GuestMemory memory, InterruptSink interrupts) {
        this(memory, interrupts, DirectBarMemory.NONE);
    }
}
