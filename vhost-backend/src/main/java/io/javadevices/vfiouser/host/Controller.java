package io.javadevices.vfiouser.host;

import io.javadevices.pci.PciDevice;
import io.javadevices.vfiouser.server.VfioUserServer;

import java.nio.file.Path;
import java.util.Map;

/**
 * One controller of a {@link ControllerHost}: a device served on its own socket by its own
 * {@link VfioUserServer} (own client, DMA maps, interrupts, limits and peer gate), named by its normalized socket
 * path.
 */
public final class Controller {
    private final Path socket;
    private final String deviceName;
    private final VfioUserServer server;
    private final FlushOnClose device;

    Controller(Path socket, String deviceName, VfioUserServer server, FlushOnClose device) {
        this.socket = socket;
        this.deviceName = deviceName;
        this.server = server;
        this.device = device;
    }

    /** The normalized absolute socket path: the controller's name. */
    public Path socket() {
        return socket;
    }

    /** The device plugin's name, e.g. {@code nvme}. */
    public String deviceName() {
        return deviceName;
    }

    /** The device (statistics, histograms, {@link PciDevice#control()}). */
    public PciDevice device() {
        return device;
    }

    /** The transport's counters ({@link VfioUserServer#resources()}). */
    public Map<String, Long> resources() {
        return server.resources();
    }

    /** True while a client is connected. */
    public boolean connected() {
        return server.resources().getOrDefault("clients.connected", 0L) != 0;
    }

    /** True while the accept thread listens. */
    public boolean serving() {
        return server.isServing();
    }

    /** The server (tests, and the command line's status lines). */
    public VfioUserServer server() {
        return server;
    }

    /** Closes the server (disconnecting its client, flushing and closing the device); true if the flush succeeded. */
    boolean close() {
        server.close();
        return device.flushed();
    }
}
