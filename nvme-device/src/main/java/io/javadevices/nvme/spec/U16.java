package io.javadevices.nvme.spec;

import io.javadevices.pci.LittleEndian;

import java.lang.foreign.MemorySegment;

/** A little-endian 16-bit field of an NVMe structure. {@code base} is where the structure starts, when not at 0. */
public record U16(String name, long offset) {
    public void set(MemorySegment data, short value) {
        data.set(LittleEndian.SHORT, offset, value);
    }

    public void set(MemorySegment data, long base, short value) {
        data.set(LittleEndian.SHORT, base + offset, value);
    }

    public int get(MemorySegment data) {
        return data.get(LittleEndian.SHORT, offset) & 0xFFFF;
    }
}
