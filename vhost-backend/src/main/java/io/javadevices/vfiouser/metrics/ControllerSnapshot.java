package io.javadevices.vfiouser.metrics;

import io.javadevices.pci.Histogram;
import io.javadevices.pci.PciDevice;
import io.javadevices.vfiouser.server.VfioUserServer;

import java.util.Map;
import java.util.Objects;

/**
 * What one controller reports at one moment, the input of {@link PrometheusMetrics#render}: its name (the
 * socket path, the control plane's name of a controller), the transport's {@link VfioUserServer#resources()},
 * the device's {@link PciDevice#statistics()} and {@link PciDevice#histograms()}.
 */
public record ControllerSnapshot(String controller, Map<String, Long> server, Map<String, Long> device,
                                 Map<String, Histogram> histograms) {
    private static final System.Logger LOG = System.getLogger(ControllerSnapshot.class.getName());

    public ControllerSnapshot {
        Objects.requireNonNull(controller, "controller");
        server = Map.copyOf(server);
        device = Map.copyOf(device);
        histograms = Map.copyOf(histograms);
    }

    /**
     * Reads {@code server} now (on the caller's thread: collection happens on scrape, no background thread
     * touches the devices). A device whose statistics or histograms throw contributes none of them: a device
     * bug costs its own numbers, never the scrape.
     */
    public static ControllerSnapshot of(VfioUserServer server) {
        String name = String.valueOf(server.socketPath());
        PciDevice device = server.device();
        Map<String, Long> statistics = Map.of();
        Map<String, Histogram> histograms = Map.of();
        if (device != null) {
            try {
                statistics = device.statistics();
                histograms = device.histograms();
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "statistics of the device on " + name + " failed: " + e);
            }
        }
        return new ControllerSnapshot(name, server.resources(), statistics, histograms);
    }
}
