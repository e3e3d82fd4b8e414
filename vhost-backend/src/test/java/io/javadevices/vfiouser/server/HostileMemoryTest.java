package io.javadevices.vfiouser.server;

import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.PciDevice;
import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.pci.sample.DmaCopyDevice;
import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.client.TestClient.Memfd;
import io.javadevices.vfiouser.sys.Errno;
import io.javadevices.vfiouser.sys.ErrnoException;
import io.javadevices.vfiouser.sys.FileIdentity;
import io.javadevices.vfiouser.sys.LibC;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static io.javadevices.vfiouser.server.NvmeSocketDriver.BUF;
import static io.javadevices.vfiouser.server.NvmeSocketDriver.DATA_TRANSFER_ERROR;
import static io.javadevices.vfiouser.server.NvmeSocketDriver.IDENTIFY;
import static io.javadevices.vfiouser.server.NvmeSocketDriver.RAM_BASE;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Clients that attack the memory they share with the server: shrinking the BAR memfd they were handed
 * or their own guest RAM, keeping the doorbell page after they left, and a device whose reset fails with
 * an Error. In every case the session survives or ends cleanly, and the next client is served.
 */
class HostileMemoryTest {
    private static final Map<String, String> POLLED = Map.of("namespaces", "ram:16M", "doorbells", "polled");
    private static final Map<String, String> TRAPPED = Map.of("namespaces", "ram:16M");

    @TempDir
    Path dir;

    private VfioUserServer nvme(Map<String, String> options) throws Exception {
        PciDevicePlugin plugin = PciDevicePlugin.find("nvme").orElseThrow();
        VfioUserServer server = VfioUserServer.builder().socket(dir.resolve("nvme.sock"))
                .device(ctx -> plugin.create(options, ctx)).build();
        server.start();
        return server;
    }

    /** A client can neither shrink nor grow the BAR memfd it received: the kernel refuses (seals). */
    @Test
    void theBarMemfdIsSealedAndTheSessionSurvivesAttempts() throws Exception {
        try (VfioUserServer server = nvme(POLLED); Memfd ram = new Memfd(1 << 20)) {
            try (TestClient c = TestClient.connect(server.socketPath())) {
                NvmeSocketDriver d = new NvmeSocketDriver(c, ram);
                d.bringUp(true);
                int full = c.regionInfo(0, 32).body().getInt(0 /* argsz */);
                int fd = c.regionInfo(0, full).fds()[0];
                try {
                    assertEquals(FileIdentity.F_SEAL_SHRINK | FileIdentity.F_SEAL_GROW | FileIdentity.F_SEAL_SEAL, FileIdentity.seals(fd));
                    assertEquals(Errno.EPERM, assertThrows(ErrnoException.class, () -> LibC.ftruncate(fd, 0)).errno());
                    assertEquals(Errno.EPERM, assertThrows(ErrnoException.class, () -> LibC.ftruncate(fd, 1 << 20)).errno());
                    assertEquals(Errno.EPERM, assertThrows(ErrnoException.class, () -> FileIdentity.addSeals(fd, FileIdentity.F_SEAL_WRITE)).errno(),
                            "F_SEAL_SEAL: no write seal can break the server's writable mapping");
                } finally {
                    LibC.closeQuietly(fd);
                }
                assertEquals(0, d.io(0x02, RAM_BASE + BUF, 0), "the device still works through its page");
                d.unmapDoorbells();
            }
            // The reset that ends the session writes the page: it must not fault.
            server.awaitNoClient(Duration.ofSeconds(5));
            assertEquals(0L, server.resources().get("clients.connected"));
            assertServesNvme(server);
        }
    }

    /**
     * Guest RAM that the client shrinks after DMA_MAP (an unsealed memfd): I/O into the vanished pages
     * completes with Data Transfer Error, the controller keeps working, and the session ends cleanly.
     */
    @Test
    void truncatedGuestRamGivesDataTransferErrorsNotADeadSession() throws Exception {
        try (VfioUserServer server = nvme(TRAPPED); Memfd ram = new Memfd(2 << 20)) {
            try (TestClient c = TestClient.connect(server.socketPath())) {
                NvmeSocketDriver d = new NvmeSocketDriver(c, ram);
                d.bringUp(false);
                assertEquals(0, d.io(0x01, RAM_BASE + BUF, 5), "write before the truncation");
                LibC.ftruncate(ram.fd, 1 << 20); // the upper MiB is gone, the queues (low 64 KiB) remain
                long gone = RAM_BASE + (3 << 19);
                assertEquals(DATA_TRANSFER_ERROR, d.io(0x02, gone, 5), "read into a vanished page");
                assertEquals(DATA_TRANSFER_ERROR, d.io(0x01, gone, 5), "write from a vanished page");
                assertEquals(0, c.readLong(0, 0x1C, 4) & 2, "no controller fatal status");
                assertEquals(0, d.admin(0x06, IDENTIFY, 1, 0), "the controller still works");
                assertEquals(0, d.io(0x02, RAM_BASE + BUF, 5));
            }
            server.awaitNoClient(Duration.ofSeconds(5));
            assertEquals(0L, server.resources().get("dma.maps"));
            assertEquals(0L, server.resources().get("clients.connected"));
            assertServesNvme(server);
        }
    }

