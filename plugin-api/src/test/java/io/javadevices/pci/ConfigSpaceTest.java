package io.javadevices.pci;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

class ConfigSpaceTest {

    private static ConfigSpace nvmeLike() {
        return ConfigSpace.builder()
                .vendorId(0x4E58).deviceId(0x4A56).subsystemVendorId(0x1111).subsystemId(0x2222).revision(3)
                .classCode(0x01, 0x08, 0x02)
                .interruptPin(1)
                .bar(Bar.memory64(0, 16 * 1024, MmioHandler.ZERO))
                .bar(Bar.memory32(4, 8192, MmioHandler.ZERO))
                .bar(Bar.io(5, 32, MmioHandler.ZERO))
                .powerManagement()
                .msix(9, 4, 0, 4, 0x1000)
                .pciExpress()
                .build();
    }

    @Test
    void identityFieldsReadBackLittleEndian() {
        ConfigSpace c = nvmeLike();
        assertEquals(0x4A564E58, c.read(0, 4));
        assertEquals(0x4E58, c.read(ConfigSpace.VENDOR_ID, 2));
        assertEquals(0x58, c.read(0, 1));
        assertEquals(0x010802, c.read(ConfigSpace.REVISION_ID, 4) >>> 8);
        assertEquals(3, c.read(ConfigSpace.REVISION_ID, 1));
        assertEquals(0x1111, c.read(ConfigSpace.SUBSYSTEM_VENDOR_ID, 2));
        assertEquals(0x2222, c.read(ConfigSpace.SUBSYSTEM_ID, 2));
        assertEquals(1, c.read(ConfigSpace.INTERRUPT_PIN, 1));
        assertEquals(0, c.read(ConfigSpace.HEADER_TYPE, 1));
        assertEquals(4096, c.size(), "a PCIe capability makes config space 4 KiB");
    }

    @Test
    void readOnlyFieldsIgnoreWrites() {
        ConfigSpace c = nvmeLike();
        c.write(0, 4, 0xFFFF_FFFF);
        c.write(ConfigSpace.REVISION_ID, 4, 0);
        c.write(ConfigSpace.SUBSYSTEM_VENDOR_ID, 4, 0);
        c.write(ConfigSpace.INTERRUPT_PIN, 1, 4);
        c.write(ConfigSpace.CAPABILITIES_POINTER, 1, 0x80);
        c.write(ConfigSpace.EXPANSION_ROM, 4, 0xFFFF_F800);
        assertEquals(0x4A564E58, c.read(0, 4));
        assertEquals(0x01080203, c.read(ConfigSpace.REVISION_ID, 4));
        assertEquals(1, c.read(ConfigSpace.INTERRUPT_PIN, 1));
        assertEquals(0x40, c.read(ConfigSpace.CAPABILITIES_POINTER, 1));
        assertEquals(0, c.read(ConfigSpace.EXPANSION_ROM, 4), "no ROM: sizing reads back 0");
        // Interrupt line is writable scratch for the OS.
        c.write(ConfigSpace.INTERRUPT_LINE, 1, 11);
        assertEquals(11, c.read(ConfigSpace.INTERRUPT_LINE, 1));
    }

    @Test
    void commandRegisterOnlyTakesDefinedBits() {
        ConfigSpace c = nvmeLike();
        c.write(ConfigSpace.COMMAND, 2, 0xFFFF);
        assertEquals(0x0547, c.read(ConfigSpace.COMMAND, 2));
        assertTrue(c.isBusMasterEnabled());
        assertTrue(c.isMemorySpaceEnabled());
        assertTrue(c.isIntxDisabled());
        c.write(ConfigSpace.COMMAND, 2, ConfigSpace.COMMAND_MEMORY);
        assertFalse(c.isBusMasterEnabled());
    }

    @Test
    void statusErrorBitsAreWriteOneToClearAndCapListIsReadOnly() {
        ConfigSpace c = nvmeLike();
        int status = c.read(ConfigSpace.STATUS, 2);
        assertEquals(ConfigSpace.STATUS_CAPABILITIES_LIST, status & ConfigSpace.STATUS_CAPABILITIES_LIST);
        c.write(ConfigSpace.STATUS, 2, 0xFFFF); // writing ones clears error bits, cannot set anything
        assertEquals(status, c.read(ConfigSpace.STATUS, 2));
    }

