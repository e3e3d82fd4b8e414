package io.javadevices.pci;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class LittleEndianTest {

    @Test
    void storesLeastSignificantByteFirstAtAnyOffset() {
        byte[] bytes = new byte[16];
        MemorySegment s = MemorySegment.ofArray(bytes);
        s.set(LittleEndian.SHORT, 1, (short) 0x0102);
        s.set(LittleEndian.INT, 3, 0x0304_0506);
        s.set(LittleEndian.LONG, 7, 0x0708_090A_0B0C_0D0EL);
        assertArrayEquals(new byte[] {0, 0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0E, 0x0D, 0x0C, 0x0B, 0x0A, 0x09, 0x08,
                0x07, 0}, bytes);
    }

    @Test
    void alignedIntHasTheSameByteOrder() {
        MemorySegment s = MemorySegment.ofArray(new long[1]); // long[]: 8-byte aligned, as aligned access needs
        s.set(LittleEndian.INT_ALIGNED, 4, 0x1122_3344);
        assertEquals(0x44, s.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 4));
        assertEquals(0x1122_3344, s.get(LittleEndian.INT, 4));
        assertEquals(4, LittleEndian.INT_ALIGNED.byteAlignment());
        assertEquals(1, LittleEndian.INT.byteAlignment());
    }
}
