package io.javadevices.pci;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class MsixTableTest {
    @Test
    void entriesStartMaskedAndTakeGuestWrites() {
        MsixTable t = new MsixTable(4);
        MmioHandler bar = t.asBarHandler(0, 0x800);
        for (int v = 0; v < 4; v++) {
            assertTrue(t.isMasked(v));
        }
        bar.write(16, 4, 0xFEE0_0000L);
        bar.write(20, 4, 0);
        bar.write(24, 4, 0x4041);
        bar.write(28, 4, 0);
        assertEquals(0xFEE0_0000L, t.messageAddress(1));
        assertEquals(0x4041, t.messageData(1));
        assertFalse(t.isMasked(1));
        assertEquals(0x4041L, bar.read(24, 4));
        bar.write(32, 8, 0xFEE0_1000L);
        assertEquals(0xFEE0_1000L, bar.read(32, 8));
    }

    @Test
    void pbaIsReadOnlyAndReflectsPendingBits() {
        MsixTable t = new MsixTable(70);
        MmioHandler bar = t.asBarHandler(0, 0x800);
        t.setPending(3, true);
        t.setPending(65, true);
        assertEquals(1L << 3, bar.read(0x800, 8));
        assertEquals(1L << 1, bar.read(0x808, 8));
        bar.write(0x800, 8, 0);
        assertTrue(t.isPending(3));
        t.setPending(3, false);
        assertEquals(0, bar.read(0x800, 8));
    }

    @Test
    void hostileOffsetsAreIgnored() {
        MsixTable t = new MsixTable(2);
        MmioHandler table = t.tableHandler();
        table.write(1 << 20, 4, 1);
        table.write(-8, 4, 1);
        table.write(6, 4, 1); // straddles two 8-byte words
        assertEquals(0, table.read(1 << 20, 4));
        assertEquals(0, table.read(30, 4));
        assertThrows(IllegalArgumentException.class, () -> new MsixTable(0));
    }
}