    @Test
    void barSizingReturnsSizeMaskAndKeepsTypeBits() {
        ConfigSpace c = nvmeLike();
        // 64-bit memory BAR0 of 16 KiB
        assertEquals(0x4, c.read(ConfigSpace.BAR0, 4));
        c.write(ConfigSpace.BAR0, 4, 0xFFFF_FFFF);
        c.write(ConfigSpace.BAR0 + 4, 4, 0xFFFF_FFFF);
        assertEquals(0xFFFF_C004, c.read(ConfigSpace.BAR0, 4));
        assertEquals(0xFFFF_FFFF, c.read(ConfigSpace.BAR0 + 4, 4));
        c.write(ConfigSpace.BAR0, 4, 0xFEBF_1234);
        c.write(ConfigSpace.BAR0 + 4, 4, 0x0000_0001);
        assertEquals(0xFEBF_0004, c.read(ConfigSpace.BAR0, 4), "low bits below the size are read-only");
        assertEquals(0x1_FEBF_0000L, c.barAddress(0));
        // 32-bit memory BAR4 of 8 KiB
        c.write(ConfigSpace.BAR0 + 16, 4, 0xFFFF_FFFF);
        assertEquals(0xFFFF_E000, c.read(ConfigSpace.BAR0 + 16, 4));
        // I/O BAR5 of 32 bytes: bit 0 set, bit 1 reserved
        c.write(ConfigSpace.BAR0 + 20, 4, 0xFFFF_FFFF);
        assertEquals(0xFFFF_FFE1, c.read(ConfigSpace.BAR0 + 20, 4));
        // Unused BARs read 0 and stay 0.
        c.write(ConfigSpace.BAR0 + 8, 4, 0xFFFF_FFFF);
        assertEquals(0, c.read(ConfigSpace.BAR0 + 8, 4));
        assertNull(c.bar(1), "the upper half of a 64-bit BAR is not a BAR");
        assertEquals(3, c.bars().size());
    }

    @Test
    void capabilityChainIsWalkableAndWellFormed() {
        ConfigSpace c = nvmeLike();
        List<Integer> caps = c.capabilityOffsets();
        assertEquals(3, caps.size());
        List<Integer> ids = new ArrayList<>();
        for (int off : caps) {
            assertEquals(0, off & 3, "capabilities are dword aligned");
            assertTrue(off >= 0x40 && off < 0x100);
            ids.add(c.read(off, 1));
        }
        assertEquals(List.of(ConfigSpace.CAP_ID_POWER_MANAGEMENT, ConfigSpace.CAP_ID_MSIX, ConfigSpace.CAP_ID_PCI_EXPRESS), ids);
        assertEquals(0, c.read(caps.get(2) + 1, 1), "last capability ends the chain");
        assertEquals(c.powerManagementCapabilityOffset(), caps.get(0));
        assertEquals(c.msixCapabilityOffset(), caps.get(1));
        assertEquals(c.pciExpressCapabilityOffset(), caps.get(2));
        assertEquals(0, c.read(0x100, 4), "empty extended capability list");
    }

    @Test
    void msixCapabilityFields() {
        ConfigSpace c = nvmeLike();
        int cap = c.msixCapabilityOffset();
        assertEquals(8, c.read(cap + 2, 2) & 0x7FF, "table size is N-1");
        assertEquals(9, c.msixVectorCount());
        assertEquals(4, c.read(cap + 4, 4) & 7, "table BIR");
        assertEquals(0, c.read(cap + 4, 4) & ~7);
        assertEquals(4, c.read(cap + 8, 4) & 7, "PBA BIR");
        assertEquals(0x1000, c.read(cap + 8, 4) & ~7);
        // Table size, BIRs and offsets are read-only; enable and function mask are writable.
        c.write(cap + 2, 2, 0xFFFF);
        c.write(cap + 4, 4, 0);
        assertEquals(0xC008, c.read(cap + 2, 2));
        assertEquals(4, c.read(cap + 4, 4));
        assertTrue(c.isMsixEnabled());
        assertTrue(c.isMsixFunctionMasked());
        c.write(cap + 3, 1, 0x80); // byte write of the high half: enable only
        assertTrue(c.isMsixEnabled());
        assertFalse(c.isMsixFunctionMasked());
    }

