package io.javadevices.vfiouser.server;

import io.javadevices.pci.Bar;
import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.GuestMemoryException;
import io.javadevices.pci.MmioHandler;
import io.javadevices.pci.PciDevice;
import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.client.TestClient.EventFd;
import io.javadevices.vfiouser.client.TestClient.Memfd;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Device workers keep copying guest memory and raising MSI-X while the client maps, unmaps and re-points
 * eventfds, and finally disconnects: workers only ever see GuestMemoryException (never a JVM crash), and
 * interrupts only reach a currently assigned eventfd.
 */
class UnmapRaceTest {
    static final long GPA = 0x4000_0000L;
    static final int SIZE = 1 << 20;

    @TempDir
    Path dir;

    static final class BusyDevice implements PciDevice {
        final ConfigSpace config = ConfigSpace.builder().vendorId(0x1AF4).deviceId(0x1).classCode(0xFF, 0, 0)
                .bar(Bar.memory32(0, 4096, MmioHandler.ZERO)).bar(Bar.memory32(2, 4096, MmioHandler.ZERO))
                .msix(4, 2, 0, 2, 0x800).build();
        final AtomicLong copies = new AtomicLong();
        final AtomicLong faults = new AtomicLong();
        final AtomicReference<Throwable> unexpected = new AtomicReference<>();
        final Thread[] workers = new Thread[2];
        volatile boolean running = true;

        BusyDevice(DeviceContext context) {
            for (int w = 0; w < workers.length; w++) {
                int id = w;
                workers[w] = Thread.ofPlatform().daemon().name("busy-" + w).start(() -> {
                    byte[] buffer = new byte[64 << 10];
                    long at = 0;
                    while (running) {
                        try {
                            context.memory().read(GPA + at, buffer, 0, buffer.length);
                            context.memory().write(GPA + SIZE - buffer.length - at, buffer, 0, buffer.length);
                            copies.incrementAndGet();
                        } catch (GuestMemoryException e) {
                            faults.incrementAndGet();
                            Thread.onSpinWait();
                        } catch (Throwable t) {
                            unexpected.compareAndSet(null, t);
                        }
                        context.interrupts().signalMsix(id);
                        at = (at + 4096) % (SIZE / 2);
                    }
                });
            }
        }

        @Override
        public ConfigSpace config() {
            return config;
        }

        @Override
        public void reset() {
            config.reset(); // the PciDevice.reset contract: config space too
        }

        @Override
        public void close() {
            running = false;
            for (Thread t : workers) {
                try {
                    t.join(5000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    @Test
    void workersRacingUnmapsAndEventfdChangesNeverCrash() throws Exception {
        BusyDevice[] device = new BusyDevice[1];
        try (VfioUserServer server = VfioUserServer.builder().socket(dir.resolve("r.sock"))
                .device(ctx -> device[0] = new BusyDevice(ctx)).build()) {
            server.start();
            for (int session = 0; session < 3; session++) {
                try (Memfd ram = new Memfd(SIZE); EventFd a = new EventFd(); EventFd b = new EventFd()) {
                    TestClient c = TestClient.connect(server.socketPath());
                    c.version();
                    for (int i = 0; i < 150; i++) {
                        c.ok(CMD_DMA_MAP, TestClient.dmaMapPayload(GPA, SIZE, 0, 3), ram.fd);
                        c.ok(CMD_DEVICE_SET_IRQS, TestClient.le(20).putInt(20)
                                .putInt(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER).putInt(IRQ_MSIX)
                                .putInt(0).putInt(2).array(), (i & 1) == 0 ? a.fd : b.fd, (i & 1) == 0 ? b.fd : a.fd);
                        Thread.sleep(0, 200_000);
                        if ((i & 3) == 0) {
                            c.setIrqs(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER, IRQ_MSIX, 0, 0);
                        }
                        c.ok(CMD_DMA_UNMAP, TestClient.le(24).putInt(24).putInt(0).putLong(GPA).putLong(SIZE).array());
                    }
                    c.ok(CMD_DMA_MAP, TestClient.dmaMapPayload(GPA, SIZE, 0, 3), ram.fd);
                    Thread.sleep(5);
                    c.close(); // disconnect with the memory still mapped and workers running
                }
                Fixture.idle(server);
                assertEquals(0L, server.resources().get("dma.maps"));
                assertEquals(0L, server.resources().get("irq.fds"));
            }
            assertNull(device[0].unexpected.get(), () -> "unexpected: " + device[0].unexpected.get());
            assertTrue(device[0].copies.get() > 0, "workers copied while mapped");
            assertTrue(device[0].faults.get() > 0, "workers saw unmapped memory");
            assertTrue(server.resources().get("irq.signalled") > 0);
            assertTrue(server.resources().get("irq.dropped") > 0);
        }
    }
}
