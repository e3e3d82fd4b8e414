package io.javadevices.nvme.spec;

import io.javadevices.pci.LittleEndian;

import java.lang.foreign.MemorySegment;

/** A little-endian 64-bit field of an NVMe structure. {@code base} is where the structure starts, when not at 0. */
public record U64(String name, long offset) {
    public void set(MemorySegment data, long value) {
        data.set(LittleEndian.LONG, offset, value);
    }

    public void set(MemorySegment data, long base, long value) {
        data.set(LittleEndian.LONG, base + offset, value);
    }

    public long get(MemorySegment data) {
        return data.get(LittleEndian.LONG, offset);
    }
}
