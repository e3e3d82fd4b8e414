package io.javadevices.nvme.regs;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The BAR0 register table on its own: masks, widths, sub-dword merges and where writes go. */
class Bar0RegistersTest {
    private static final long CAP = 0x0040_0000_2001_00FFL;

    /** Records what the registers hand to the controller. */
    private static final class Recorder implements Bar0Registers.Listener {
        final List<String> events = new ArrayList<>();
        int mask;
        int csts = 0x1;

        @Override
        public void controllerConfiguration(int old, int value) {
            events.add("cc " + Integer.toHexString(old) + "->" + Integer.toHexString(value));
        }

        @Override
        public int controllerStatus() {
            return csts;
        }

        @Override
        public int interruptMask() {
            return mask;
        }

        @Override
        public void interruptMaskSet(int bits) {
            mask |= bits;
            events.add("intms " + Integer.toHexString(bits));
        }

        @Override
        public void interruptMaskClear(int bits) {
            mask &= ~bits;
            events.add("intmc " + Integer.toHexString(bits));
        }

        @Override
        public void doorbell(long offset, int value) {
            events.add("db " + Long.toHexString(offset) + "=" + value);
        }
    }

    private final Recorder listener = new Recorder();
    private final Bar0Registers regs = new Bar0Registers(CAP, new Object(), listener);

    @Test
    void readOnlyRegistersIgnoreWrites() {
        regs.write(Bar0Registers.CAP, 8, -1L);
        regs.write(Bar0Registers.VS, 4, 0);
        regs.write(Bar0Registers.CSTS, 4, 0);
        assertEquals(CAP, regs.read(Bar0Registers.CAP, 8));
        assertEquals(0x0001_0400, regs.read(Bar0Registers.VS, 4));
        assertEquals(1, regs.read(Bar0Registers.CSTS, 4), "CSTS is read through the controller");
        assertTrue(listener.events.isEmpty(), listener.events.toString());
    }

    @Test
    void writableMasksApply() {
        regs.write(Bar0Registers.AQA, 4, 0xFFFF_FFFFL);
        assertEquals(0x0FFF_0FFF, regs.read(Bar0Registers.AQA, 4));
        regs.write(Bar0Registers.ASQ, 8, 0x1234_5678_9ABC_DEFFL);
        assertEquals(0x1234_5678_9ABC_D000L, regs.read(Bar0Registers.ASQ, 8), "ASQ is page aligned");
        regs.write(Bar0Registers.ACQ + 4, 4, 0xAAAA_BBBBL);
        regs.write(Bar0Registers.ACQ, 4, 0x0000_1FFFL);
        assertEquals(0xAAAA_BBBB_0000_1000L, regs.value(Bar0Registers.ACQ), "dword halves of a 64-bit register");
    }

    @Test
    void subDwordWritesMergeIntoTheRegister() {
        regs.write(Bar0Registers.AQA, 4, 0x001F_001FL);
        regs.write(Bar0Registers.AQA + 2, 2, 0x003F);
        assertEquals(0x003F_001F, regs.read(Bar0Registers.AQA, 4));
        assertEquals(0x3F, regs.read(Bar0Registers.AQA + 2, 1));
    }

    @Test
    void ccWritesGoToTheListenerWithOldAndNewValue() {
        regs.write(Bar0Registers.CC, 4, 0x0046_0001L);
        regs.write(Bar0Registers.CC, 1, 0x00);
        assertEquals(List.of("cc 0->460001", "cc 460001->460000"), listener.events);
        assertEquals(0x0046_0000, regs.read(Bar0Registers.CC, 4));
    }

    @Test
    void interruptMaskSetAndClearAreDwordOnly() {
        regs.write(Bar0Registers.INTMS, 4, 1);
        regs.write(Bar0Registers.INTMC, 2, 1); // sub-dword: would clear bits the host did not address
        assertEquals(1, regs.read(Bar0Registers.INTMC, 4));
        regs.write(Bar0Registers.INTMC, 4, 1);
        assertEquals(0, regs.read(Bar0Registers.INTMS, 4));
        assertEquals(List.of("intms 1", "intmc 1"), listener.events);
    }

    @Test
    void doorbellsAreWriteOnlyDwords() {
        regs.write(Bar0Registers.DOORBELL_BASE, 4, 5);
        regs.write(Bar0Registers.DOORBELL_BASE + 8, 8, 7L | 3L << 32);
        regs.write(Bar0Registers.DOORBELL_BASE + 4, 2, 9); // not a doorbell value
        assertEquals(List.of("db 1000=5", "db 1008=7", "db 100c=3"), listener.events);
        assertEquals(0, regs.read(Bar0Registers.DOORBELL_BASE, 4));
    }

    @Test
    void reservedOffsetsReadZeroAndResetRestoresResetValues() {
        regs.write(0x38, 4, -1L); // CMBLOC: no controller memory buffer
        assertEquals(0, regs.read(0x38, 4));
        regs.write(Bar0Registers.CC, 4, 1);
        regs.write(Bar0Registers.AQA, 4, 0x001F_001FL);
        regs.reset();
        assertEquals(0, regs.read(Bar0Registers.CC, 4));
        assertEquals(0, regs.read(Bar0Registers.AQA, 4));
        assertEquals(CAP, regs.read(Bar0Registers.CAP, 8));
    }
}
