package io.javadevices.pci.sample;

import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.PciDevice;
import io.javadevices.pci.PciDevicePlugin;

import java.util.Map;

/** The {@link PciDevicePlugin} for {@link DmaCopyDevice}: shows how a device becomes loadable by name. */
public final class DmaCopyPlugin implements PciDevicePlugin {
    @Override
    public String name() {
        return "dma-copy";
    }

    @Override
    public String description() {
        return "sample device: copies guest memory and raises MSI-X vector 0";
    }

    @Override
    public String optionsHelp() {
        return "(no options)";
    }

    @Override
    public PciDevice create(Map<String, String> options, DeviceContext context) {
        if (!options.isEmpty()) {
            throw new IllegalArgumentException("unknown option(s): " + options.keySet());
        }
        return new DmaCopyDevice(context);
    }
}
