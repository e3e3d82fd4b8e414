package io.javadevices.pci.testkit;

import io.javadevices.pci.Bar;
import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.DirectBarMemory;
import io.javadevices.pci.GuestMemory;
import io.javadevices.pci.InterruptSink;
import io.javadevices.pci.MmioHandler;
import io.javadevices.pci.PciDevice;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.*;

/** The {@link DirectBarMemory} contract as the test host implements it. */
class DirectBarMemoryTest {

    /**
     * A device with an 8 KiB BAR0 whose second page is a direct window; records handler writes. Follows
     * the contract: reads the window's memory at construction and again in every reset.
     */
    static final class WindowDevice implements PciDevice {
        final List<long[]> handlerWrites = new ArrayList<>();
        final Optional<DirectBarMemory.Window> granted;
        final ConfigSpace config;
        MemorySegment memory;

        WindowDevice(DeviceContext ctx) {
            granted = ctx.barMemory().share(0, 0x1000, 0x1000);
            memory = granted.map(DirectBarMemory.Window::memory).orElse(null);
            config = ConfigSpace.builder().vendorId(0x4E58).deviceId(0x0002).classCode(0xFF, 0, 0)
                    .bar(Bar.memory32(0, 0x2000, new MmioHandler() {
                        @Override
                        public long read(long offset, int size) {
                            return 0xAB;
                        }

                        @Override
                        public void write(long offset, int size, long value) {
                            handlerWrites.add(new long[] {offset, value});
                        }
                    })).build();
        }

        @Override
        public ConfigSpace config() {
            return config;
        }

        @Override
        public void reset() {
            config.reset();
            memory = granted.map(DirectBarMemory.Window::memory).orElse(null);
        }

        @Override
        public void close() {
        }
    }

    @Test
    void guestStoresInsideAWindowReachTheMemoryNotTheHandler() {
        try (TestHost host = TestHost.heap(1 << 20)) {
            WindowDevice dev = host.attach(WindowDevice::new);
            MemorySegment window = dev.memory;
            assertEquals(0x1000, window.byteSize());
            assertEquals(0, GuestMemory.loadIntAcquire(window, 4), "windows start zeroed");

            host.mmioWrite32(0, 0x1004, 0x1234);
            assertEquals(0x1234, GuestMemory.loadIntAcquire(window, 4));
            assertEquals(0x1234, host.mmioRead32(0, 0x1004), "reads come from the same memory");
            assertTrue(dev.handlerWrites.isEmpty(), "no callback for a mapped store");

            host.mmioWrite32(0, 0x10, 5);
            assertEquals(1, dev.handlerWrites.size(), "outside the window the handler is called");
            assertEquals(0xAB, host.mmioRead32(0, 0x10));
            assertEquals(window.address(), host.directWindow(0, 0x1000).orElseThrow().address());
        }
    }

    @Test
    void trappedWindowsFallBackToTheHandler() {
        try (TestHost host = TestHost.heap(1 << 20)) {
            WindowDevice dev = host.attach(WindowDevice::new);
            host.trapDirectWindows();
            host.mmioWrite32(0, 0x1008, 9);
            assertEquals(1, dev.handlerWrites.size());
            assertEquals(0x1008, dev.handlerWrites.get(0)[0]);
            assertEquals(0, GuestMemory.loadIntAcquire(dev.memory, 8), "the host did not store it");
        }
    }

    @Test
    void aContextWithoutDirectMemoryGrantsNothing() {
        DeviceContext ctx = new DeviceContext(GuestMemory.of(0, MemorySegment.ofArray(new long[16])), InterruptSink.NONE);
        assertSame(DirectBarMemory.NONE, ctx.barMemory());
        assertTrue(new WindowDevice(ctx).granted.isEmpty());
    }

    /**
     * Between two guests the host gives the window new memory and resets the device: the device then
     * reads the new page, starts from zeroes, and a store into the old page (a former guest that kept
     * its mapping) no longer reaches it.
     */
    @Test
    void aReplacedWindowCutsOffTheFormerGuest() {
        try (TestHost host = TestHost.heap(1 << 20)) {
            WindowDevice dev = host.attach(WindowDevice::new);
            host.mmioWrite32(0, 0x1004, 0x1234);
            MemorySegment former = dev.memory;

            host.replaceDirectWindows();

            assertNotEquals(former.address(), dev.memory.address(), "the device re-read its window in reset()");
            assertEquals(0, GuestMemory.loadIntAcquire(dev.memory, 4), "fresh memory starts zeroed");
            GuestMemory.storeIntRelease(former, 4, 0x6666); // the former guest's late store
            assertEquals(0, GuestMemory.loadIntAcquire(dev.memory, 4));
            host.mmioWrite32(0, 0x1004, 7);
            assertEquals(7, GuestMemory.loadIntAcquire(dev.memory, 4), "the new guest's stores reach the device");
            assertEquals(dev.memory.address(), host.directWindow(0, 0x1000).orElseThrow().address());
        }
    }

    @Test
    void windowsMustBePageAligned() {
        assertThrows(IllegalArgumentException.class, () -> DirectBarMemory.checkWindow(0, 0x800, 0x1000));
        assertThrows(IllegalArgumentException.class, () -> DirectBarMemory.checkWindow(0, 0x1000, 0x100));
        assertThrows(IllegalArgumentException.class, () -> DirectBarMemory.checkWindow(6, 0, 0x1000));
        assertThrows(IllegalArgumentException.class, () -> DirectBarMemory.checkWindow(0, 0, 0));
        DirectBarMemory.checkWindow(0, 0x1000, 0x1000);
    }
}
