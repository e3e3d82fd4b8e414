package io.javadevices.vfiouser.server;

import io.javadevices.pci.Bar;
import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.MmioHandler;
import io.javadevices.pci.PciDevice;
import io.javadevices.vfiouser.client.TestClient;
import io.javadevices.vfiouser.client.TestClient.EventFd;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static io.javadevices.vfiouser.protocol.VfioUserProtocol.*;
import static org.junit.jupiter.api.Assertions.*;

/** INTx: level-triggered, auto-masked after each trigger, unmasked by SET_IRQS UNMASK or the resample fd. */
class IntxTest {
    @TempDir
    Path dir;

    /** A legacy-interrupt device: BAR0 offset 0 is the line level (write 1 assert, 0 deassert). An I/O BAR too. */
    static final class LineDevice implements PciDevice {
        final ConfigSpace config;

        LineDevice(DeviceContext context) {
            MmioHandler line = new MmioHandler() {
                @Override
                public long read(long offset, int size) {
                    return 0;
                }

                @Override
                public void write(long offset, int size, long value) {
                    context.interrupts().setIntx(value != 0);
                }
            };
            config = ConfigSpace.builder().vendorId(0x1234).deviceId(0x5678).classCode(0xFF, 0, 0).interruptPin(1)
                    .bar(Bar.memory64(0, 4096, line)).bar(Bar.io(4, 32, MmioHandler.ZERO)).build();
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
        }
    }

    @Test
    void intxWithResample() throws Exception {
        try (VfioUserServer server = VfioUserServer.builder().socket(dir.resolve("l.sock")).device(LineDevice::new).build()) {
            server.start();
            try (TestClient c = TestClient.connect(server.socketPath()); EventFd trigger = new EventFd();
                 EventFd resample = new EventFd()) {
                c.version();
                assertEquals(1, c.irqInfo(IRQ_INTX).body().getInt(12));
                assertEquals(IRQ_INFO_EVENTFD | IRQ_INFO_MASKABLE | IRQ_INFO_AUTOMASKED, c.irqInfo(IRQ_INTX).body().getInt(4));
                assertEquals(0, c.irqInfo(IRQ_MSIX).body().getInt(12));
                assertEquals(256, c.regionInfo(REGION_CONFIG, 32).body().getLong(16), "no PCIe: 256-byte config space");
                assertEquals(4096, c.regionInfo(0, 32).body().getLong(16));
                assertEquals(0, c.regionInfo(1, 32).body().getLong(16), "upper half of a 64-bit BAR");
                assertEquals(32, c.regionInfo(4, 32).body().getLong(16));

                assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, IRQ_INTX, 0, 1, trigger.fd).isError());
                assertFalse(c.setIrqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_UNMASK, IRQ_INTX, 0, 1, resample.fd).isError());
                assertEquals(2L, server.resources().get("irq.fds"));

                c.writeLong(0, 0, 4, 1); // assert
                assertEquals(1, trigger.await(2000));
                c.writeLong(0, 0, 4, 0);
                c.writeLong(0, 0, 4, 1); // asserted again while auto-masked: held
                assertEquals(0, trigger.await(100));
                resample.signal(); // guest EOI: line still asserted → fires again
                assertEquals(1, trigger.await(2000));
                c.writeLong(0, 0, 4, 0); // deassert, then unmask via SET_IRQS: nothing pending
                assertFalse(c.setIrqs(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_UNMASK, IRQ_INTX, 0, 1).isError());
                assertEquals(0, trigger.await(100));
                // explicit MASK holds the next assertion until UNMASK
                assertFalse(c.setIrqs(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_MASK, IRQ_INTX, 0, 1).isError());
                c.writeLong(0, 0, 4, 1);
                assertEquals(0, trigger.await(100));
                assertFalse(c.setIrqs(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_UNMASK, IRQ_INTX, 0, 1).isError());
                assertEquals(1, trigger.await(2000));
                // INTx Disable in the command register suppresses it
                c.writeLong(0, 0, 4, 0);
                c.writeLong(REGION_CONFIG, 4, 2, ConfigSpace.COMMAND_INTX_DISABLE);
                resample.signal();
                c.writeLong(0, 0, 4, 1);
                assertEquals(0, trigger.await(100));
                // I/O BAR accesses are plain messages too
                assertEquals(0, c.readLong(4, 0, 4));
                // disable the index: eventfd and resample fd released
                assertFalse(c.setIrqs(IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER, IRQ_INTX, 0, 0).isError());
                assertEquals(0L, server.resources().get("irq.fds"));
            }
        }
    }
}
