package io.javadevices.vfiouser.host;

import io.javadevices.pci.ConfigSpace;
import io.javadevices.pci.DeviceControl;
import io.javadevices.pci.Histogram;
import io.javadevices.pci.PciDevice;

import java.io.IOException;
import java.util.Map;
import java.util.Objects;

/**
 * The device as the host hands it to its {@code VfioUserServer}: everything delegated, except that
 * {@link #close()} first {@link PciDevice#flush() flushes} and records whether that succeeded. The server closes
 * the device after it disconnected the client and removed the socket, which is exactly when
 * {@link PciDevice#flush()} may be called, so a removed or shut-down controller makes its acknowledged data
 * durable without the server having to know about flushing.
 */
final class FlushOnClose implements PciDevice {
    private static final System.Logger LOG = System.getLogger(ControllerHost.class.getName());

    private final PciDevice device;
    private final String name;
    private boolean closed;
    private volatile boolean flushed;
    /**
     * Sticky: an explicit {@link #flush()} (the clean shutdown's, which reports it) failed. A later flush that
     * succeeds does not make durable what the failed one lost (Linux reports a writeback error to one fsync only),
     * so {@link #flushed()} stays false.
     */
    private volatile boolean flushFailed;

    FlushOnClose(PciDevice device, String name) {
        this.device = Objects.requireNonNull(device, "device");
        this.name = name;
    }

    /** The device the plugin created. */
    PciDevice delegate() {
        return device;
    }

    /** True once {@link #close()} flushed successfully. */
    boolean flushed() {
        return flushed;
    }

    @Override
    public ConfigSpace config() {
        return device.config();
    }

    @Override
    public void reset() {
        device.reset();
    }

    @Override
    public Map<String, Long> statistics() {
        return device.statistics();
    }

    @Override
    public Map<String, Histogram> histograms() {
        return device.histograms();
    }

    @Override
    public DeviceControl control() {
        return device.control();
    }

    @Override
    public void flush() throws IOException {
        try {
            device.flush();
        } catch (IOException | RuntimeException e) {
            flushFailed = true;
            throw e;
        }
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            device.flush();
            flushed = !flushFailed;
        } catch (IOException | RuntimeException e) {
            if (!flushFailed) { // else the explicit flush's caller reported it already
                LOG.log(System.Logger.Level.ERROR, "flushing the device of " + name + " failed: " + e.getMessage()
                        + "; data it acknowledged may not be durable");
            }
        }
        device.close();
    }
}
