package io.javadevices.nvme.spec;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** A one-byte field of an NVMe structure. {@code base} is where the structure starts, when it is not at 0. */
public record U8(String name, long offset) {
    public void set(MemorySegment data, byte value) {
        data.set(ValueLayout.JAVA_BYTE, offset, value);
    }

    public void set(MemorySegment data, long base, byte value) {
        data.set(ValueLayout.JAVA_BYTE, base + offset, value);
    }

    public int get(MemorySegment data) {
        return data.get(ValueLayout.JAVA_BYTE, offset) & 0xFF;
    }
}
