package io.javadevices.nvme.spec;

import io.javadevices.pci.LittleEndian;

import java.lang.foreign.MemorySegment;

/** A little-endian 32-bit field of an NVMe structure. {@code base} is where the structure starts, when not at 0. */
public record U32(String name, long offset) {
    public void set(MemorySegment data, int value) {
        data.set(LittleEndian.INT, offset, value);
    }

    public void set(MemorySegment data, long base, int value) {
        data.set(LittleEndian.INT, base + offset, value);
    }

    public int get(MemorySegment data) {
        return data.get(LittleEndian.INT, offset);
    }
}
