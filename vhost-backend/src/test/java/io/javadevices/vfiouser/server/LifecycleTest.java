package io.javadevices.vfiouser.server;

import io.javadevices.pci.GuestMemoryException;
import io.javadevices.pci.sample.DmaCopyDevice;
import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.client.TestClient.EventFd;
import io.javadevices.vfiouser.client.TestClient.Memfd;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static java.net.StandardProtocolFamily.UNIX;
import static org.junit.jupiter.api.Assertions.*;

/** Connect, disconnect, crash, second clients, socket files, and leak accounting. */
class LifecycleTest {
    @TempDir
    Path dir;

    /** A full session: RAM mapped, eventfds set, DMA done; the client then vanishes without cleaning up. */
    private static void session(VfioUserServer server, boolean abrupt) throws Exception {
        try (Memfd ram = new Memfd(1 << 20); EventFd v0 = new EventFd(); EventFd v1 = new EventFd()) {
            TestClient c = Fixture.client(server);
            c.version();
            c.ok(CMD_DMA_MAP, TestClient.dmaMapPayload(0x10000, 1 << 20, 0, 3), ram.fd);
            assertFalse(c.dmaMap(0x200000, 0x10000, 0, -1).isError());
            c.ok(CMD_DEVICE_SET_IRQS, TestClient.le(20).putInt(20)
                    .putInt(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER).putInt(IRQ_MSIX).putInt(0).putInt(2).array(),
                    v0.fd, v1.fd);
            c.ok(CMD_DEVICE_SET_IRQS, TestClient.le(20).putInt(20)
                    .putInt(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER).putInt(IRQ_ERR).putInt(0).putInt(1).array(),
                    v1.fd);
            c.writeLong(REGION_CONFIG, 4, 2, 6);
            c.writeLong(0, DmaCopyDevice.REG_SRC, 8, 0x10000);
            c.writeLong(0, DmaCopyDevice.REG_DST, 8, 0x20000);
            c.writeLong(0, DmaCopyDevice.REG_LEN, 4, 4096);
            c.writeLong(0, DmaCopyDevice.REG_DOORBELL, 4, 1);
            assertEquals(1, v0.await(5000));
            assertEquals(2L, server.resources().get("dma.maps"));
            assertEquals(3L, server.resources().get("irq.fds"));
            assertEquals(1L, server.resources().get("clients.connected"));
            if (abrupt) {
                c.close(); // no unmap, no SET_IRQS disable: like a QEMU crash
            } else {
                c.dmaUnmap(0, 0, DMA_UNMAP_FLAG_ALL);
                c.close();
            }
        }
        Fixture.idle(server);
    }

    @Test
    void disconnectReleasesMapsAndFdsAndResetsTheDevice() throws Exception {
        try (VfioUserServer server = Fixture.start(dir)) {
            session(server, false); // warm-up: classes loaded, lazy JDK fds opened
            long before = Fixture.openFds();
            for (int i = 0; i < 3; i++) {
                session(server, true);
                var r = server.resources();
                assertEquals(0L, r.get("dma.maps"));
                assertEquals(0L, r.get("dma.bytes"));
                assertEquals(0L, r.get("irq.fds"));
                assertEquals(0L, r.get("clients.connected"));
                assertEquals(before, Fixture.openFds(), "no fd left behind after session " + i);
                assertFalse(server.device().config().isBusMasterEnabled(), "device reset after disconnect");
                assertTrue(server.interruptsForTest() != null && !server.interruptsForTest().isMsixVectorUsable(0));
            }
            assertEquals(4L, server.resources().get("clients.total"));
            Fixture.assertServes(server);
        }
    }

    @Test
    void deviceWorkersGetGuestMemoryExceptionsAfterUnmap() throws Exception {
        try (VfioUserServer server = Fixture.start(dir); Memfd ram = new Memfd(1 << 20)) {
            TestClient c = Fixture.client(server);
            c.version();
            c.ok(CMD_DMA_MAP, TestClient.dmaMapPayload(0x10000, 1 << 20, 0, 3), ram.fd);
            var memory = ((DmaCopyDevice) server.device());
            assertNotNull(memory);
            c.close();
            Fixture.idle(server);
            // The server's GuestMemory no longer maps the range: accesses fail cleanly, no SIGSEGV.
            var gm = GuestMemoryHolder.of(server);
            assertThrows(GuestMemoryException.class, () -> gm.read(0x10000, new byte[16], 0, 16));
        }
    }

    /** Reaches the DeviceContext's memory through a device factory that records it. */
    static final class GuestMemoryHolder {
        static io.javadevices.pci.GuestMemory of(VfioUserServer server) {
            return server.guestMemoryForTest();
        }
    }

