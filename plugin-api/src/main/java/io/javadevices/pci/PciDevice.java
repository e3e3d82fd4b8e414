package io.javadevices.pci;

import java.util.Map;

/**
 * A PCI function implemented in Java, as any host sees it: a config space (with its BARs and their
 * {@link MmioHandler}s), a reset and a close. The device gets guest memory and interrupts from the
 * {@link DeviceContext} it was created with and knows nothing of the transport: the same object can be
 * embedded in a Java VMM or served over vfio-user.
 *
 * <p><b>Threads.</b> The host calls {@link #config()} accessors, BAR handlers and {@link #reset()} from
 * its own thread, one at a time and in guest order. A device may run worker threads of its own (e.g.
 * one per NVMe queue); those use the context's memory and interrupts concurrently.
 */
public interface PciDevice extends AutoCloseable {

    /** The device's config space, including its BAR declarations and capabilities. */
    ConfigSpace config();

    /**
     * Function-level reset, requested by the host (vfio-user DEVICE_RESET, a VMM's machine reset).
     * Resets the config space and all device state; returns when the device is quiescent (no DMA and
     * no interrupts from before the reset will follow). Must not throw. The wait may be bounded: a
     * device whose internal work cannot be stopped in time (e.g. an NVMe worker inside a backend call)
     * returns after its bound with an error state visible to the guest (NVMe: CSTS.CFS, never a false
     * CSTS.RDY = 0) and completes the reset by itself once that work has ended.
     */
    void reset();

    /**
     * Counters for observability (e.g. commands, doorbell writes, interrupts), by name. Cheap enough to
     * call once a second; values are monotonic unless the name says otherwise.
     */
    default Map<String, Long> statistics() {
        return Map.of();
    }

    /*
     * Naming convention of statistics and histograms, so that a host can export them with labels (Prometheus)
     * without knowing the device: a key whose first dot-separated part is lower-case letters followed by a number
     * is a per-instance value, e.g. "sq3.commands" (queue 3) or "ns1.latency.p99-us" (namespace 1); the letters
     * name the instance kind, the number is its label value. Every other key is device-wide.
     */

    /**
     * Latency histograms by name, with the key convention above (e.g. {@code ns1.latency}). Cheap enough to call
     * once a second. Default: none.
     */
    default Map<String, Histogram> histograms() {
        return Map.of();
    }

    /**
     * Runtime management (a host's control plane forwards calls to it), or null if the device has none.
     * The same object for the device's lifetime.
     */
    default DeviceControl control() {
        return null;
    }

    /**
     * Makes everything the device acknowledged durable (NVMe: a Flush of every namespace's backend), for a host
     * shutting down cleanly. Called from the host's thread, after the host stopped the guest's access (no client
     * connected) and before {@link #close()}. Default: nothing to flush.
     *
     * @throws java.io.IOException if some data may not be durable (the message says where)
     */
    default void flush() throws java.io.IOException {
    }

    /** Stops worker threads and releases resources (files, buffers). Idempotent; must not throw. */
    @Override
    void close();
}