    /**
     * doorbells=polled: the second client gets a different page (another file), and the first client's
     * mapping, which it kept, no longer reaches the device: its stores do not move the new session's
     * queues (the SQE the new client wrote runs only when the new client rings its own doorbell).
     */
    @Test
    void eachClientGetsAFreshDoorbellPage() throws Exception {
        try (VfioUserServer server = nvme(POLLED); Memfd ram1 = new Memfd(1 << 20); Memfd ram2 = new Memfd(1 << 20)) {
            NvmeSocketDriver first;
            try (TestClient c = TestClient.connect(server.socketPath())) {
                first = new NvmeSocketDriver(c, ram1);
                first.bringUp(true);
                assertEquals(0, first.io(0x02, RAM_BASE + BUF, 0));
            } // disconnects, keeping its doorbell mapping
            server.awaitNoClient(Duration.ofSeconds(5));
            try (TestClient c = TestClient.connect(server.socketPath())) {
                NvmeSocketDriver second = new NvmeSocketDriver(c, ram2);
                second.bringUp(true);
                assertFalse(second.doorbellFile.sameFile(first.doorbellFile), "a new memfd for the new client");
                long before = server.device().statistics().get("doorbell.polled.sq");
                int id = second.queueIo(0x02, RAM_BASE + BUF, 0); // written, not rung
                // The former client rings queue 1's tail doorbell in the page it kept.
                GuestMemory.storeIntRelease(first.doorbells, 8, 1);
                assertEquals(-1, second.awaitIo(id, 200), "a store into the old page started the new client's command");
                assertEquals(before, server.device().statistics().get("doorbell.polled.sq"));
                second.ringIo();
                assertEquals(0, second.awaitIo(id, 5000), "the new client's own doorbell runs it");
                second.unmapDoorbells();
            } finally {
                first.unmapDoorbells();
            }
        }
    }

    /** A device whose reset throws an Error (as a SIGBUS in it did): the session still ends cleanly. */
    @Test
    void aSessionEndsCleanlyWhateverTheDeviceReset() throws Exception {
        AtomicInteger resets = new AtomicInteger();
        try (VfioUserServer server = VfioUserServer.builder().socket(dir.resolve("dev.sock"))
                .device(ctx -> new FailingReset(new DmaCopyDevice(ctx), resets)).build()) {
            server.start();
            long fdsBefore = Fixture.openFds();
            try (TestClient c = TestClient.connect(server.socketPath()); Memfd ram = new Memfd(1 << 20)) {
                c.version();
                c.ok(CMD_DMA_MAP, TestClient.dmaMapPayload(0x1000_0000L, 1 << 20, 0, 3), ram.fd);
            }
            server.awaitNoClient(Duration.ofSeconds(3));
            assertEquals(1, resets.get(), "the reset ran (and failed)");
            assertEquals(0L, server.resources().get("dma.maps"));
            assertEquals(0L, server.resources().get("clients.connected"));
            assertTrue(Fixture.openFds() <= fdsBefore, "the session's fds are released");
            Fixture.assertServes(server);
            assertEquals(2, resets.get());
        }
    }

    /** Wraps a device so that its reset throws InternalError after resetting. */
    private record FailingReset(PciDevice device, AtomicInteger resets) implements PciDevice {
        @Override
        public ConfigSpace config() {
            return device.config();
        }

        @Override
        public void reset() {
            device.reset();
            resets.incrementAndGet();
            throw new InternalError("a fault occurred in an unsafe memory access operation (simulated)");
        }

        @Override
        public void close() {
            device.close();
        }
    }

    /** A new client completes a handshake and reads the NVMe controller's CAP: the server still serves. */
    private static void assertServesNvme(VfioUserServer server) throws Exception {
        try (TestClient c = TestClient.connect(server.socketPath())) {
            c.version();
            assertNotEquals(0L, c.readLong(0, 0, 8), "CAP");
        }
        server.awaitNoClient(Duration.ofSeconds(5));
    }
}