    @Test
    void secondConcurrentClientIsRefused() throws Exception {
        try (VfioUserServer server = Fixture.start(dir); TestClient first = Fixture.client(server)) {
            first.version();
            try (TestClient second = Fixture.client(server)) {
                assertTrue(second.closedByServer(5000), "second client closed");
            }
            assertEquals(1L, server.resources().get("clients.refused"));
            first.deviceInfo(); // first client unaffected
            first.close();
            Fixture.assertServes(server);
        }
    }

    @Test
    void socketFileHandling() throws Exception {
        Path path = dir.resolve("s.sock");
        // A regular file is never replaced.
        Files.writeString(path, "not a socket");
        VfioUserServer refused = VfioUserServer.builder().socket(path).device(DmaCopyDevice::new).build();
        IOException e = assertThrows(IOException.class, refused::start);
        assertTrue(e.getMessage().contains("not a socket"), e.getMessage());
        assertEquals("not a socket", Files.readString(path));
        refused.close();
        Files.delete(path);

        // A stale socket (nobody listening) is replaced.
        try (ServerSocketChannel stale = ServerSocketChannel.open(UNIX)) {
            stale.bind(UnixDomainSocketAddress.of(path));
        }
        assertTrue(Files.exists(path));
        try (VfioUserServer server = VfioUserServer.builder().socket(path).socketMode(0660)
                .device(DmaCopyDevice::new).build()) {
            server.start();
            assertTrue(server.isServing());
            assertEquals("rw-rw----", PosixFilePermissions.toString(Files.getPosixFilePermissions(path)));
            // A live socket is not stolen by a second server.
            try (VfioUserServer other = VfioUserServer.builder().socket(path).device(DmaCopyDevice::new).build()) {
                IOException busy = assertThrows(IOException.class, other::start);
                assertTrue(busy.getMessage().contains("in use"), busy.getMessage());
            }
            Fixture.assertServes(server);
        }
        assertFalse(Files.exists(path), "close deletes the socket file");
    }

    @Test
    void defaultModeIs0600AndCloseWithAConnectedClient() throws Exception {
        long before = Fixture.openFds();
        VfioUserServer server = Fixture.start(dir);
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(server.socketPath())));
        TestClient c = Fixture.client(server);
        c.version();
        server.awaitClientCount(1, Duration.ofSeconds(5));
        server.close();
        assertTrue(c.closedByServer(5000));
        c.close();
        assertFalse(server.isServing());
        assertFalse(Files.exists(server.socketPath()));
        server.close(); // idempotent
        assertTrue(Fixture.openFds() <= before + 2, "server resources released"); // lazy JDK fds allowed
    }

    @Test
    void clientResetWithUnreadRepliesIsACleanDisconnect() throws Exception {
        try (VfioUserServer server = Fixture.start(dir)) {
            TestClient c = Fixture.client(server);
            c.version();
            for (int i = 0; i < 200; i++) { // 4 KiB config reads whose replies are never read
                c.send(CMD_REGION_READ, 0, TestClient.rwPayload(REGION_CONFIG, 0, 4096, null));
            }
            Thread.sleep(50);
            c.close(); // unread data in the receive queue: the kernel sends RST (ECONNRESET/EPIPE on the server)
            Fixture.idle(server);
            assertTrue(server.isServing());
            Fixture.assertServes(server);
        }
    }

    @Test
    void closeWhileTheSessionWaitsOnTheResampleFd() throws Exception {
        VfioUserServer server = VfioUserServer.builder().socket(dir.resolve("i.sock"))
                .device(IntxTest.LineDevice::new).build();
        server.start();
        try (TestClient c = Fixture.client(server); EventFd trigger = new EventFd(); EventFd resample = new EventFd()) {
            c.version();
            c.ok(CMD_DEVICE_SET_IRQS, TestClient.le(20).putInt(20).putInt(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER)
                    .putInt(IRQ_INTX).putInt(0).putInt(1).array(), trigger.fd);
            c.ok(CMD_DEVICE_SET_IRQS, TestClient.le(20).putInt(20).putInt(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_UNMASK)
                    .putInt(IRQ_INTX).putInt(0).putInt(1).array(), resample.fd);
            long start = System.nanoTime();
            server.close();
            assertTrue(System.nanoTime() - start < 5_000_000_000L, "close did not hang");
            assertTrue(c.closedByServer(5000));
            assertEquals(0L, server.resources().get("irq.fds"));
        }
    }

    @Test
    void builderValidation() {
        assertThrows(IllegalStateException.class, () -> VfioUserServer.builder().device(DmaCopyDevice::new).build());
        assertThrows(IllegalStateException.class, () -> VfioUserServer.builder().socket(dir.resolve("x")).build());
        assertThrows(IllegalArgumentException.class, () -> VfioUserServer.builder().socketMode(01777));
        assertThrows(IllegalArgumentException.class, () -> new Limits(1 << 20, 10, 1, 16, 1 << 20, 8));
    }
}
