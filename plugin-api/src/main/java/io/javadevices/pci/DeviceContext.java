package io.javadevices.pci;

import java.util.Objects;

/**
 * What a host gives a device when it creates it: guest memory for DMA and an interrupt sink. The same
 * context lives as long as the device; the host changes the memory map in place (see
 * {@link GuestMemory#map}) and re-points interrupts inside its sink, so devices never need a new one.
 *
 * @param memory     guest-physical memory for DMA
 * @param interrupts interrupt delivery
 */
public record DeviceContext(GuestMemory memory, InterruptSink interrupts) {
    public DeviceContext {
        Objects.requireNonNull(memory, "memory");
        Objects.requireNonNull(interrupts, "interrupts");
    }
}
