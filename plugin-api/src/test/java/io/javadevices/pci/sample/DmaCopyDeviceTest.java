package io.javadevices.pci.sample;

import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.pci.testkit.TestHost;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Map;

import static io.javadevices.pci.sample.DmaCopyDevice.*;
import static org.junit.jupiter.api.Assertions.*;

/** Proves the test host with the sample device: BAR programming, registers, one DMA and its interrupt. */
class DmaCopyDeviceTest {
    private static final Duration WAIT = Duration.ofSeconds(5);

    private static void unmaskVector0(TestHost host, DmaCopyDevice dev) {
        // Like a guest driver: program table entry 0 and clear its mask bit.
        long table = 0; // table at BAR2 offset 0
        host.mmioWrite32(2, table, 0xFEE0_0000);
        host.mmioWrite32(2, table + 8, 0x41);
        host.mmioWrite32(2, table + 12, 0);
        host.useMsixTable(dev.msixTable());
    }

    private static int waitForStatus(TestHost host) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        int status;
        while ((status = host.mmioRead32(0, REG_STATUS)) == STATUS_BUSY && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        return status;
    }

    @Test
    void hostProgramsBarsAndEnablesDecoding() {
        try (TestHost host = TestHost.heap(1 << 20)) {
            DmaCopyDevice dev = host.attach(DmaCopyDevice::new);
            assertTrue(host.barAddress(0) >= TestHost.MMIO_BASE);
            assertEquals(0, host.barAddress(0) % 4096, "BARs are naturally aligned");
            assertNotEquals(host.barAddress(0), host.barAddress(2));
            assertTrue(dev.config().isBusMasterEnabled());
            assertEquals(ID, host.mmioRead32(0, REG_ID));
            host.mmioWrite32(0, REG_SCRATCH, 0x1234);
            assertEquals(0x1234, host.mmioRead32(0, REG_SCRATCH));
            assertThrows(IllegalArgumentException.class, () -> host.mmioRead32(0, 4096));
            assertThrows(IllegalArgumentException.class, () -> host.mmioRead32(1, 0));
        }
    }

    @Test
    void dmaCopyRaisesMsixInterrupt() throws Exception {
        try (TestHost host = TestHost.direct(1 << 20)) {
            DmaCopyDevice dev = host.attach(DmaCopyDevice::new);
            host.enableMsix();
            unmaskVector0(host, dev);
            long src = host.allocatePages(2);
            long dst = host.allocatePages(2);
            byte[] data = new byte[5000];
            new java.util.Random(1).nextBytes(data);
            host.memory().write(src, data, 0, data.length);
            host.mmioWrite64(0, REG_SRC, src);
            host.mmioWrite64(0, REG_DST, dst);
            host.mmioWrite32(0, REG_LEN, data.length);
            host.mmioWrite32(0, REG_DOORBELL, 1);
            assertEquals(1, host.interrupts().await(0, 0, WAIT));
            assertEquals(STATUS_DONE, waitForStatus(host));
            byte[] back = new byte[data.length];
            host.memory().read(dst, back, 0, back.length);
            assertArrayEquals(data, back);
            assertEquals(Map.of("copies", 1L), dev.statistics());
        }
    }

    @Test
    void dmaOutsideGuestMemoryIsAnErrorAndTheDeviceKeepsWorking() throws Exception {
        try (TestHost host = TestHost.heap(1 << 20)) {
            DmaCopyDevice dev = host.attach(DmaCopyDevice::new);
            host.enableMsix();
            unmaskVector0(host, dev);
            host.mmioWrite64(0, REG_SRC, (1 << 20) - 16);
            host.mmioWrite64(0, REG_DST, 0x1000);
            host.mmioWrite32(0, REG_LEN, 64);
            host.mmioWrite32(0, REG_DOORBELL, 1);
            assertEquals(1, host.interrupts().await(0, 0, WAIT));
            assertEquals(STATUS_ERROR, waitForStatus(host));
            host.mmioWrite64(0, REG_SRC, 0x2000);
            host.mmioWrite32(0, REG_LEN, 8);
            host.mmioWrite32(0, REG_DOORBELL, 1);
            assertEquals(2, host.interrupts().await(0, 1, WAIT));
            assertEquals(STATUS_DONE, waitForStatus(host));
        }
    }

    @Test
    void interruptsFollowMsixEnableFunctionMaskAndVectorMask() throws Exception {
        try (TestHost host = TestHost.heap(1 << 20)) {
            DmaCopyDevice dev = host.attach(DmaCopyDevice::new);
            host.useMsixTable(dev.msixTable());
            host.mmioWrite32(0, REG_LEN, 0);
            // MSI-X disabled: the interrupt is dropped.
            host.mmioWrite32(0, REG_DOORBELL, 1);
            waitForStatus(host);
            Thread.sleep(20);
            assertEquals(0, host.interrupts().count(0));
            assertEquals(1, host.interrupts().dropped(0));
            // Enabled but the table entry is still masked: pending bit set instead.
            host.enableMsix();
            host.mmioWrite32(0, REG_DOORBELL, 1);
            waitForStatus(host);
            Thread.sleep(20);
            assertEquals(0, host.interrupts().count(0));
            assertEquals(1L, host.mmioRead64(2, 0x800) & 1, "PBA shows vector 0 pending");
            // Function mask wins over an unmasked entry.
            unmaskVector0(host, dev);
            host.setMsixControl(ConfigSpace.MSIX_CONTROL_ENABLE | ConfigSpace.MSIX_CONTROL_FUNCTION_MASK);
            host.mmioWrite32(0, REG_DOORBELL, 1);
            waitForStatus(host);
            Thread.sleep(20);
            assertEquals(0, host.interrupts().count(0));
            host.enableMsix();
            host.mmioWrite32(0, REG_DOORBELL, 1);
            assertEquals(1, host.interrupts().await(0, 0, WAIT));
        }
    }

    @Test
    void busMasterOffBlocksDmaAndResetClearsRegisters() throws Exception {
        try (TestHost host = TestHost.heap(1 << 20)) {
            host.attach(DmaCopyDevice::new);
            host.configWrite(ConfigSpace.COMMAND, 2, ConfigSpace.COMMAND_MEMORY);
            host.mmioWrite32(0, REG_LEN, 8);
            host.mmioWrite32(0, REG_DOORBELL, 1);
            assertEquals(STATUS_ERROR, waitForStatus(host));
            host.mmioWrite32(0, REG_SCRATCH, 99);
            host.device().reset();
            assertEquals(0, host.configRead(ConfigSpace.COMMAND, 2), "reset() resets the config space too");
            host.configWrite(ConfigSpace.COMMAND, 2, ConfigSpace.COMMAND_MEMORY); // map BAR0 again to read it
            assertEquals(0, host.mmioRead32(0, REG_SCRATCH));
            assertEquals(STATUS_IDLE, host.mmioRead32(0, REG_STATUS));
        }
    }

    @Test
    void pluginIsFoundByNameThroughServiceLoader() {
        PciDevicePlugin plugin = PciDevicePlugin.find("dma-copy").orElseThrow();
        assertTrue(plugin.description().contains("copies"));
        try (TestHost host = TestHost.heap(1 << 20)) {
            assertThrows(IllegalArgumentException.class, () -> plugin.create(Map.of("bogus", "1"), host.context()));
            var dev = host.attach(ctx -> plugin.create(Map.of(), ctx));
            assertEquals(ID, host.mmioRead32(0, REG_ID));
            assertNotNull(dev.config());
        }
        assertTrue(PciDevicePlugin.find("no-such-device").isEmpty());
    }
}
