package io.javadevices.vfiouser.cli;

import io.javadevices.pci.ByteSizes;
import io.javadevices.pci.PciDevice;
import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.vfiouser.server.Limits;
import io.javadevices.vfiouser.server.VfioUserServer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.regex.Pattern;

/**
 * {@code java -jar nvme-server.jar --socket /tmp/nvme.sock}: serves a plugin device (default {@code nvme})
 * over vfio-user and prints the QEMU options that attach it. Exit codes: 0 ok, 2 bad usage, 1 runtime
 * failure (one-line message on stderr).
 */
@Command(name = "nvme-server", mixinStandardHelpOptions = true, versionProvider = ServerMain.Version.class,
        sortOptions = false,
        description = "Serves a Java PCI device (default: an NVMe controller) to QEMU over a vfio-user Unix socket.")
public final class ServerMain implements Callable<Integer> {
    private static final Pattern NAMESPACE = Pattern.compile(
            "(null|ram):[0-9]+[A-Za-z]*(@[0-9]+)?|file:[^,@]+?(:[0-9]+[A-Za-z]*)?(@[0-9]+)?");

    @Option(names = "--socket", paramLabel = "PATH", description = "Unix socket path to listen on (required).")
    Path socket;

    @Option(names = "--device", defaultValue = "nvme", paramLabel = "NAME",
            description = "Device plugin name (default: ${DEFAULT-VALUE}); see --list-devices.")
    String deviceName;

    @Option(names = "--namespace", paramLabel = "SPEC",
            description = "NVMe namespace, repeatable: null:SIZE, ram:SIZE or file:PATH[:SIZE], optionally @BLOCKSIZE "
                    + "(e.g. ram:1G@4096). Default: the plugin's (one 1 GiB RAM namespace).")
    List<String> namespaces = new ArrayList<>();

    @Option(names = "--queues", paramLabel = "N", description = "Number of I/O queue pairs (plugin option queues).")
    Integer queues;

    @Option(names = "--dbbuf", paramLabel = "on|off", description = "Doorbell Buffer Config (shadow doorbells) on or off.")
    String dbbuf;

    @Option(names = "--socket-mode", defaultValue = "0600", paramLabel = "OCTAL",
            description = "Permission bits of the socket file (default: ${DEFAULT-VALUE}).")
    String socketMode;

    @Option(names = "--allow-uid", split = ",", paramLabel = "UID",
            description = "Only clients running as one of these uids (checked with SO_PEERCRED when they connect) are "
                    + "served; comma-separated or repeated. Others are closed at once, counted and logged. "
                    + "Default: the server's own uid and root (0).")
    List<String> allowUids = new ArrayList<>();

    @Option(names = "--stats-interval", defaultValue = "0", paramLabel = "SECONDS",
            description = "Print IOPS, MMIO doorbells per I/O and interrupts per I/O every SECONDS (0 = off).")
    int statsInterval;

    @Option(names = "--max-dma-maps", paramLabel = "N",
            description = "Most DMA mappings a client may hold at once, 1..65535 (default 4096); more get ENOSPC.")
    Integer maxDmaMaps;

    @Option(names = "--max-mapped-bytes", paramLabel = "SIZE",
            description = "Most guest memory a client may have mapped at once, e.g. 64G (default 1T); more get ENOMEM.")
    String maxMappedBytes;

    @Option(names = "--max-message-bytes", paramLabel = "SIZE",
            description = "Largest vfio-user message accepted, header included, 1048640 (1 MiB + 64)..128M (default "
                    + "1052672 = 1 MiB + 4 KiB); a larger one gets E2BIG and a disconnect.")
    String maxMessageBytes;

    @Option(names = "-o", paramLabel = "KEY=VALUE", description = "Raw plugin option, repeatable.")
    Map<String, String> rawOptions = new LinkedHashMap<>();

