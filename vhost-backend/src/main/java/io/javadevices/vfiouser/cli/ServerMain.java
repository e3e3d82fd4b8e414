package io.javadevices.vfiouser.cli;

import io.javadevices.pci.ByteSizes;
import io.javadevices.pci.PciDevicePlugin;
import io.javadevices.pci.PollingThreads;
import io.javadevices.vfiouser.host.ControllerDefaults;
import io.javadevices.vfiouser.server.Limits;
import io.javadevices.vfiouser.transport.UnixListener;
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
 *
 * <p><b>Many controllers.</b> This class only parses: the checked options become {@link ServerSettings}, which
 * {@link ServerProcess} runs as a {@link io.javadevices.vfiouser.host.ControllerHost} whose first controller is
 * {@code --socket} with the device options, plus, with {@code --rpc-socket}, the JSON-RPC control plane that adds
 * and removes more ({@code --socket} is then optional). {@code nvme-server rpc ...} is the control plane's client
 * ({@link RpcClientCommand}).
 */
@Command(name = "nvme-server", mixinStandardHelpOptions = true, versionProvider = ServerMain.Version.class,
        sortOptions = false, subcommands = RpcClientCommand.class,
        description = "Serves a Java PCI device (default: an NVMe controller) to QEMU over a vfio-user Unix socket.")
public final class ServerMain implements Callable<Integer> {
    @Option(names = "--socket", paramLabel = "PATH", description = "Unix socket path to listen on: the first "
            + "controller (required unless --rpc-socket is given).")
    Path socket;

    @Option(names = "--rpc-socket", paramLabel = "PATH", description = "Serve the JSON-RPC control plane on this Unix "
            + "socket (mode 0600, clients checked like --allow-uid): add and remove controllers and namespaces, read "
            + "statistics; see 'nvme-server rpc --help'.")
    Path rpcSocket;

    @Option(names = "--socket-fd", paramLabel = "N",
            description = "Serve the first controller on this inherited listening AF_UNIX stream socket instead of "
                    + "binding --socket (socket activation, as systemd and libvirt pass them). Without it and without "
                    + "--socket, LISTEN_PID/LISTEN_FDS naming this process select fd 3 (sd_listen_fds). The socket "
                    + "file is its creator's: it is not removed at exit.")
    Integer socketFd;

    @Option(names = "--metrics-port", paramLabel = "PORT",
            description = "Serve Prometheus metrics of every controller on http://127.0.0.1:PORT/metrics (loopback "
                    + "only; 0 = any free port, printed at start).")
    Integer metricsPort;

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

    /** Where the first controller's inherited socket comes from (set by {@link #call}). */
    private SocketActivation activation;

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
        activation = socketActivation();
        if (socket == null && rpcSocket == null && activation.fd() < 0) {
            throw new CommandLine.ParameterException(spec.commandLine(), "Missing required option: '--socket=PATH' "
                    + "(or --rpc-socket=PATH to start without a controller)");
        }
        ServerSettings settings = settings();
        try (PollingThreads pool = workers.create(spec.commandLine())) { // one pool: every controller's I/O queues
            settings.workers = pool;
            return new ServerProcess(settings, out).run(); // returns once every controller was closed
        }
    }

    /**
     * --socket-fd, or sd_listen_fds' environment when neither it nor --socket is given ({@link SocketActivation});
     * the fd is checked here, so one that is not a listening AF_UNIX stream socket is bad usage (exit 2).
     */
    private SocketActivation socketActivation() {
        SocketActivation activation;
        try {
            activation = SocketActivation.select(socketFd, socket != null, System.getenv(), ProcessHandle.current().pid());
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
        }
        if (activation.fd() < 0) {
            return activation;
        }
        if (socket != null) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "give --socket or --socket-fd, not both (an inherited socket is already bound)");
        }
        try {
            return activation.boundTo(Path.of(UnixListener.checkInherited(activation.fd())));
        } catch (java.io.IOException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "refusing the socket to serve on: " + e.getMessage());
        }
    }

    /** The checked command line (usage errors throw {@link CommandLine.ParameterException}). */
    ServerSettings settings() {
        ServerSettings settings = new ServerSettings();
        int mode = parseMode(socketMode);
        if (statsInterval < 0) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--stats-interval must be >= 0");
        }
        Map<String, String> options = pluginOptions();
        settings.defaults = new ControllerDefaults(mode, allowedUids(), limits());
        settings.statsInterval = statsInterval;
        settings.rpcSocket = rpcSocket;
        if (metricsPort != null && (metricsPort < 0 || metricsPort > 65535)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--metrics-port must be 0..65535: " + metricsPort);
        }
        settings.metricsPort = metricsPort;
        SocketActivation inherited = activation != null ? activation : socketActivation();
        if (socket == null && inherited.fd() < 0) {
            if (!options.isEmpty()) {
                throw new CommandLine.ParameterException(spec.commandLine(), "device options (" + String.join(", ",
                        options.keySet()) + ") need --socket: they make the first controller");
            }
            return settings;
        }
        PciDevicePlugin plugin = deviceOptions.plugin();
        if (plugin == null) {
            throw new IllegalArgumentException("no device plugin named '" + deviceName + "' (see --list-devices)");
        }
        settings.socket = inherited.fd() >= 0 ? inherited.path() : socket;
        settings.listenerFd = inherited.fd();
        settings.activationNote = inherited.reason();
        settings.plugin = plugin;
        settings.pluginOptions = options;
        return settings;
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
