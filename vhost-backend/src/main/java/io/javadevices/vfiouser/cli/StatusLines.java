package io.javadevices.vfiouser.cli;

import io.javadevices.pci.PciDevicePlugin;

import java.io.PrintWriter;
import java.time.Duration;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The {@code --stats-interval} printer: every interval, one line from the device's counters of that interval,
 * worded by the device's plugin ({@link PciDevicePlugin#statusLine}); the server itself names no counter.
 */
final class StatusLines implements Runnable {
    private final PciDevicePlugin plugin;
    private final Supplier<Map<String, Long>> counters;
    private final Duration interval;
    private final PrintWriter out;
    private Map<String, Long> last;

    StatusLines(PciDevicePlugin plugin, Supplier<Map<String, Long>> counters, Duration interval, PrintWriter out) {
        this.plugin = plugin;
        this.counters = counters;
        this.interval = interval;
        this.out = out;
        this.last = counters.get();
    }

    /** Sleeps an interval and prints its line, until interrupted or the plugin fails. */
    @Override
    public void run() {
        while (true) {
            try {
                Thread.sleep(interval);
            } catch (InterruptedException e) {
                return;
            }
            if (!printNext()) {
                return;
            }
        }
    }

    /**
     * Prints the line for the counters since the previous call (or construction). Returns false, after one
     * line saying so, if the plugin's formatter threw: a plugin bug stops the lines instead of repeating a
     * stack trace every interval.
     */
    boolean printNext() {
        Map<String, Long> now = counters.get();
        try {
            out.println(plugin.statusLine(last, now, interval));
            return true;
        } catch (RuntimeException e) {
            out.println("nvme-server: no more stats lines, device plugin '" + plugin.name() + "' failed: "
                    + String.valueOf(e).replace('\n', ' '));
            return false;
        } finally {
            out.flush();
            last = now;
        }
    }
}
