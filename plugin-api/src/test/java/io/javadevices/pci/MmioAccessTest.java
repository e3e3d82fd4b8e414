package io.javadevices.pci;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class MmioAccessTest {
    @Test
    void splitsIntoNaturallyAlignedAccesses() {
        List<String> calls = new ArrayList<>();
        Bar bar = Bar.memory32(0, 4096, new MmioHandler() {
            @Override
            public long read(long offset, int size) {
                calls.add("r" + offset + "/" + size);
                return 0x0807060504030201L >>> (8 * (offset & 7));
            }

            @Override
            public void write(long offset, int size, long value) {
                calls.add("w" + offset + "/" + size + "=" + Long.toHexString(value));
            }
        });
        MemorySegment buf = MemorySegment.ofArray(new byte[16]);
        MmioAccess.read(bar, 0x101, buf, 0, 11);
        assertEquals(List.of("r257/1", "r258/2", "r260/4", "r264/4"), calls);
        calls.clear();
        MemorySegment src = MemorySegment.ofArray(new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
        MmioAccess.write(bar, 0x1000 - 8, src, 0, 8);
        assertEquals(List.of("w4088/8=807060504030201"), calls);
        assertThrows(IllegalArgumentException.class, () -> MmioAccess.read(bar, 4090, buf, 0, 8));
        assertThrows(IllegalArgumentException.class, () -> MmioAccess.write(bar, -1, buf, 0, 1));
        assertFalse(MmioAccess.inside(bar, Long.MAX_VALUE, 8));
    }
}
