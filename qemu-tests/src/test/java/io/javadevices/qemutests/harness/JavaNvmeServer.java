package io.javadevices.qemutests.harness;

import io.javadevices.pci.PciDevice;
import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.vfiouser.server.VfioUserServer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.lang.management.ThreadMXBean;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * The real vfio-user server with the real NVMe plugin, running in the test JVM on a socket in the
 * directory that {@link QemuGuest} bind-mounts into the QEMU container.
 *
 * <p>Why in-process and not a child {@code java -jar}: the tests read the controller's counters and the
 * server's resource counts directly and at any moment (e.g. while a guest is being killed), with no
 * extra control channel. The code path is the same one the CLI runs ({@link VfioUserServer} plus
 * {@link PciDevicePlugin#find}); the CLI itself is tested in vhost-backend.
 *
 * <p>The server's log records (System.Logger → java.util.logging under {@code io.javadevices}) are
 * kept in a ring buffer so that a failing test can show them next to the guest's console.
 */
public final class JavaNvmeServer implements AutoCloseable {
    /** Resource counters that must return to their idle values after a client goes away. */
    private static final String[] CLIENT_RESOURCES = {"dma.maps", "dma.bytes", "irq.fds", "clients.connected"};
    private static final int LOG_LINES = 200;

    private final VfioUserServer server;
    private final String socketName;
    private final Deque<String> log = new ArrayDeque<>();
    private final Handler logHandler = new Handler() {
        @Override
        public void publish(LogRecord r) {
            String line = Instant.ofEpochMilli(r.getMillis()) + " " + r.getLevel() + " " + r.getLoggerName() + ": "
                    + (r.getParameters() == null ? r.getMessage() : java.text.MessageFormat.format(r.getMessage(), r.getParameters()))
                    + (r.getThrown() == null ? "" : " (" + r.getThrown() + ")");
            synchronized (log) {
                log.addLast(line);
                while (log.size() > LOG_LINES) {
                    log.removeFirst();
                }
            }
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };

    private JavaNvmeServer(Path dir, Map<String, String> nvmeOptions) throws IOException {
        this.socketName = "nvme.sock";
        Logger.getLogger("io.javadevices").addHandler(logHandler);
        PciDevicePlugin plugin = PciDevicePlugin.find("nvme")
                .orElseThrow(() -> new IllegalStateException("the nvme plugin is not on the test class path"));
        this.server = VfioUserServer.builder()
                .socket(dir.resolve(socketName))
                .device(context -> plugin.create(nvmeOptions, context))
                .build();
        server.start();
    }

    /** Starts an NVMe controller with the given plugin options, listening on {@code dir/nvme.sock}. */
    public static JavaNvmeServer start(Path dir, Map<String, String> nvmePluginOptions) {
        try {
            return new JavaNvmeServer(dir, nvmePluginOptions);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The socket's file name inside the shared directory (what {@link QemuGuest.Spec#vfioUser} wants). */
    public String socketName() {
        return socketName;
    }

    /** The controller's counters ({@code io.reads}, {@code doorbell.mmio.sq}, ...). */
    public Map<String, Long> stats() {
        return device().statistics();
    }

    public PciDevice device() {
        return server.device();
    }

    /** The per-client resources the server holds: DMA maps and bytes, interrupt eventfds, a client. */
    public Map<String, Long> resources() {
        Map<String, Long> all = server.resources();
        Map<String, Long> held = new LinkedHashMap<>();
        for (String key : CLIENT_RESOURCES) {
            held.put(key, all.getOrDefault(key, -1L));
        }
        return held;
    }

    /** All of the server's resource counters, including totals. */
    public Map<String, Long> allResources() {
        return server.resources();
    }

    public boolean isServing() {
        return server.isServing();
    }

    /**
     * CPU time, in nanoseconds, used so far by the server's own threads: the device's queue workers
     * ({@code nvme-*}) and the socket thread ({@code vfio-user*}). Used for CPU seconds per million I/Os.
     */
    public static long serverCpuNanos() {
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        long total = 0;
        for (ThreadInfo info : mx.getThreadInfo(mx.getAllThreadIds())) {
            if (info == null) {
                continue;
            }
            String n = info.getThreadName();
            if (n.startsWith("nvme") || n.startsWith("vfio-user")) {
                long t = mx.getThreadCpuTime(info.getThreadId());
                if (t > 0) {
                    total += t;
                }
            }
        }
        return total;
    }

    /** The last lines the server logged. */
    public String logTail() {
        synchronized (log) {
            return log.isEmpty() ? "  (nothing logged)" : "  " + String.join("\n  ", log);
        }
    }

    @Override
    public void close() {
        try {
            server.close();
        } finally {
            Logger.getLogger("io.javadevices").removeHandler(logHandler);
        }
    }
}