    @Test
    void straddlingAndUnalignedWritesFollowPerByteMasks() {
        ConfigSpace c = nvmeLike();
        // A 4-byte write at 0x03 covers device-ID high byte (RO), command (RW) low byte... use raw bytes.
        c.write(ConfigSpace.COMMAND - 1, new byte[] {(byte) 0xAA, 0x07, 0x00, (byte) 0xFF}, 0, 4);
        assertEquals(0x4A, c.read(ConfigSpace.DEVICE_ID + 1, 1));
        assertEquals(0x07, c.read(ConfigSpace.COMMAND, 2));
        byte[] all = new byte[c.size()];
        c.read(0, all, 0, all.length);
        assertEquals(0x58, all[0] & 0xFF);
        assertEquals(0x07, all[ConfigSpace.COMMAND]);
    }

    @Test
    void hostileAccessesAreRejectedNotCrashing() {
        ConfigSpace c = nvmeLike();
        assertThrows(IllegalArgumentException.class, () -> c.write(4095, 4, 0));
        assertThrows(IllegalArgumentException.class, () -> c.write(-1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> c.write(0, 3, 0));
        assertThrows(IllegalArgumentException.class, () -> c.read(0, 8));
        assertThrows(IllegalArgumentException.class, () -> c.read(0, new byte[8192], 0, 8192));
        assertThrows(IllegalArgumentException.class, () -> c.write(Integer.MAX_VALUE, new byte[4], 0, 4));
        assertEquals(0, c.read(4094, 4) >>> 16, "bytes past the end read as zero");
    }

    @Test
    void listenersAndFunctionLevelReset() {
        ConfigSpace c = nvmeLike();
        AtomicInteger writes = new AtomicInteger();
        AtomicInteger resets = new AtomicInteger();
        c.addWriteListener((off, len) -> writes.incrementAndGet());
        c.addFunctionLevelResetListener(resets::incrementAndGet);
        c.write(ConfigSpace.COMMAND, 2, ConfigSpace.COMMAND_BUS_MASTER);
        c.write(ConfigSpace.BAR0, 4, 0xFEBF_0000);
        assertEquals(2, writes.get());
        int devctl = c.pciExpressCapabilityOffset() + 8;
        c.write(devctl, 2, 0x8000 | c.read(devctl, 2));
        assertEquals(1, resets.get());
        assertEquals(0, c.read(devctl, 2) & 0x8000, "Initiate FLR reads as 0");
        assertFalse(c.isBusMasterEnabled(), "FLR resets config space");
        assertEquals(0x4, c.read(ConfigSpace.BAR0, 4));
    }

    @Test
    void resetRestoresInitialValues() {
        ConfigSpace c = nvmeLike();
        c.write(ConfigSpace.COMMAND, 2, 0x7);
        c.write(c.msixCapabilityOffset() + 2, 2, 0x8000);
        c.reset();
        assertEquals(0, c.read(ConfigSpace.COMMAND, 2));
        assertFalse(c.isMsixEnabled());
    }

    @Test
    void builderRejectsInvalidLayouts() {
        assertThrows(IllegalArgumentException.class, () -> Bar.memory32(0, 3000, MmioHandler.ZERO));
        assertThrows(IllegalArgumentException.class, () -> Bar.memory64(5, 4096, MmioHandler.ZERO));
        assertThrows(IllegalArgumentException.class, () -> Bar.io(0, 4096, MmioHandler.ZERO));
        assertThrows(IllegalArgumentException.class, () -> ConfigSpace.builder()
                .bar(Bar.memory64(0, 4096, MmioHandler.ZERO)).bar(Bar.memory32(1, 4096, MmioHandler.ZERO)));
        assertThrows(IllegalArgumentException.class, () -> ConfigSpace.builder()
                .bar(Bar.memory32(2, 4096, MmioHandler.ZERO)).msix(512, 2, 0, 2, 0x800),
                "a 512-vector table does not fit in 4 KiB");
        assertThrows(IllegalArgumentException.class, () -> ConfigSpace.builder().msix(4, 3, 0, 3, 0x800),
                "the MSI-X BAR must exist");
        assertThrows(IllegalArgumentException.class, () -> ConfigSpace.builder().interruptPin(5));
    }
}
