package io.javadevices.nvme;

import io.javadevices.nvme.driver.Command;
import io.javadevices.nvme.driver.Completion;
import io.javadevices.nvme.driver.HostQueue;
import io.javadevices.nvme.driver.LinuxLikeDriver;
import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.InterruptSink;
import io.javadevices.pci.PciDevice;
import io.javadevices.pci.PciDevicePlugin;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class BringUpTest {

    @Test
    void pciIdentityAndCapabilities() {
        try (Fixture f = Fixture.of("queues", "4")) {
            ConfigSpace c = f.controller.config();
            assertEquals(0x4E58, c.read(ConfigSpace.VENDOR_ID, 2));
            assertEquals(0x4A56, c.read(ConfigSpace.DEVICE_ID, 2));
            assertEquals(0x4E58, c.read(ConfigSpace.SUBSYSTEM_VENDOR_ID, 2));
            assertEquals(0x4A56, c.read(ConfigSpace.SUBSYSTEM_ID, 2));
            assertEquals(0x010802, c.read(ConfigSpace.REVISION_ID, 4) >>> 8 & 0xFFFFFF);
            assertEquals(16 * 1024, c.bar(0).size());
            assertEquals(io.javadevices.pci.Bar.Kind.MEMORY64, c.bar(0).kind());
            assertEquals(5, c.msixVectorCount());
            assertNotEquals(0, c.pciExpressCapabilityOffset());
            assertNotEquals(0, c.powerManagementCapabilityOffset());
        }
    }

    @Test
    void registersAfterReset() {
        try (Fixture f = Fixture.of("mqes", "255")) {
            LinuxLikeDriver d = f.driver;
            long cap = d.readReg64(0);
            assertEquals(255, cap & 0xFFFF, "MQES");
            assertEquals(1, cap >>> 16 & 1, "CQR");
            assertEquals(0xF, cap >>> 24 & 0xFF, "TO");
            assertEquals(0, cap >>> 32 & 0xF, "DSTRD");
            assertEquals(1, cap >>> 37 & 1, "CSS NVM");
            assertEquals(0, cap >>> 48 & 0xF, "MPSMIN");
            assertEquals(cap, f.host.mmioRead64(0, 0), "64-bit CAP access");
            assertEquals(0x00010400, d.readReg32(0x08));
            assertEquals(0, d.readReg32(0x1C));
            // ASQ as one 64-bit write and two halves
            f.host.mmioWrite64(0, 0x28, 0x1_2345_6000L);
            assertEquals(0x1_2345_6000L, f.host.mmioRead64(0, 0x28));
            d.writeReg64(0x30, 0x2_0000_1000L);
            assertEquals(0x2_0000_1000L, d.readReg64(0x30));
            // INTMS / INTMC
            d.writeReg32(0x0C, 1);
            assertEquals(1, d.readReg32(0x0C));
            d.writeReg32(0x10, 1);
            assertEquals(0, d.readReg32(0x0C));
            // reads have no side effects
            assertEquals(d.readReg32(0x1C), d.readReg32(0x1C));
        }
    }

    @Test
    void linuxBringUpIdentifyAndShutdown() {
        try (Fixture f = Fixture.of("queues", "4", "serial", "SN42", "model", "Test Model")) {
            int queues = f.driver.bringUp(4, 64, true);
            assertEquals(4, queues);
            byte[] id = f.driver.identify(0x01, 0);
            assertEquals(0x4E58, (id[0] & 0xFF) | (id[1] & 0xFF) << 8);
            assertEquals("SN42", new String(id, 4, 20, StandardCharsets.US_ASCII).trim());
            assertEquals("Test Model", new String(id, 24, 40, StandardCharsets.US_ASCII).trim());
            assertEquals(7, id[77], "MDTS");
            assertEquals(0x66, id[512] & 0xFF);
            assertEquals(0x44, id[513] & 0xFF);
            assertEquals(32, id[516], "NN: max-namespaces defaults to 32");
            assertEquals(0x100, ((id[256] & 0xFF) | (id[257] & 0xFF) << 8) & 0x100, "OACS DBBUF");
            assertEquals(0, id[525], "VWC: a ram: namespace has no volatile cache to flush");
            assertEquals(1, id[111], "CNTRLTYPE");
            assertTrue(new String(id, 768, 256, StandardCharsets.US_ASCII).startsWith("nqn."));
            assertEquals(1, f.stat(NvmeStatistics.DBBUF_ACTIVE));
            assertEquals(4, f.stat(NvmeStatistics.IO_QUEUES));
            HostQueue q = f.driver.ioQueue(1);
            long buf = f.host.allocatePages(1);
            Completion c = q.execute(Command.write(1, 0, 8, buf, 0));
            assertTrue(c.ok(), c.toString());
            f.driver.shutdown();
            assertEquals(2, f.driver.readReg32(0x1C) >>> 2 & 3);
            assertEquals(1, f.driver.readReg32(0x1C) & 1);
            f.driver.disable();
            assertEquals(0, f.driver.readReg32(0x1C));
            assertEquals(0, f.stat(NvmeStatistics.DBBUF_ACTIVE));
            assertEquals(0, f.stat(NvmeStatistics.IO_QUEUES));
            assertTrue(f.stat(NvmeStatistics.CONTROLLER_RESETS) >= 1);
        }
    }

    @Test
    void invalidEnableSetsCfs() {
        try (Fixture f = Fixture.of()) {
            LinuxLikeDriver d = f.driver;
            d.writeReg32(0x24, 0x001F001F);
            d.writeReg64(0x28, 0x1000);
            d.writeReg64(0x30, 0x2000);
            d.writeReg32(0x14, 7 << 16 | 4 << 20 | 1); // IOSQES 7: invalid
            assertEquals(2, d.readReg32(0x1C) & 3, "CFS, not ready");
            d.writeReg32(0x14, 0);
            assertEquals(0, d.readReg32(0x1C));
            // ASQ outside guest memory
            d.writeReg64(0x28, 1L << 40);
            d.writeReg32(0x14, 6 << 16 | 4 << 20 | 1);
            assertEquals(2, d.readReg32(0x1C) & 3);
            d.writeReg32(0x14, 0);
            d.enable();
            assertEquals(1, d.readReg32(0x1C));
        }
    }

    @Test
    void pluginLoadsByServiceLoaderAndValidatesOptions() {
        PciDevicePlugin plugin = PciDevicePlugin.find("nvme").orElseThrow();
        assertInstanceOf(NvmePlugin.class, plugin);
        assertTrue(plugin.optionsHelp().contains("namespaces="));
        DeviceContext ctx = new DeviceContext(GuestMemory.of(0, MemorySegment.ofArray(new long[512])), InterruptSink.NONE);
        try (PciDevice dev = plugin.create(Map.of("namespaces", "null:1G,ram:64M@4096", "queues", "2"), ctx)) {
            assertEquals(3, dev.config().msixVectorCount());
            assertTrue(dev.statistics().keySet().containsAll(java.util.List.of("admin.commands", "admin.dbbuf.accepted",
                    "admin.dbbuf.rejected", "io.commands", "io.reads", "io.writes", "io.flushes", "io.bytes.read",
                    "io.bytes.written", "io.errors", "doorbell.mmio.sq", "doorbell.mmio.cq", "doorbell.shadow.sq",
                    "doorbell.shadow.cq", "interrupts", "dbbuf.active", "io.queues", "controller.resets")));
        }
        assertThrows(IllegalArgumentException.class, () -> plugin.create(Map.of("bogus", "1"), ctx));
        assertThrows(IllegalArgumentException.class, () -> plugin.create(Map.of("queues", "0"), ctx));
        assertThrows(IllegalArgumentException.class, () -> plugin.create(Map.of("dbbuf", "maybe"), ctx));
        assertThrows(IllegalArgumentException.class, () -> plugin.create(Map.of("namespaces", "disk:1G"), ctx));
        assertThrows(IllegalArgumentException.class, () -> plugin.create(Map.of("namespaces", "ram:12Q"), ctx));
        assertThrows(IllegalArgumentException.class, () -> plugin.create(Map.of("namespaces", "ram:1G@1024"), ctx));
        assertThrows(IllegalArgumentException.class, () -> plugin.create(Map.of("mdts", "x"), ctx));
    }

    @Test
    void optionDefaultsAndSizes() {
        NvmeOptions o = NvmeOptions.defaults();
        assertEquals(1, o.namespaces().size());
        assertEquals(1L << 30, o.namespaces().get(0).size());
        assertEquals(512, o.namespaces().get(0).lbaSize());
        assertEquals(4, o.queues());
        assertTrue(o.dbbuf());
        assertEquals("JD0001", o.serial());
        assertEquals("Java NVMe Controller", o.model());
        assertEquals(1023, o.mqes());
        assertEquals(7, o.mdts());
        assertEquals(300, o.pollMicros());
        assertEquals(8L << 30, NvmeOptions.parseSize("8G", "x"));
        assertEquals(64L << 20, NvmeOptions.parseSize("64M", "x"));
        assertEquals(12345L, NvmeOptions.parseSize("12345", "x"));
        var f = NvmeOptions.parseNamespaces("file:/tmp/a:b.img:1G@4096");
        assertEquals("/tmp/a:b.img", f.get(0).path());
        assertEquals(4096, f.get(0).lbaSize());
        assertFalse(f.get(0).direct(), "buffered unless asked");
    }

    /** {@code file:PATH[:SIZE][?direct=on]}, the query after the path and size and before the LBA suffix. */
    @Test
    void fileNamespaceDirectOption() {
        var specs = NvmeOptions.parseNamespaces("file:/img/a.raw:1G?direct=on@4096,file:/img/b.raw?direct=off,"
                + "file:/img/c.raw?direct=ON,file:/img/d:e.raw:64M?direct=on");
        assertEquals(new NvmeOptions.NamespaceSpec("file", 1L << 30, "/img/a.raw", 4096, true), specs.get(0));
        assertEquals(new NvmeOptions.NamespaceSpec("file", 0, "/img/b.raw", 512, false), specs.get(1));
        assertTrue(specs.get(2).direct(), "on/off in any case, as dbbuf=");
        assertEquals(new NvmeOptions.NamespaceSpec("file", 64L << 20, "/img/d:e.raw", 512, true), specs.get(3));
        for (String[] bad : new String[][] {
                {"file:/img/a.raw:1G?cache=none", "unknown file namespace option 'cache'"},
                {"file:/img/a.raw?direct=on&aio=native", "unknown file namespace option 'aio'"},
                {"file:/img/a.raw?direct=yes", "direct must be on or off"},
                {"file:/img/a.raw?direct", "direct must be on or off"},
                {"file:/img/a.raw?", "unknown file namespace option ''"},
                {"file:?direct=on", "needs a path"},
                {"ram:1G?direct=on", "bad size"}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> NvmeOptions.parseNamespaces(bad[0]), bad[0]);
            assertTrue(e.getMessage().contains(bad[1]), bad[0] + ": " + e.getMessage());
        }
    }
}
