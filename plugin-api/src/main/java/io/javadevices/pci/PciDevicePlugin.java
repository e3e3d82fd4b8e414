package io.javadevices.pci;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceLoader;

/**
 * Service-provider interface that creates a device by name from string options, so that a host (the
 * vfio-user server's CLI) can load devices it was not compiled against. Implementations are listed in
 * {@code META-INF/services/io.javadevices.pci.PciDevicePlugin} and need a public no-argument
 * constructor.
 */
public interface PciDevicePlugin {

    /** Short unique name, e.g. {@code nvme}. */
    String name();

    /** One line saying what the device is. */
    String description();

    /** Help text listing the accepted options, one {@code key=value  meaning} per line. */
    String optionsHelp();

    /**
     * Creates a device.
     *
     * @param options key/value options (unknown keys are an error)
     * @param context guest memory and interrupts for the device's lifetime
     * @throws IllegalArgumentException if an option is unknown or malformed (message says which)
     */
    PciDevice create(Map<String, String> options, DeviceContext context);

    /** The plugins visible to {@code loader}. */
    static List<PciDevicePlugin> available(ClassLoader loader) {
        List<PciDevicePlugin> plugins = new ArrayList<>();
        ServiceLoader.load(PciDevicePlugin.class, loader).forEach(plugins::add);
        return plugins;
    }

    /** Finds a plugin by name with the thread's context class loader. */
    static Optional<PciDevicePlugin> find(String name) {
        return available(Thread.currentThread().getContextClassLoader()).stream()
                .filter(p -> p.name().equals(name))
                .findFirst();
    }
}
