package io.javadevices.vfiouser.server;

import io.javadevices.pci.Bar;
import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.MmioHandler;
import io.javadevices.pci.PciDevice;
import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.client.TestClient.Memfd;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.*;

/**
 * A device with asynchronous DMA in flight (an io_uring read holding a raw guest address) keeps an unmapped
 * region's memory alive until it says it is quiescent ({@link GuestMemory.DmaQuiescer}): the unmap is answered
 * at once, the memory is released only afterwards, and the other clients' service does not wait for it.
 */
class AsyncDmaQuiesceTest {
    static final long GPA = 0x4000_0000L;
    static final int SIZE = 1 << 20;

    @TempDir
    Path dir;

    /** Pretends one asynchronous operation is in flight until {@link #finish} is called. */
    static final class InFlightDevice implements PciDevice, GuestMemory.DmaQuiescer {
        final ConfigSpace config = ConfigSpace.builder().vendorId(0x1AF4).deviceId(0x1).classCode(0xFF, 0, 0)
                .bar(Bar.memory32(0, 4096, MmioHandler.ZERO)).build();
        final GuestMemory memory;
        final CountDownLatch done = new CountDownLatch(1);
        volatile int calls;

        InFlightDevice(DeviceContext context) {
            this.memory = context.memory();
            memory.addQuiescer(this);
        }

        void finish() {
            done.countDown();
        }

        @Override
        public boolean awaitQuiescent(long timeoutNanos) {
            calls++;
            try {
                return done.await(timeoutNanos, TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }

        @Override
        public ConfigSpace config() {
            return config;
        }

        @Override
        public void reset() {
            config.reset();
        }

        @Override
        public void close() {
            memory.removeQuiescer(this);
        }
    }

    @Test
    void unmappedMemoryStaysAliveUntilTheDeviceIsQuiescent() throws Exception {
        InFlightDevice[] device = new InFlightDevice[1];
        try (VfioUserServer server = VfioUserServer.builder().socket(dir.resolve("q.sock"))
                .device(ctx -> device[0] = new InFlightDevice(ctx)).build();
             Memfd ram = new Memfd(SIZE)) {
            server.start();
            TestClient c = TestClient.connect(server.socketPath());
            c.version();
            c.ok(CMD_DMA_MAP, TestClient.dmaMapPayload(GPA, SIZE, 0, 3), ram.fd);
            // What the kernel would be writing into: the device's view of the guest page.
            MemorySegment inFlight = device[0].memory.slice(GPA, 4096);

            c.ok(CMD_DMA_UNMAP, TestClient.le(24).putInt(24).putInt(0).putLong(GPA).putLong(SIZE).array());
            assertTrue(device[0].calls > 0, "the server asked the device before releasing the memory");
            assertFalse(device[0].memory.isMapped(GPA, 4096), "new DMA can no longer reach the region");
            assertEquals(1L, server.resources().get("dma.deferred"), "release deferred while I/O is in flight");
            assertTrue(inFlight.scope().isAlive(), "the memory is still mapped for the operation in flight");
            inFlight.set(JAVA_BYTE, 0, (byte) 1); // and still writable: nothing else can have been mapped there

            device[0].finish();
            VfioUserServerTest.waitFor(() -> server.resources().get("dma.deferred") == 0L);
            VfioUserServerTest.waitFor(() -> !inFlight.scope().isAlive());
            c.close();
            Fixture.idle(server);
            assertEquals(0L, server.resources().get("dma.maps"));
        }
    }
}
