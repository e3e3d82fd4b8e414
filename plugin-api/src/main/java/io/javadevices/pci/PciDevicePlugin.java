package io.javadevices.pci;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceLoader;
import java.util.TreeMap;

/**
 * Service-provider interface that creates a device by name from string options, so that a host (the
 * vfio-user server's CLI) can load devices it was not compiled against. Implementations are listed in
 * {@code META-INF/services/io.javadevices.pci.PciDevicePlugin} and need a public no-argument
 * constructor.
 *
 * <p>Besides creating devices, a plugin may give a host's command line its own vocabulary: dedicated
 * options for its most used {@code key=value} options ({@link #commandLineOptions()}) and the periodic
 * status line made from its {@link PciDevice#statistics() counters} ({@link #statusLine}). Both have
 * defaults, so a plugin that only implements the abstract methods works everywhere.
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

    /**
     * Dedicated command-line options a host may offer for this device, in the order to show them; each
     * forwards to one of the {@code key=value} options of {@link #create}. Default: none.
     */
    default List<PluginOption> commandLineOptions() {
        return List.of();
    }

    /**
     * One status line (no line break) describing the device's activity between two snapshots of its
     * {@link PciDevice#statistics() statistics}, taken {@code interval} apart; a host prints it periodically.
     * Default: {@code stats: } and each counter that changed with its increase, by name.
     *
     * @param before   the earlier snapshot
     * @param now      the later snapshot
     * @param interval the time between the two snapshots (positive)
     */
    default String statusLine(Map<String, Long> before, Map<String, Long> now, Duration interval) {
        StringBuilder line = new StringBuilder("stats:");
        new TreeMap<>(now).forEach((name, value) -> {
            long delta = value - before.getOrDefault(name, 0L);
            if (delta != 0) {
                line.append(line.length() > "stats:".length() ? ", " : " ").append(name).append(' ')
                        .append(delta > 0 ? "+" : "").append(delta);
            }
        });
        return line.length() > "stats:".length() ? line.toString() : "stats: no counter changed";
    }

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