    @Option(names = "--list-devices", description = "List the available device plugins and exit.")
    boolean listDevices;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns the exit code (for tests). */
    public static int run(String... args) {
        return commandLine().execute(args);
    }

    /** The configured command line: runtime failures print one line and exit with 1. */
    public static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new ServerMain());
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            commandLine.getErr().println("nvme-server: " + oneLine(e));
            commandLine.getErr().flush();
            return 1;
        });
        return cli;
    }

    private static String oneLine(Throwable e) {
        String m = e.getMessage();
        return (m == null ? e.getClass().getSimpleName() : m).replace('\n', ' ');
    }

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        if (listDevices) {
            List<PciDevicePlugin> plugins = PciDevicePlugin.available(ServerMain.class.getClassLoader());
            if (plugins.isEmpty()) {
                out.println("(no device plugins on the class path)");
            }
            for (PciDevicePlugin p : plugins) {
                out.printf("%-12s %s%n", p.name(), p.description());
                for (String line : p.optionsHelp().split("\n")) {
                    out.println("    " + line);
                }
            }
            out.flush();
            return 0;
        }
        if (socket == null) {
            throw new CommandLine.ParameterException(spec.commandLine(), "Missing required option: '--socket=PATH'");
        }
        int mode = parseMode(socketMode);
        if (statsInterval < 0) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--stats-interval must be >= 0");
        }
        Map<String, String> options = pluginOptions();
        Limits limits = limits();
        int[] uids = allowedUids();
        PciDevicePlugin plugin = PciDevicePlugin.available(ServerMain.class.getClassLoader()).stream()
                .filter(p -> p.name().equals(deviceName)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no device plugin named '" + deviceName
                        + "' (see --list-devices)"));
        VfioUserServer.Builder builder = VfioUserServer.builder()
                .socket(socket)
                .socketMode(mode)
                .limits(limits)
                .device(context -> plugin.create(options, context));
        if (uids != null) {
            builder.allowUids(uids);
        }
        VfioUserServer server = builder.build();
        server.start();
        CountDownLatch stopped = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            server.close();
            // java.util.logging is already shut down inside shutdown hooks: say it on stderr.
            System.err.println("nvme-server: stopped, socket " + server.socketPath() + " removed");
            stopped.countDown();
        }, "nvme-server-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        Path path = server.socketPath();
        out.println("serving " + deviceName + " on " + path + "; attach it to QEMU with (guest RAM must be shared):");
        out.println("  -m 1G -object memory-backend-memfd,id=mem,size=1G,share=on -machine memory-backend=mem \\");
        out.println("  -device '{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":\"" + path + "\"}}'");
        out.println("(memory-backend size must equal -m; press Ctrl-C to stop)");
        out.flush();
        if (statsInterval > 0) {
            Thread.ofPlatform().daemon().name("nvme-server-stats").start(() -> stats(server.device(), out));
        }
        while (server.isServing()) {
            Thread.sleep(200);
        }
        // The accept loop ended: either Ctrl-C (the hook closes the server) or a fatal accept error.
        if (stopped.await(5, java.util.concurrent.TimeUnit.SECONDS)) {
            return 0;
        }
        server.close();
        throw new IllegalStateException("the server stopped accepting clients");
    }

    private void stats(PciDevice device, PrintWriter out) {
        Map<String, Long> last = device.statistics();
        while (true) {
            try {
                Thread.sleep(statsInterval * 1000L);
            } catch (InterruptedException e) {
                return;
            }
            Map<String, Long> now = device.statistics();
            long io = delta(now, last, "io.commands");
            long doorbells = delta(now, last, "doorbell.mmio.sq") + delta(now, last, "doorbell.mmio.cq");
            long irqs = delta(now, last, "interrupts");
            out.printf("stats: %d IOPS, %.2f MMIO doorbells/IO, %.2f interrupts/IO%n", io / statsInterval,
                    io == 0 ? 0.0 : (double) doorbells / io, io == 0 ? 0.0 : (double) irqs / io);
            out.flush();
            last = now;
        }
    }

    private static long delta(Map<String, Long> now, Map<String, Long> before, String key) {
        return now.getOrDefault(key, 0L) - before.getOrDefault(key, 0L);
    }

    private int parseMode(String text) {
        try {
            int mode = Integer.parseInt(text, 8);
            if (mode < 0 || mode > 0777) {
                throw new NumberFormatException();
            }
            return mode;
        } catch (NumberFormatException e) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--socket-mode must be an octal permission mode like 0600: " + text);
        }
    }

    /**
     * The --allow-uid values as uid_t bits (0..4294967294), or null when the option was not given (the
     * server's default then applies).
     */
    int[] allowedUids() {
        if (allowUids.isEmpty()) {
            return null;
        }
        int[] uids = new int[allowUids.size()];
        for (int i = 0; i < uids.length; i++) {
            String text = allowUids.get(i).strip();
            try {
                if (text.isEmpty() || !text.chars().allMatch(c -> c >= '0' && c <= '9')) {
                    throw new NumberFormatException();
                }
                uids[i] = Integer.parseUnsignedInt(text); // uid_t is unsigned 32-bit
                if (uids[i] == -1) {
                    throw new NumberFormatException(); // (uid_t) -1 is "no uid"
                }
            } catch (NumberFormatException e) {
                throw new CommandLine.ParameterException(spec.commandLine(),
                        "--allow-uid takes numeric uids 0..4294967294, comma-separated: '" + allowUids.get(i) + "'");
            }
        }
        return uids;
    }

    /** The server's resource limits: the defaults with the --max-* options applied. */
    Limits limits() {
        Limits limits = Limits.defaults();
        try {
            if (maxMessageBytes != null) {
                long v = parseSize(maxMessageBytes);
                if (v > Integer.MAX_VALUE) {
                    throw new IllegalArgumentException("maxMessageBytes must be at most 128 MiB: " + v);
                }
                limits = limits.withMaxMessageBytes((int) v);
            }
            if (maxDmaMaps != null) {
                limits = limits.withMaxDmaMaps(maxDmaMaps);
            }
            if (maxMappedBytes != null) {
                limits = limits.withMaxMappedBytes(parseSize(maxMappedBytes));
            }
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "bad limit: " + e.getMessage());
        }
        return limits;
    }

    /** A byte count with an optional binary suffix: 4096, 64K, 1M, 64G, 1T. */
    /** Sizes on the command line use the same grammar as plugin options ({@link ByteSizes}). */
    static long parseSize(String text) {
        return ByteSizes.parse(text);
    }

    /** Plugin options: -o pairs, then the dedicated options (which win). */
    Map<String, String> pluginOptions() {
        Map<String, String> options = new LinkedHashMap<>(rawOptions);
        if (!namespaces.isEmpty()) {
            for (String ns : namespaces) {
                if (!NAMESPACE.matcher(ns).matches()) {
                    throw new CommandLine.ParameterException(spec.commandLine(), "bad --namespace '" + ns
                            + "': expected null:SIZE, ram:SIZE or file:PATH[:SIZE], optionally @BLOCKSIZE");
                }
            }
            options.put("namespaces", String.join(",", namespaces));
        }
        if (queues != null) {
            if (queues < 1) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--queues must be >= 1");
            }
            options.put("queues", Integer.toString(queues));
        }
        if (dbbuf != null) {
            if (!dbbuf.equals("on") && !dbbuf.equals("off")) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--dbbuf must be on or off");
            }
            options.put("dbbuf", dbbuf);
        }
        return options;
    }

    /** Version from the jar manifest (or "dev"). */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = ServerMain.class.getPackage().getImplementationVersion();
            return new String[] {"nvme-server " + (v == null ? "0.1.0-SNAPSHOT" : v) + " (vfio-user, Java "
                    + Runtime.version() + ")"};
        }
    }
}
