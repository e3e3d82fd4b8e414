package io.javadevices.vfiouser.cli;

import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.PciDevice;
import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.pci.sample.DmaCopyDevice;

import java.io.IOException;
import java.util.Map;

/**
 * Test device {@code flush-fails}: the sample DMA-copy device whose {@link PciDevice#flush()} fails as a backend
 * whose fsync got EIO would, so a clean shutdown must report it and exit with status 1.
 */
public final class FlushFailsPlugin implements PciDevicePlugin {
    static final String MESSAGE = "backend /img/broken.raw: fdatasync failed (EIO)";

    @Override
    public String name() {
        return "flush-fails";
    }

    @Override
    public String description() {
        return "test device: the dma-copy sample whose flush fails";
    }

    @Override
    public String optionsHelp() {
        return "(no options)";
    }

    @Override
    public PciDevice create(Map<String, String> options, DeviceContext context) {
        DmaCopyDevice inner = new DmaCopyDevice(context);
        return new PciDevice() {
            @Override
            public ConfigSpace config() {
                return inner.config();
            }

            @Override
            public void reset() {
                inner.reset();
            }

            @Override
            public void flush() throws IOException {
                throw new IOException(MESSAGE);
            }

            @Override
            public void close() {
                inner.close();
            }
        };
    }
}
