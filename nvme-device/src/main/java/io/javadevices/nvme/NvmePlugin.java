package io.javadevices.nvme;

import io.javadevices.pci.DeviceContext;
import io.javadevices.pci.PciDevice;
import io.javadevices.pci.PciDevicePlugin;

import java.util.Map;

/** Loads the NVMe controller by name ({@code nvme}) through {@link java.util.ServiceLoader}. */
public final class NvmePlugin implements PciDevicePlugin {
    @Override
    public String name() {
        return "nvme";
    }

    @Override
    public String description() {
        return "NVMe 1.4 controller (ram/null/file namespaces, Doorbell Buffer Config shadow doorbells)";
    }

    @Override
    public String optionsHelp() {
        return NvmeOptions.HELP;
    }

    @Override
    public PciDevice create(Map<String, String> options, DeviceContext context) {
        return new NvmeController(NvmeOptions.parse(options), context);
    }
}
