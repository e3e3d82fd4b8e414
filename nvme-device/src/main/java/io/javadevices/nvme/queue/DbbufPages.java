package io.javadevices.nvme.queue;

/** The two pages of Doorbell Buffer Config (NVMe 1.3 §5.7): PRP1 = shadow doorbells, PRP2 = EventIdx. */
public record DbbufPages(long shadow, long eventIdx) {
}
