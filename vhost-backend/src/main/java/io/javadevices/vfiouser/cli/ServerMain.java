package io.javadevices.vfiouser.cli;

import io.javadevices.pci.ByteSizes;
import io.javadevices.pci.PciDevice;
import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.pci.PollingThreads;
import io.javadevices.vfiouser.server.Limits;
import io.javadevices.vfiouser.server.VfioUserServer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * {@code java -jar nvme-server.jar --socket /tmp/nvme.sock}: serves a plugin device (default {@code nvme})
 * over vfio-user and prints the QEMU options that attach it. Exit codes: 0 ok, 2 bad usage, 1 runtime
 * failure (one-line message on stderr).
 *
 * <p><b>The module's name.</b> This module is named {@code vhost-backend} because it plays the role a
 * vhost-user backend plays for virtio (a separate process that implements a device for QEMU over a Unix
 * socket), but the protocol it speaks on that socket is vfio-user, which carries a whole PCI device (config
 * space, BAR accesses, DMA maps, interrupts; QEMU's {@code vfio-user-pci}), not vhost-user's virtqueues.
 *
 * <p><b>Device-agnostic.</b> The server knows no device: {@code --device} picks a {@link PciDevicePlugin}
 * (loaded with {@link java.util.ServiceLoader}), the plugin contributes its own options, e.g. the NVMe
 * plugin's {@code --namespace}, {@code --queues} and {@code --dbbuf} ({@link DeviceOptions}), and formats
 * the {@code --stats-interval} line from its counters ({@link PciDevicePlugin#statusLine}).
 */
@Command(name = "nvme-server", mixinStandardHelpOptions = true, versionProvider = ServerMain.Version.class,
        sortOptions = false,
        description = "Serves a Java PCI device (default: an NVMe controller) to QEMU over a vfio-user Unix socket.")
public final class ServerMain implements Callable<Integer> {
    @Option(names = "--socket", paramLabel = "PATH", description = "Unix socket path to listen on (required).")
    Path socket;

    @Option(names = "--device", defaultValue = DeviceOptions.DEFAULT_DEVICE, paramLabel = "NAME",
            description = "Device plugin name (default: ${DEFAULT-VALUE}); see --list-devices. The device's own "
                    + "options are listed below the server's.")
    String deviceName;

    @Option(names = "--socket-mode", defaultValue = "0600", paramLabel = "OCTAL",
            description = "Permission bits of the socket file (default: ${DEFAULT-VALUE}).")
    String socketMode;

    @Option(names = "--allow-uid", split = ",", paramLabel = "UID",
            description = "Only clients running as one of these uids (checked with SO_PEERCRED when they connect) are "
                    + "served; comma-separated or repeated. Others are closed at once, counted and logged. "
                    + "Default: the server's own uid and root (0).")
    List<String> allowUids = new ArrayList<>();

    @Option(names = "--stats-interval", defaultValue = "0", paramLabel = "SECONDS",
            description = "Every SECONDS, print one line on what the device did in that interval, in the device "
                    + "plugin's words (0 = off).")
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

    @CommandLine.Mixin
    WorkerOptions workers = new WorkerOptions();

    @Option(names = "-o", paramLabel = "KEY=VALUE", description = "Raw plugin option, repeatable.")
    Map<String, String> rawOptions = new LinkedHashMap<>();

    @Option(names = "--list-devices", description = "List the available device plugins and exit.")
    boolean listDevices;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** The selected plugin's options; {@link DeviceOptions#NONE} when built without {@link #commandLine}. */
    private DeviceOptions deviceOptions = DeviceOptions.NONE;
    /** The device name the command line was built for (its options are registered). */
    private String builtFor = DeviceOptions.DEFAULT_DEVICE;

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns the exit code (for tests). */
    public static int run(String... args) {
        CommandLine cli;
        try {
            cli = commandLine(args);
        } catch (RuntimeException e) { // a plugin bug: its options clash with the server's or are malformed
            System.err.println("nvme-server: device plugin options: " + oneLine(e));
            return 1;
        }
        return cli.execute(args);
    }

    /**
     * The command line for {@code args}: the server's options plus those of the device {@code args} select
     * (first phase of the two-phase parse; {@link CommandLine#execute} with the same {@code args} is the
     * second). Runtime failures print one line and exit with 1.
     */
    public static CommandLine commandLine(String... args) {
        ServerMain main = new ServerMain();
        CommandLine.Model.CommandSpec spec = CommandLine.Model.CommandSpec.forAnnotatedObject(main);
        main.builtFor = DeviceOptions.selectedDevice(args);
        PciDevicePlugin plugin = plugins().stream().filter(p -> p.name().equals(main.builtFor)).findFirst()
                .orElse(null);
        if (plugin != null) {
            main.deviceOptions = DeviceOptions.register(plugin, spec);
        }
        CommandLine cli = new CommandLine(spec);
        main.deviceOptions.installHelp(cli);
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            commandLine.getErr().println("nvme-server: " + oneLine(e));
            commandLine.getErr().flush();
            return 1;
        });
        return cli;
    }

    private static List<PciDevicePlugin> plugins() {
        return PciDevicePlugin.available(ServerMain.class.getClassLoader());
    }

    private static String oneLine(Throwable e) {
        String m = e.getMessage();
        return (m == null ? e.getClass().getSimpleName() : m).replace('\n', ' ');
    }

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        if (listDevices) {
            List<PciDevicePlugin> plugins = plugins();
            if (plugins.isEmpty()) {
                out.println("(no device plugins on the class path)");
            }
            for (PciDevicePlugin p : plugins) {
                out.printf("%-12s %s%n", p.name(), p.description());
                for (String line : p.optionsHelp().split("\n")) {
                    out.println("    " + line);
                }
                if (!p.commandLineOptions().isEmpty()) {
                    out.println("    command-line options (with --device " + p.name() + "): " + String.join(", ",
                            p.commandLineOptions().stream().map(o -> o.name() + "=" + o.valueLabel()).toList()));
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
        PciDevicePlugin plugin = deviceOptions.plugin();
        if (plugin == null) {
            throw new IllegalArgumentException("no device plugin named '" + deviceName + "' (see --list-devices)");
        }
        PollingThreads pool = workers.create(spec.commandLine()); // one for the process: every controller's I/O queues
        VfioUserServer.Builder builder = VfioUserServer.builder()
                .socket(socket)
                .socketMode(mode)
                .limits(limits)
                .workers(pool)
                .device(context -> plugin.create(options, context));
        if (uids != null) {
            builder.allowUids(uids);
        }
        VfioUserServer server = builder.build();
        try {
            server.start();
        } catch (IOException | RuntimeException e) {
            pool.close();
            throw e;
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            server.close();
            pool.close();
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
            PciDevice device = server.device();
            Thread.ofPlatform().daemon().name("nvme-server-stats")
                    .start(new StatusLines(plugin, device::statistics, Duration.ofSeconds(statsInterval), out));
        }
        while (server.isServing()) {
            Thread.sleep(200);
        }
        // The accept loop ended: either Ctrl-C (the hook closes the server) or a fatal accept error.
        if (stopped.await(5, TimeUnit.SECONDS)) {
            return 0;
        }
        server.close();
        pool.close();
        throw new IllegalStateException("the server stopped accepting clients");
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

    /** Sizes on the command line use the same grammar as plugin options ({@link ByteSizes}). */
    static long parseSize(String text) {
        return ByteSizes.parse(text);
    }

    /**
     * Plugin options: -o pairs, then the device's dedicated options (which win), forwarded unchanged after
     * the plugin's own check.
     */
    Map<String, String> pluginOptions() {
        if (!deviceName.equals(builtFor)) {
            // Only when a caller parses other arguments than it built the command line for.
            throw new CommandLine.ParameterException(spec.commandLine(), "--device " + deviceName
                    + " given, but the command line was built for --device " + builtFor);
        }
        Map<String, String> options = new LinkedHashMap<>(rawOptions);
        options.putAll(deviceOptions.forwarded(spec.commandLine()));
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
