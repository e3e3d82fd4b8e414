package io.javadevices.nvme.spec;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;

/** A fixed-length byte field of an NVMe structure (a string or an identifier), at a byte offset. */
public record Bytes(String name, long offset, long length) {

    /** {@code value}, cut to the field's length, then {@code pad} up to its end. */
    public void put(MemorySegment data, byte[] value, byte pad) {
        for (int i = 0; i < length; i++) {
            data.set(ValueLayout.JAVA_BYTE, offset + i, i < value.length ? value[i] : pad);
        }
    }

    /** An ASCII string, left-justified and padded with spaces (NVMe 1.4 §1.5, "ASCII string" fields: SN, MN, FR). */
    public void ascii(MemorySegment data, String text) {
        put(data, text.getBytes(StandardCharsets.US_ASCII), (byte) ' ');
    }
}
